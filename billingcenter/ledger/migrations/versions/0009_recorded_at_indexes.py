"""Index ``recorded_at`` of order state events and account-count changes.

The daily job looks for facts recorded after their day was rated (``jobs.late``); the
indexes make that a range read instead of a scan of both tables.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-22
"""

from __future__ import annotations

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Add the two indexes."""
    op.create_index("ix_order_state_event_recorded_at", "order_state_event", ["recorded_at"])
    op.create_index("ix_account_num_change_recorded_at", "account_num_change", ["recorded_at"])


def downgrade() -> None:
    """Drop the two indexes."""
    op.drop_index("ix_account_num_change_recorded_at", table_name="account_num_change")
    op.drop_index("ix_order_state_event_recorded_at", table_name="order_state_event")
