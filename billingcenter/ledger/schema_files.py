"""Tables of the ledger: usage-record files and their records (owner: usage file loader).

They share ``billingcenter.ledger.schema.metadata``; ``billingcenter.ledger.tables``
imports every schema module so the metadata is complete.
"""

from __future__ import annotations

from billingcenter.ledger.schema import metadata  # noqa: F401  (tables are added to it)
