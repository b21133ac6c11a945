"""The ledger in memory: the same behaviour as ``SqlLedger``, for fast service tests.

One lock makes every method one atomic step, as a transaction is in SQL.  The
shared behaviour suite in ``tests/ledger`` runs against both.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Generic, TypeVar

import attrs

from billingcenter.errors import BillingError
from billingcenter.intake import (
    Limits,
    check_event_against,
    check_order_against,
    check_usage_against,
    validate_account_change,
    validate_event,
    validate_order,
    validate_usage,
)
from billingcenter.ledger.semantics import (
    accepted,
    clip_error,
    merge_products,
    no_order_of,
    repeat,
    supersedes,
)
from billingcenter.model import (
    AccountNumChange,
    ErrorRecord,
    Order,
    OrderStatus,
    Product,
    Receipt,
    StateEvent,
    Usage,
)

T = TypeVar("T")

DEFAULT_LIMITS = Limits()


@attrs.frozen
class _Stored(Generic[T]):
    value: T
    digest: str
    recorded_at: datetime


@attrs.frozen
class _Status:
    status: OrderStatus
    changed_at: datetime | None = None
    event_id: str | None = None


class MemoryLedger:
    """A ``Ledger`` held in dictionaries, thread-safe behind one lock."""

    def __init__(self, limits: Limits = DEFAULT_LIMITS) -> None:
        self._limits = limits
        self._lock = threading.Lock()
        self._products: dict[str, Product] = {}
        self._orders: dict[str, _Stored[Order]] = {}
        self._status: dict[str, _Status] = {}
        self._events: dict[str, _Stored[StateEvent]] = {}
        self._usages: dict[str, _Stored[Usage]] = {}
        self._payer_products: set[tuple[str, str]] = set()
        self._account_changes: list[AccountNumChange] = []
        self._latest_count: dict[tuple[str, str], AccountNumChange] = {}
        self._errors: list[ErrorRecord] = []

    def sync_products(self, products: Iterable[Product]) -> None:
        """Insert or update the catalogue's products (and their plans); never delete."""
        merged = merge_products(products)
        with self._lock:
            for code, item in merged.items():
                known = self._products.get(code)
                plans = item.plans | known.plans if known else item.plans
                self._products[code] = attrs.evolve(item, plans=plans)

    def add_order(self, order: Order, now: datetime) -> Receipt:
        """Store an order mirror (key ``order_id``)."""
        validate_order(order, now, self._limits)
        digest = order.digest()
        with self._lock:
            stored = self._orders.get(order.order_id)
            if stored is not None:
                return repeat("orderId", order.order_id, stored.digest, digest, stored.recorded_at)
            check_order_against(order, self._products.get(order.product_code))
            self._orders[order.order_id] = _Stored(order, digest, now)
            self._status[order.order_id] = _Status(OrderStatus.ACTIVE)
            self._payer_products.add((order.payer_id, order.product_code))
        return accepted(order.order_id, now)

    def add_state_event(self, event: StateEvent, now: datetime) -> Receipt:
        """Store a state event (key ``event_id``); the latest ``changed_at`` sets the status."""
        validate_event(event, now, self._limits)
        digest = event.digest()
        with self._lock:
            stored = self._events.get(event.event_id)
            if stored is not None:
                return repeat("eventId", event.event_id, stored.digest, digest, stored.recorded_at)
            order = self._orders.get(event.order_id)
            check_event_against(event, order.value if order else None)
            self._events[event.event_id] = _Stored(event, digest, now)
            current = self._status[event.order_id]
            if supersedes(event.changed_at, event.event_id, current.changed_at, current.event_id):
                status = event.kind.resulting_status
                self._status[event.order_id] = _Status(status, event.changed_at, event.event_id)
        return accepted(event.event_id, now)

    def add_usage(self, usage: Usage, now: datetime) -> Receipt:
        """Store a usage record (key ``op_id``) with the payer resolved from its order."""
        (answer,) = self.add_usages([(usage, now)])
        if isinstance(answer, BillingError):
            raise answer
        return answer

    def add_usages(self, batch: Sequence[tuple[Usage, datetime]]) -> list[Receipt | BillingError]:
        """Store many usage records at once; each answers what ``add_usage`` would."""
        with self._lock:
            return [self._add_usage(usage, now) for usage, now in batch]

    def _add_usage(self, usage: Usage, now: datetime) -> Receipt | BillingError:
        try:
            validate_usage(usage, now, self._limits)
            digest = usage.digest()
            stored = self._usages.get(usage.op_id)
            if stored is not None:
                return repeat("opId", usage.op_id, stored.digest, digest, stored.recorded_at)
            order = self._orders.get(usage.order_id)
            resolved = check_usage_against(usage, order.value if order else None)
        except BillingError as exc:
            return exc
        self._usages[usage.op_id] = _Stored(resolved, digest, now)
        return accepted(usage.op_id, now)

    def add_account_change(self, change: AccountNumChange, now: datetime) -> bool:
        """Append a changed account count of (payer, product); False if it is unchanged."""
        validate_account_change(change, now, self._limits)
        pair = (change.payer_id, change.product_code)
        with self._lock:
            if pair not in self._payer_products:
                raise no_order_of(*pair)
            latest = self._latest_count.get(pair)
            if latest is not None and latest.count == change.count:
                return False
            self._account_changes.append(change)
            if latest is None or change.changed_at >= latest.changed_at:
                self._latest_count[pair] = change
        return True

    def add_error(self, record: ErrorRecord) -> None:
        """Keep a refused record with its reason for later correction and recycling."""
        with self._lock:
            self._errors.append(clip_error(record))

    def get_order(self, order_id: str) -> Order | None:
        """The stored order mirror, or None."""
        with self._lock:
            stored = self._orders.get(order_id)
        return stored.value if stored else None

    def order_status(self, order_id: str) -> OrderStatus | None:
        """The order's current status (``ACTIVE`` until its first event), or None."""
        with self._lock:
            current = self._status.get(order_id)
        return current.status if current else None

    def get_usage(self, op_id: str) -> Usage | None:
        """The stored usage record, its payer resolved from the order, or None."""
        with self._lock:
            stored = self._usages.get(op_id)
        return stored.value if stored else None

    def row_counts(self) -> dict[str, int]:
        """Rows per table, named as the SQL tables are."""
        with self._lock:
            return {
                "product": len(self._products),
                "product_plan": sum(len(p.plans) for p in self._products.values()),
                "order_mirror": len(self._orders),
                "order_state_event": len(self._events),
                "usage_record": len(self._usages),
                "account_num_change": len(self._account_changes),
                "error_record": len(self._errors),
            }
