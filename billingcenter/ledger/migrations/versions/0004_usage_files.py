"""Usage-record files and their records; the error store indexed by (method, key).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from billingcenter.ledger.coltypes import Key, UtcDateTime, digest_type, row_id

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None

MYSQL: dict[str, Any] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_unicode_ci",
}


def upgrade() -> None:
    """Create ``usage_file`` and ``file_record``; index ``error_record (method, key)``."""
    _usage_file()
    _file_record()
    op.create_index("ix_error_record_method_key", "error_record", ["method", "key"])


def _usage_file() -> None:
    op.create_table(
        "usage_file",
        sa.Column("id", row_id(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(512), nullable=False),
        sa.Column("digest", digest_type(), nullable=False),
        sa.Column("rule_set", Key(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", UtcDateTime(), nullable=False),
        sa.Column("finished_at", UtcDateTime(), nullable=True),
        sa.Column("rows_read", sa.BigInteger(), nullable=False),
        sa.Column("accepted", sa.BigInteger(), nullable=False),
        sa.Column("duplicates", sa.BigInteger(), nullable=False),
        sa.Column("rejected", sa.BigInteger(), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_usage_file"),
        **MYSQL,
    )
    op.create_index("ix_usage_file_digest", "usage_file", ["digest"])
    op.create_index("ix_usage_file_started_at", "usage_file", ["started_at"])


def _file_record() -> None:
    op.create_table(
        "file_record",
        sa.Column("id", row_id(), autoincrement=True, nullable=False),
        sa.Column("record_key", Key(64), nullable=False),
        sa.Column("file_id", sa.BigInteger(), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("occurred_at", UtcDateTime(), nullable=False),
        sa.Column("payer_id", Key(64), nullable=False),
        sa.Column("product_code", Key(128), nullable=False),
        sa.Column("item_code", Key(128), nullable=False),
        sa.Column("user_id", Key(128), nullable=False),
        sa.Column("quantity", sa.BigInteger(), nullable=False),
        sa.Column("duration", sa.BigInteger(), nullable=True),
        sa.Column("attributes", sa.Text(), nullable=False),
        sa.Column("recorded_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_file_record"),
        sa.UniqueConstraint("record_key", name="uq_file_record_record_key"),
        **MYSQL,
    )
    op.create_index("ix_file_record_file_id_line", "file_record", ["file_id", "line"])


def downgrade() -> None:
    """Drop the index and the tables (and everything in them)."""
    op.drop_index("ix_error_record_method_key", table_name="error_record")
    op.drop_table("file_record")
    op.drop_table("usage_file")
