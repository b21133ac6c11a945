"""The complete ledger metadata: every schema module imported in one place.

Alembic's environment and the migration test use ``metadata`` from here, so a table
added to any ``schema_*`` module is compared with the migrations.
"""

from __future__ import annotations

from billingcenter.ledger import (  # noqa: F401
    schema_billing,
    schema_files,
    schema_rating,
    schema_rules,
)
from billingcenter.ledger.schema import metadata

__all__ = ["metadata"]
