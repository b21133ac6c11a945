"""Intake tables: products and plans, order mirror, state events, usage, account counts, errors.

Revision ID: 0001
Revises:
Create Date: 2025-11-22
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from billingcenter.ledger.coltypes import Key, UtcDateTime, digest_type, long_text, row_id

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

MYSQL: dict[str, Any] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_unicode_ci",
}


def upgrade() -> None:
    """Create the intake tables."""
    _products()
    _orders()
    _usage()
    _account_and_errors()


def _products() -> None:
    op.create_table(
        "product",
        sa.Column("code", Key(128), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("code", name="pk_product"),
        **MYSQL,
    )
    op.create_table(
        "product_plan",
        sa.Column("product_code", Key(128), nullable=False),
        sa.Column("plan_code", Key(128), nullable=False),
        sa.PrimaryKeyConstraint("product_code", "plan_code", name="pk_product_plan"),
        sa.ForeignKeyConstraint(
            ["product_code"], ["product.code"], name="fk_product_plan_product_code"
        ),
        **MYSQL,
    )


def _orders() -> None:
    op.create_table(
        "order_mirror",
        sa.Column("id", row_id(), autoincrement=True, nullable=False),
        sa.Column("order_id", Key(64), nullable=False),
        sa.Column("payer_id", Key(64), nullable=False),
        sa.Column("user_id", Key(128), nullable=False),
        sa.Column("product_code", Key(128), nullable=False),
        sa.Column("plan_code", Key(128), nullable=False),
        sa.Column("activated_at", UtcDateTime(), nullable=False),
        sa.Column("account_num", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("status_changed_at", UtcDateTime(), nullable=True),
        sa.Column("status_event_id", Key(64), nullable=True),
        sa.Column("digest", digest_type(), nullable=False),
        sa.Column("recorded_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_order_mirror"),
        sa.UniqueConstraint("order_id", name="uq_order_mirror_order_id"),
        sa.ForeignKeyConstraint(
            ["product_code"], ["product.code"], name="fk_order_mirror_product_code"
        ),
        **MYSQL,
    )
    op.create_index(
        "ix_order_mirror_payer_id_product_code", "order_mirror", ["payer_id", "product_code"]
    )
    op.create_table(
        "order_state_event",
        sa.Column("id", row_id(), autoincrement=True, nullable=False),
        sa.Column("event_id", Key(64), nullable=False),
        sa.Column("order_id", Key(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("changed_at", UtcDateTime(), nullable=False),
        sa.Column("digest", digest_type(), nullable=False),
        sa.Column("recorded_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_order_state_event"),
        sa.UniqueConstraint("event_id", name="uq_order_state_event_event_id"),
        sa.ForeignKeyConstraint(
            ["order_id"], ["order_mirror.order_id"], name="fk_order_state_event_order_id"
        ),
        **MYSQL,
    )
    op.create_index(
        "ix_order_state_event_order_id_changed_at",
        "order_state_event",
        ["order_id", "changed_at"],
    )


def _usage() -> None:
    op.create_table(
        "usage_record",
        sa.Column("id", row_id(), autoincrement=True, nullable=False),
        sa.Column("op_id", Key(64), nullable=False),
        sa.Column("order_id", Key(64), nullable=False),
        sa.Column("product_code", Key(128), nullable=False),
        sa.Column("item_code", Key(128), nullable=False),
        sa.Column("user_id", Key(128), nullable=False),
        sa.Column("payer_id", Key(64), nullable=False),
        sa.Column("quantity", sa.BigInteger(), nullable=False),
        sa.Column("occurred_at", UtcDateTime(), nullable=False),
        sa.Column("attributes", sa.Text(), nullable=False),
        sa.Column("digest", digest_type(), nullable=False),
        sa.Column("recorded_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_usage_record"),
        sa.UniqueConstraint("op_id", name="uq_usage_record_op_id"),
        **MYSQL,
    )
    op.create_index(
        "ix_usage_record_payer_id_occurred_at", "usage_record", ["payer_id", "occurred_at"]
    )
    op.create_index(
        "ix_usage_record_order_id_occurred_at", "usage_record", ["order_id", "occurred_at"]
    )


def _account_and_errors() -> None:
    op.create_table(
        "account_num_change",
        sa.Column("id", row_id(), autoincrement=True, nullable=False),
        sa.Column("payer_id", Key(64), nullable=False),
        sa.Column("product_code", Key(128), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("changed_at", UtcDateTime(), nullable=False),
        sa.Column("recorded_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_account_num_change"),
        **MYSQL,
    )
    op.create_index(
        "ix_account_num_change_payer_id_product_code_changed_at",
        "account_num_change",
        ["payer_id", "product_code", "changed_at"],
    )
    op.create_table(
        "error_record",
        sa.Column("id", row_id(), autoincrement=True, nullable=False),
        sa.Column("method", sa.String(64), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("payload", long_text(), nullable=False),
        sa.Column("received_at", UtcDateTime(), nullable=False),
        sa.Column("recycled_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_error_record"),
        **MYSQL,
    )
    op.create_index("ix_error_record_received_at", "error_record", ["received_at"])


def downgrade() -> None:
    """Drop the intake tables (and everything in them)."""
    for table in (
        "error_record",
        "account_num_change",
        "usage_record",
        "order_state_event",
        "order_mirror",
        "product_plan",
        "product",
    ):
        op.drop_table(table)
