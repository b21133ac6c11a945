"""Rule set versions and the audit of their workflow.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from billingcenter.ledger.coltypes import Key, UtcDateTime, digest_type, long_text, row_id

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

MYSQL: dict[str, Any] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_unicode_ci",
}


def upgrade() -> None:
    """Create ``rule_version`` and ``rule_audit``."""
    op.create_table(
        "rule_version",
        sa.Column("id", row_id(), autoincrement=True, nullable=False),
        sa.Column("rule_set", Key(128), nullable=False),
        sa.Column("version", Key(64), nullable=False),
        sa.Column("author", Key(128), nullable=False),
        sa.Column("effective_from", UtcDateTime(), nullable=False),
        sa.Column("effective_to", UtcDateTime(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("source", long_text(), nullable=False),
        sa.Column("digest", digest_type(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_rule_version"),
        sa.UniqueConstraint("rule_set", "version", name="uq_rule_version_rule_set_version"),
        **MYSQL,
    )
    op.create_table(
        "rule_audit",
        sa.Column("id", row_id(), autoincrement=True, nullable=False),
        sa.Column("version_id", row_id(), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("actor", Key(128), nullable=False),
        sa.Column("from_status", sa.String(16), nullable=True),
        sa.Column("to_status", sa.String(16), nullable=False),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_rule_audit"),
        sa.ForeignKeyConstraint(
            ["version_id"], ["rule_version.id"], name="fk_rule_audit_version_id"
        ),
        **MYSQL,
    )
    op.create_index("ix_rule_audit_version_id_id", "rule_audit", ["version_id", "id"])


def downgrade() -> None:
    """Drop the rule tables (and every version and audit row in them)."""
    op.drop_table("rule_audit")
    op.drop_table("rule_version")
