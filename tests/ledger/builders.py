"""Records for the ledger tests: one catalogue, one clock reading, builders with defaults."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from billingcenter.model import AccountNumChange, Order, Product, StateEvent, StateKind, Usage

NOW = datetime(2025, 6, 1, 12, 0, 0, 123456, tzinfo=UTC)
LATER = NOW + timedelta(minutes=5)
ACTIVATED = datetime(2025, 5, 1, 8, 30, 0, 654321, tzinfo=UTC)

CATALOGUE = (
    Product("SMS-NOTIFY", "SMS notification", frozenset({"SMS-PER-USE", "SMS-MONTHLY"})),
    Product("CLOUD-DISK", "Cloud disk"),
)


def order(**changes: Any) -> Order:
    """An order of SMS-NOTIFY on the per-use plan, paid by p-1."""
    fields: dict[str, Any] = {
        "order_id": "o-1",
        "payer_id": "p-1",
        "user_id": "u-1",
        "product_code": "SMS-NOTIFY",
        "plan_code": "SMS-PER-USE",
        "activated_at": ACTIVATED,
        "account_num": 3,
    }
    fields.update(changes)
    return Order(**fields)


def usage(**changes: Any) -> Usage:
    """A usage record of order o-1 that names no payer (the order's payer is meant)."""
    fields: dict[str, Any] = {
        "op_id": "op-1",
        "order_id": "o-1",
        "product_code": "SMS-NOTIFY",
        "item_code": "SMS",
        "user_id": "u-7",
        "payer_id": "",
        "quantity": 2,
        "occurred_at": NOW - timedelta(hours=1),
        "attributes": {"channel": "api"},
    }
    fields.update(changes)
    return Usage(**fields)


def event(**changes: Any) -> StateEvent:
    """A PAUSED event of order o-1."""
    fields: dict[str, Any] = {
        "event_id": "e-1",
        "order_id": "o-1",
        "kind": StateKind.PAUSED,
        "changed_at": NOW - timedelta(days=1),
    }
    fields.update(changes)
    return StateEvent(**fields)


def account_change(**changes: Any) -> AccountNumChange:
    """p-1 now has 5 authorized accounts on SMS-NOTIFY."""
    fields: dict[str, Any] = {
        "payer_id": "p-1",
        "product_code": "SMS-NOTIFY",
        "count": 5,
        "changed_at": NOW,
    }
    fields.update(changes)
    return AccountNumChange(**fields)
