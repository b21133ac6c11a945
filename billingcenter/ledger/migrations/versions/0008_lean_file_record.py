"""A leaner ``file_record``: drop the unique index on ``record_key``.

Every accepted record has exactly one charge, and ``charge (kind, source_key)`` is
unique, so that index already stores each record key once; the second unique index
only doubled the loader's index work.  The loader looks keys up through ``charge``.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22
"""

from __future__ import annotations

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Drop ``uq_file_record_record_key``."""
    with op.batch_alter_table("file_record") as batch:
        batch.drop_constraint("uq_file_record_record_key", type_="unique")


def downgrade() -> None:
    """Put ``uq_file_record_record_key`` back (the loader never stores a key twice)."""
    with op.batch_alter_table("file_record") as batch:
        batch.create_unique_constraint("uq_file_record_record_key", ["record_key"])
