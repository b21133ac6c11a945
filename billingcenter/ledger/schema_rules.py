"""Tables of the ledger: rule sets, their versions and their workflow audit (owner: rules).

They share ``billingcenter.ledger.schema.metadata``; ``billingcenter.ledger.tables``
imports every schema module so the metadata is complete.
"""

from __future__ import annotations

from billingcenter.ledger.schema import metadata  # noqa: F401  (tables are added to it)
