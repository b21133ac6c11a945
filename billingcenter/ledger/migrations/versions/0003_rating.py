"""Charges and job claims; an index of usage records by time.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from billingcenter.ledger.coltypes import Key, UtcDateTime, row_id

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None

MYSQL: dict[str, Any] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_unicode_ci",
}


def upgrade() -> None:
    """Create ``charge`` and ``job_claim``; index ``usage_record`` by ``occurred_at``."""
    _charge()
    _job_claim()
    op.create_index("ix_usage_record_occurred_at", "usage_record", ["occurred_at"])


def _charge() -> None:
    op.create_table(
        "charge",
        sa.Column("id", row_id(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("source_key", Key(128), nullable=False),
        sa.Column("order_id", Key(64), nullable=False),
        sa.Column("payer_id", Key(64), nullable=False),
        sa.Column("product_code", Key(128), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("rule_set", Key(128), nullable=False),
        sa.Column("rule_set_version", Key(64), nullable=False),
        sa.Column("rule_id", Key(128), nullable=False),
        sa.Column("units", sa.DECIMAL(20, 6), nullable=False),
        sa.Column("unit_price", sa.DECIMAL(20, 6), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("explanation", sa.Text(), nullable=False),
        sa.Column("rated_at", UtcDateTime(), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_charge"),
        sa.UniqueConstraint("kind", "source_key", name="uq_charge_kind_source_key"),
        **MYSQL,
    )
    op.create_index("ix_charge_payer_id_day", "charge", ["payer_id", "day"])
    op.create_index("ix_charge_day", "charge", ["day"])


def _job_claim() -> None:
    op.create_table(
        "job_claim",
        sa.Column("id", row_id(), autoincrement=True, nullable=False),
        sa.Column("job", sa.String(16), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("chunk", sa.Integer(), nullable=False),
        sa.Column("chunk_size", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("claimed_at", UtcDateTime(), nullable=False),
        sa.Column("finished_at", UtcDateTime(), nullable=True),
        sa.Column("last_id", sa.BigInteger(), nullable=True),
        sa.Column("rows_seen", sa.Integer(), nullable=False),
        sa.Column("charges", sa.Integer(), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_job_claim"),
        sa.UniqueConstraint("job", "day", "chunk", name="uq_job_claim_job_day_chunk"),
        **MYSQL,
    )


def downgrade() -> None:
    """Drop the index, ``job_claim`` and ``charge`` (and every charge in it)."""
    op.drop_index("ix_usage_record_occurred_at", table_name="usage_record")
    op.drop_table("job_claim")
    op.drop_table("charge")
