"""``bill_part``: the partial sums of a bill run in progress (and bill status BUILDING).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from billingcenter.ledger.coltypes import Key

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None

MYSQL: dict[str, Any] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_unicode_ci",
}


def upgrade() -> None:
    """Add ``bill_part``, clustered by (bill, mark range, order, product)."""
    op.create_table(
        "bill_part",
        sa.Column("bill_id", sa.BigInteger(), nullable=False),
        sa.Column("chunk", sa.Integer(), nullable=False),
        sa.Column("order_id", Key(64), nullable=False),
        sa.Column("product_code", Key(128), nullable=False),
        sa.Column("charges", sa.Integer(), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("first_day", sa.Date(), nullable=False),
        sa.Column("last_day", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("bill_id", "chunk", "order_id", "product_code",
                                name="pk_bill_part"),
        **MYSQL,
    )


def downgrade() -> None:
    """Drop ``bill_part``."""
    op.drop_table("bill_part")
