"""Rows to frozen model values and back.

Nothing here runs SQL; ``store`` does.  Rows never leave the ledger: only the
model values built here do.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, TypeAlias, TypeVar

from sqlalchemy import Row

from billingcenter.ledger.schema import order_mirror
from billingcenter.model import (
    AccountNumChange,
    ErrorRecord,
    Order,
    OrderStatus,
    StateEvent,
    Usage,
)

T = TypeVar("T")

AnyRow: TypeAlias = Row[*tuple[Any, ...]]

IN_CHUNK = 1000

ORDER_COLUMNS = (
    order_mirror.c.order_id,
    order_mirror.c.payer_id,
    order_mirror.c.user_id,
    order_mirror.c.product_code,
    order_mirror.c.plan_code,
    order_mirror.c.activated_at,
    order_mirror.c.account_num,
)


def chunks(items: Sequence[T], size: int = IN_CHUNK) -> Iterator[Sequence[T]]:
    """``items`` in slices of at most ``size``, for bounded ``IN (...)`` lists."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def order_from_row(row: AnyRow) -> Order:
    """The order mirror of a row holding ``ORDER_COLUMNS``."""
    return Order(
        order_id=row.order_id,
        payer_id=row.payer_id,
        user_id=row.user_id,
        product_code=row.product_code,
        plan_code=row.plan_code,
        activated_at=row.activated_at,
        account_num=row.account_num,
    )


def order_row(order: Order, digest: str, now: datetime) -> dict[str, Any]:
    """The ``order_mirror`` row of a new order: ``ACTIVE`` until its first event."""
    return {
        "order_id": order.order_id,
        "payer_id": order.payer_id,
        "user_id": order.user_id,
        "product_code": order.product_code,
        "plan_code": order.plan_code,
        "activated_at": order.activated_at,
        "account_num": order.account_num,
        "status": OrderStatus.ACTIVE.value,
        "status_changed_at": None,
        "status_event_id": None,
        "digest": digest,
        "recorded_at": now,
    }


def event_row(event: StateEvent, digest: str, now: datetime) -> dict[str, Any]:
    """The ``order_state_event`` row of an event."""
    return {
        "event_id": event.event_id,
        "order_id": event.order_id,
        "kind": event.kind.value,
        "changed_at": event.changed_at,
        "digest": digest,
        "recorded_at": now,
    }


def usage_row(usage: Usage, digest: str, now: datetime) -> dict[str, Any]:
    """The ``usage_record`` row of a usage record whose payer is resolved."""
    return {
        "op_id": usage.op_id,
        "order_id": usage.order_id,
        "product_code": usage.product_code,
        "item_code": usage.item_code,
        "user_id": usage.user_id,
        "payer_id": usage.payer_id,
        "quantity": usage.quantity,
        "occurred_at": usage.occurred_at,
        "attributes": json.dumps(dict(usage.attributes), ensure_ascii=False),
        "digest": digest,
        "recorded_at": now,
    }


def usage_from_row(row: AnyRow) -> Usage:
    """The usage record of a ``usage_record`` row."""
    return Usage(
        op_id=row.op_id,
        order_id=row.order_id,
        product_code=row.product_code,
        item_code=row.item_code,
        user_id=row.user_id,
        payer_id=row.payer_id,
        quantity=row.quantity,
        occurred_at=row.occurred_at,
        attributes=json.loads(row.attributes),
    )


def account_change_row(change: AccountNumChange, now: datetime) -> dict[str, Any]:
    """The ``account_num_change`` row of a change."""
    return {
        "payer_id": change.payer_id,
        "product_code": change.product_code,
        "count": change.count,
        "changed_at": change.changed_at,
        "recorded_at": now,
    }


def error_row(record: ErrorRecord) -> dict[str, Any]:
    """The ``error_record`` row of a refused record, not yet recycled."""
    return {
        "method": record.method,
        "key": record.key,
        "code": record.code,
        "reason": record.reason,
        "payload": record.payload,
        "received_at": record.received_at,
        "recycled_at": None,
    }
