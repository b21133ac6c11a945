"""Indexes on ``payer_account``: (kind, payer_id) and (service_state).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22
"""

from __future__ import annotations

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Index the prepaid payers and the stopped ones."""
    op.create_index("ix_payer_account_kind_payer_id", "payer_account", ["kind", "payer_id"])
    op.create_index("ix_payer_account_service_state", "payer_account", ["service_state"])


def downgrade() -> None:
    """Drop the two indexes."""
    op.drop_index("ix_payer_account_service_state", table_name="payer_account")
    op.drop_index("ix_payer_account_kind_payer_id", table_name="payer_account")
