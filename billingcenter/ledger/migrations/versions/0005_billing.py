"""Billing: payers and balances, bills and their lines, payments, service events, outbox.

``charge`` gains ``bill_id`` and ``entry_id`` (0 until a bill or a balance entry takes
the charge).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from billingcenter.ledger.coltypes import Key, UtcDateTime, digest_type, row_id

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None

MYSQL: dict[str, Any] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_unicode_ci",
}


def upgrade() -> None:
    """Add the billing tables and the two charge columns."""
    with op.batch_alter_table("charge") as batch:
        batch.add_column(sa.Column("bill_id", sa.BigInteger(), nullable=False,
                                   server_default="0"))
        batch.add_column(sa.Column("entry_id", sa.BigInteger(), nullable=False,
                                   server_default="0"))
    _payer_account()
    _balance_entry()
    _bill()
    _bill_line()
    _payment()
    _service_event()
    _outbox()


def _payer_account() -> None:
    op.create_table(
        "payer_account",
        sa.Column("id", row_id(), autoincrement=True, nullable=False),
        sa.Column("payer_id", Key(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("billing_day", sa.Integer(), nullable=True),
        sa.Column("balance_fen", sa.BigInteger(), nullable=False),
        sa.Column("floor_fen", sa.BigInteger(), nullable=False),
        sa.Column("threshold_fen", sa.BigInteger(), nullable=False),
        sa.Column("service_state", sa.String(16), nullable=False),
        sa.Column("arrears_since", UtcDateTime(), nullable=True),
        sa.Column("state_changed_at", UtcDateTime(), nullable=True),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_payer_account"),
        sa.UniqueConstraint("payer_id", name="uq_payer_account_payer_id"),
        **MYSQL,
    )


def _balance_entry() -> None:
    op.create_table(
        "balance_entry",
        sa.Column("id", row_id(), autoincrement=True, nullable=False),
        sa.Column("entry_key", Key(128), nullable=False),
        sa.Column("payer_id", Key(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("balance_after_fen", sa.BigInteger(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_balance_entry"),
        sa.UniqueConstraint("entry_key", name="uq_balance_entry_entry_key"),
        **MYSQL,
    )
    op.create_index("ix_balance_entry_payer_id_id", "balance_entry", ["payer_id", "id"])


def _bill() -> None:
    op.create_table(
        "bill",
        sa.Column("id", row_id(), autoincrement=True, nullable=False),
        sa.Column("payer_id", Key(64), nullable=False),
        sa.Column("bill_date", sa.Date(), nullable=False),
        sa.Column("first_day", sa.Date(), nullable=True),
        sa.Column("last_day", sa.Date(), nullable=True),
        sa.Column("total_fen", sa.BigInteger(), nullable=False),
        sa.Column("lines", sa.Integer(), nullable=False),
        sa.Column("charges", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("deduction_id", Key(128), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("settled_at", UtcDateTime(), nullable=True),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_bill"),
        sa.UniqueConstraint("payer_id", "bill_date", name="uq_bill_payer_id_bill_date"),
        sa.UniqueConstraint("deduction_id", name="uq_bill_deduction_id"),
        **MYSQL,
    )
    op.create_index("ix_bill_bill_date_status", "bill", ["bill_date", "status"])
    op.create_index("ix_bill_status_payer_id", "bill", ["status", "payer_id"])


def _bill_line() -> None:
    op.create_table(
        "bill_line",
        sa.Column("id", row_id(), autoincrement=True, nullable=False),
        sa.Column("bill_id", sa.BigInteger(), nullable=False),
        sa.Column("order_id", Key(64), nullable=False),
        sa.Column("product_code", Key(128), nullable=False),
        sa.Column("charges", sa.Integer(), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("first_day", sa.Date(), nullable=False),
        sa.Column("last_day", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_bill_line"),
        **MYSQL,
    )
    op.create_index("ix_bill_line_bill_id", "bill_line", ["bill_id"])


def _payment() -> None:
    op.create_table(
        "payment",
        sa.Column("id", row_id(), autoincrement=True, nullable=False),
        sa.Column("serial", Key(64), nullable=False),
        sa.Column("deduction_id", Key(128), nullable=False),
        sa.Column("payer_id", Key(64), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("paid_at", UtcDateTime(), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("digest", digest_type(), nullable=False),
        sa.Column("recorded_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_payment"),
        sa.UniqueConstraint("serial", name="uq_payment_serial"),
        **MYSQL,
    )
    op.create_index("ix_payment_deduction_id", "payment", ["deduction_id"])
    op.create_index("ix_payment_payer_id_id", "payment", ["payer_id", "id"])


def _service_event() -> None:
    op.create_table(
        "service_event",
        sa.Column("id", row_id(), autoincrement=True, nullable=False),
        sa.Column("payer_id", Key(64), nullable=False),
        sa.Column("order_id", Key(64), nullable=False),
        sa.Column("product_code", Key(128), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_service_event"),
        **MYSQL,
    )
    op.create_index("ix_service_event_payer_id_id", "service_event", ["payer_id", "id"])
    op.create_index("ix_service_event_order_id_id", "service_event", ["order_id", "id"])


def _outbox() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", row_id(), autoincrement=True, nullable=False),
        sa.Column("message_key", Key(128), nullable=False),
        sa.Column("target", sa.String(160), nullable=False),
        sa.Column("method", sa.String(64), nullable=False),
        sa.Column("ordering_key", Key(128), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UtcDateTime(), nullable=False),
        sa.Column("lease_owner", sa.String(128), nullable=True),
        sa.Column("lease_until", UtcDateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("delivered_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        sa.UniqueConstraint("message_key", name="uq_outbox_message_key"),
        **MYSQL,
    )
    op.create_index("ix_outbox_status_next_attempt_at", "outbox", ["status", "next_attempt_at"])
    op.create_index("ix_outbox_ordering_key_status", "outbox", ["ordering_key", "status"])


def downgrade() -> None:
    """Drop the billing tables and the two charge columns."""
    for table in ("outbox", "service_event", "payment", "bill_line", "bill", "balance_entry",
                  "payer_account"):
        op.drop_table(table)
    with op.batch_alter_table("charge") as batch:
        batch.drop_column("entry_id")
        batch.drop_column("bill_id")
