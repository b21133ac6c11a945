"""The ledger's tables (SQLAlchemy Core): one ``MetaData``, the intake for now.

Timestamps are aware UTC (``UtcDateTime``); keys are exact (``Key``).  On MySQL
every table is InnoDB in utf8mb4.  Surrogate ``id`` columns keep InnoDB's
clustered index append-only; the caller's key is a unique index beside it.
The Alembic migrations in ``migrations/versions`` must build exactly this (a
test compares them).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from billingcenter.intake import KEY_MAX, TEXT_MAX
from billingcenter.ledger.coltypes import Key, UtcDateTime, digest_type, long_text, row_id

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s",
    "pk": "pk_%(table_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
}

TABLE_OPTIONS: dict[str, Any] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_unicode_ci",
}

ERROR_KEY_MAX = 255
STATUS_MAX = 16
PRODUCT_NAME_MAX = 255

metadata = MetaData(naming_convention=NAMING_CONVENTION)

product = Table(
    "product",
    metadata,
    Column("code", Key(TEXT_MAX), primary_key=True),
    Column("name", String(PRODUCT_NAME_MAX), nullable=False),
    **TABLE_OPTIONS,
)

product_plan = Table(
    "product_plan",
    metadata,
    Column("product_code", Key(TEXT_MAX), ForeignKey(product.c.code), primary_key=True),
    Column("plan_code", Key(TEXT_MAX), primary_key=True),
    **TABLE_OPTIONS,
)

order_mirror = Table(
    "order_mirror",
    metadata,
    Column("id", row_id(), primary_key=True, autoincrement=True),
    Column("order_id", Key(KEY_MAX), nullable=False),
    Column("payer_id", Key(KEY_MAX), nullable=False),
    Column("user_id", Key(TEXT_MAX), nullable=False),
    Column("product_code", Key(TEXT_MAX), ForeignKey(product.c.code), nullable=False),
    Column("plan_code", Key(TEXT_MAX), nullable=False),
    Column("activated_at", UtcDateTime(), nullable=False),
    Column("account_num", Integer, nullable=False),
    # The current status and the event that set it (NULL until the first event);
    # kept beside the order so the latest-event rule is one row lock away.
    Column("status", String(STATUS_MAX), nullable=False),
    Column("status_changed_at", UtcDateTime(), nullable=True),
    Column("status_event_id", Key(KEY_MAX), nullable=True),
    Column("digest", digest_type(), nullable=False),
    Column("recorded_at", UtcDateTime(), nullable=False),
    UniqueConstraint("order_id"),
    Index(None, "payer_id", "product_code"),
    **TABLE_OPTIONS,
)

order_state_event = Table(
    "order_state_event",
    metadata,
    Column("id", row_id(), primary_key=True, autoincrement=True),
    Column("event_id", Key(KEY_MAX), nullable=False),
    Column("order_id", Key(KEY_MAX), ForeignKey(order_mirror.c.order_id), nullable=False),
    Column("kind", String(STATUS_MAX), nullable=False),
    Column("changed_at", UtcDateTime(), nullable=False),
    Column("digest", digest_type(), nullable=False),
    Column("recorded_at", UtcDateTime(), nullable=False),
    UniqueConstraint("event_id"),
    Index(None, "order_id", "changed_at"),
    Index(None, "recorded_at"),  # late events: recorded after their day was rated
    **TABLE_OPTIONS,
)

# The hot table: no foreign key (the ledger checks the order itself), so an insert
# takes no shared lock on the order row that state events update.
usage_record = Table(
    "usage_record",
    metadata,
    Column("id", row_id(), primary_key=True, autoincrement=True),
    Column("op_id", Key(KEY_MAX), nullable=False),
    Column("order_id", Key(KEY_MAX), nullable=False),
    Column("product_code", Key(TEXT_MAX), nullable=False),
    Column("item_code", Key(TEXT_MAX), nullable=False),
    Column("user_id", Key(TEXT_MAX), nullable=False),
    Column("payer_id", Key(KEY_MAX), nullable=False),
    Column("quantity", BigInteger, nullable=False),
    Column("occurred_at", UtcDateTime(), nullable=False),
    Column("attributes", Text, nullable=False),
    Column("digest", digest_type(), nullable=False),
    Column("recorded_at", UtcDateTime(), nullable=False),
    UniqueConstraint("op_id"),
    Index(None, "payer_id", "occurred_at"),
    Index(None, "order_id", "occurred_at"),
    **TABLE_OPTIONS,
)

account_num_change = Table(
    "account_num_change",
    metadata,
    Column("id", row_id(), primary_key=True, autoincrement=True),
    Column("payer_id", Key(KEY_MAX), nullable=False),
    Column("product_code", Key(TEXT_MAX), nullable=False),
    Column("count", Integer, nullable=False),
    Column("changed_at", UtcDateTime(), nullable=False),
    Column("recorded_at", UtcDateTime(), nullable=False),
    Index(None, "payer_id", "product_code", "changed_at"),
    Index(None, "recorded_at"),
    **TABLE_OPTIONS,
)

# Refused records, kept as received: the key may be the reason of the refusal
# (too long), so it is clipped to ERROR_KEY_MAX rather than refused again.
error_record = Table(
    "error_record",
    metadata,
    Column("id", row_id(), primary_key=True, autoincrement=True),
    Column("method", String(64), nullable=False),
    Column("key", String(ERROR_KEY_MAX), nullable=False),
    Column("code", String(64), nullable=False),
    Column("reason", Text, nullable=False),
    Column("payload", long_text(), nullable=False),
    Column("received_at", UtcDateTime(), nullable=False),
    Column("recycled_at", UtcDateTime(), nullable=True),
    Index(None, "received_at"),
    **TABLE_OPTIONS,
)

INTAKE_TABLES = (
    product,
    product_plan,
    order_mirror,
    order_state_event,
    usage_record,
    account_num_change,
    error_record,
)
