"""The ledger in SQL (SQLAlchemy Core): one transaction per method, frozen values out.

Each public method checks the record alone (``intake.validate_*``), then runs one
transaction that reads the facts, checks against them (``intake.check_*_against``)
and writes.  A key taken by a concurrent writer shows up as a unique-key
``IntegrityError``: the transaction is rolled back and run again, and the second
run finds the stored row and answers as a repeat.  Database failures become
``Unavailable`` after the rollback.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, TypeVar

import attrs
from sqlalchemy import Table, func, insert, literal, select, union_all, update
from sqlalchemy.engine import Connection, Engine

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
from billingcenter.ledger import rows, transact
from billingcenter.ledger.cache import OrderCache
from billingcenter.ledger.schema import (
    INTAKE_TABLES,
    account_num_change,
    error_record,
    order_mirror,
    order_state_event,
    product,
    product_plan,
    usage_record,
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
ORDER_CACHE_SIZE = 100_000


@attrs.frozen
class _Candidate:
    """A usage record that passed ``validate_usage``, with its digest as sent."""

    usage: Usage
    now: datetime
    digest: str


class SqlLedger:
    """A ``Ledger`` on SQLite or MySQL/MariaDB; call it from pool threads only."""

    def __init__(self, engine: Engine, limits: Limits = DEFAULT_LIMITS) -> None:
        self._engine = engine
        self._limits = limits
        self._orders = OrderCache(ORDER_CACHE_SIZE)

    def sync_products(self, products: Iterable[Product]) -> None:
        """Insert or update the catalogue's products (and their plans); never delete."""
        merged = merge_products(products)
        if merged:
            self._write(lambda conn: _sync_products(conn, merged))

    def add_order(self, order: Order, now: datetime) -> Receipt:
        """Store an order mirror (key ``order_id``)."""
        validate_order(order, now, self._limits)
        digest = order.digest()
        return self._write(lambda conn: _add_order(conn, order, digest, now))

    def add_state_event(self, event: StateEvent, now: datetime) -> Receipt:
        """Store a state event (key ``event_id``); the latest ``changed_at`` sets the status."""
        validate_event(event, now, self._limits)
        digest = event.digest()
        return self._write(lambda conn: _add_state_event(conn, event, digest, now))

    def add_usage(self, usage: Usage, now: datetime) -> Receipt:
        """Store a usage record (key ``op_id``) with the payer resolved from its order."""
        (answer,) = self.add_usages([(usage, now)])
        if isinstance(answer, BillingError):
            raise answer
        return answer

    def add_usages(self, batch: Sequence[tuple[Usage, datetime]]) -> list[Receipt | BillingError]:
        """Store many usage records in one transaction of a constant number of statements."""
        items = [self._candidate(usage, now) for usage, now in batch]
        if not any(isinstance(item, _Candidate) for item in items):
            return [item for item in items if isinstance(item, BillingError)]
        # First assume every key is new, the common case, and skip looking the keys
        # up; a unique-key error means some were stored, and the rerun looks.
        return self._write(
            lambda conn: self._add_usages(conn, items, look_up_keys=False),
            after_conflict=lambda conn: self._add_usages(conn, items, look_up_keys=True),
        )

    def add_account_change(self, change: AccountNumChange, now: datetime) -> bool:
        """Append a changed account count of (payer, product); False if it is unchanged."""
        validate_account_change(change, now, self._limits)
        return self._write(lambda conn: _add_account_change(conn, change, now))

    def add_error(self, record: ErrorRecord) -> None:
        """Keep a refused record with its reason for later correction and recycling."""
        row = rows.error_row(clip_error(record))
        self._write(lambda conn: _insert(conn, error_record, row))

    def get_order(self, order_id: str) -> Order | None:
        """The stored order mirror, or None."""
        query = select(*rows.ORDER_COLUMNS).where(order_mirror.c.order_id == order_id)
        row = self._read(lambda conn: conn.execute(query).first())
        return rows.order_from_row(row) if row is not None else None

    def order_status(self, order_id: str) -> OrderStatus | None:
        """The order's current status (``ACTIVE`` until its first event), or None."""
        query = select(order_mirror.c.status).where(order_mirror.c.order_id == order_id)
        status = self._read(lambda conn: conn.execute(query).scalar())
        return OrderStatus(status) if status is not None else None

    def get_usage(self, op_id: str) -> Usage | None:
        """The stored usage record, its payer resolved from the order, or None."""
        query = select(usage_record).where(usage_record.c.op_id == op_id)
        row = self._read(lambda conn: conn.execute(query).first())
        return rows.usage_from_row(row) if row is not None else None

    def row_counts(self) -> dict[str, int]:
        """Rows per table, in one query."""
        query = union_all(
            *(select(literal(t.name), func.count()).select_from(t) for t in INTAKE_TABLES)
        )
        found = self._read(lambda conn: conn.execute(query).all())
        return {str(name): int(count) for name, count in found}

    def _candidate(self, usage: Usage, now: datetime) -> _Candidate | BillingError:
        try:
            validate_usage(usage, now, self._limits)
        except BillingError as exc:
            return exc
        return _Candidate(usage, now, usage.digest())

    def _add_usages(
        self, conn: Connection, items: list[_Candidate | BillingError], look_up_keys: bool
    ) -> list[Receipt | BillingError]:
        candidates = [item for item in items if isinstance(item, _Candidate)]
        stored = _stored_usages(conn, {c.usage.op_id for c in candidates}) if look_up_keys else {}
        unseen = [c for c in candidates if c.usage.op_id not in stored]
        orders = self._orders_of(conn, {c.usage.order_id for c in unseen})
        new_rows: list[dict[str, object]] = []
        answers = [
            _settle_usage(item, stored, orders, new_rows) if isinstance(item, _Candidate) else item
            for item in items
        ]
        if new_rows:
            # Sorted by key so concurrent batches lock unique-index entries in one order.
            new_rows.sort(key=lambda row: str(row["op_id"]))
            conn.execute(insert(usage_record), new_rows)
        return answers

    def _orders_of(self, conn: Connection, order_ids: set[str]) -> dict[str, Order]:
        """The orders named, from the cache where possible, else in one SELECT."""
        found, missing = self._orders.lookup(order_ids)
        for chunk in rows.chunks(sorted(missing)):
            query = select(*rows.ORDER_COLUMNS).where(order_mirror.c.order_id.in_(chunk))
            for row in conn.execute(query):
                order = rows.order_from_row(row)
                found[order.order_id] = order
                self._orders.remember(order)
        return found

    def _write(
        self,
        work: Callable[[Connection], T],
        after_conflict: Callable[[Connection], T] | None = None,
    ) -> T:
        """Run ``work`` in a write transaction (``billingcenter.ledger.transact.write``)."""
        return transact.write(self._engine, work, after_conflict)

    def _read(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` in a read-only transaction."""
        return transact.read(self._engine, work)


def _insert(conn: Connection, table: Table, row: dict[str, Any]) -> None:
    conn.execute(insert(table), row)


def _sync_products(conn: Connection, merged: dict[str, Product]) -> None:
    codes = sorted(merged)
    names, plans = _stored_catalogue(conn, codes)
    wanted = {(code, plan) for code in codes for plan in merged[code].plans}
    new = [{"code": c, "name": merged[c].name} for c in codes if c not in names]
    if new:
        conn.execute(insert(product), new)
    for code in codes:
        if code in names and names[code] != merged[code].name:
            query = update(product).where(product.c.code == code).values(name=merged[code].name)
            conn.execute(query)
    new_plans = [{"product_code": c, "plan_code": p} for c, p in sorted(wanted - plans)]
    if new_plans:
        conn.execute(insert(product_plan), new_plans)


def _stored_catalogue(
    conn: Connection, codes: list[str]
) -> tuple[dict[str, str], set[tuple[str, str]]]:
    """Names of the stored products among ``codes``, and their (product, plan) pairs."""
    names = {
        code: name
        for code, name in conn.execute(
            select(product.c.code, product.c.name).where(product.c.code.in_(codes))
        )
    }
    query = select(product_plan.c.product_code, product_plan.c.plan_code).where(
        product_plan.c.product_code.in_(codes)
    )
    plans = {(code, plan) for code, plan in conn.execute(query)}
    return names, plans


def _add_order(conn: Connection, order: Order, digest: str, now: datetime) -> Receipt:
    query = select(order_mirror.c.digest, order_mirror.c.recorded_at).where(
        order_mirror.c.order_id == order.order_id
    )
    stored = conn.execute(query).first()
    if stored is not None:
        return repeat("orderId", order.order_id, stored.digest, digest, stored.recorded_at)
    check_order_against(order, _read_product(conn, order.product_code))
    conn.execute(insert(order_mirror), rows.order_row(order, digest, now))
    return accepted(order.order_id, now)


def _read_product(conn: Connection, code: str) -> Product | None:
    query = (
        select(product.c.name, product_plan.c.plan_code)
        .select_from(product.outerjoin(product_plan))
        .where(product.c.code == code)
    )
    found = conn.execute(query).all()
    if not found:
        return None
    plans = frozenset(row.plan_code for row in found if row.plan_code is not None)
    return Product(code=code, name=found[0].name, plans=plans)


def _add_state_event(conn: Connection, event: StateEvent, digest: str, now: datetime) -> Receipt:
    query = select(order_state_event.c.digest, order_state_event.c.recorded_at).where(
        order_state_event.c.event_id == event.event_id
    )
    stored = conn.execute(query).first()
    if stored is not None:
        return repeat("eventId", event.event_id, stored.digest, digest, stored.recorded_at)
    # The order row is locked first: events of one order are decided one at a time.
    current = conn.execute(
        select(
            *rows.ORDER_COLUMNS, order_mirror.c.status_changed_at, order_mirror.c.status_event_id
        )
        .where(order_mirror.c.order_id == event.order_id)
        .with_for_update()
    ).first()
    check_event_against(event, rows.order_from_row(current) if current is not None else None)
    assert current is not None
    conn.execute(insert(order_state_event), rows.event_row(event, digest, now))
    if supersedes(
        event.changed_at, event.event_id, current.status_changed_at, current.status_event_id
    ):
        conn.execute(
            update(order_mirror)
            .where(order_mirror.c.order_id == event.order_id)
            .values(
                status=event.kind.resulting_status.value,
                status_changed_at=event.changed_at,
                status_event_id=event.event_id,
            )
        )
    return accepted(event.event_id, now)


def _stored_usages(conn: Connection, op_ids: set[str]) -> dict[str, tuple[str, datetime]]:
    """Digest and receipt time of the keys already stored, in one SELECT per 1000 keys."""
    stored: dict[str, tuple[str, datetime]] = {}
    columns = (usage_record.c.op_id, usage_record.c.digest, usage_record.c.recorded_at)
    for chunk in rows.chunks(sorted(op_ids)):
        query = select(*columns).where(usage_record.c.op_id.in_(chunk))
        for op_id, digest, recorded_at in conn.execute(query):
            stored[op_id] = (digest, recorded_at)
    return stored


def _settle_usage(
    item: _Candidate,
    stored: dict[str, tuple[str, datetime]],
    orders: dict[str, Order],
    new_rows: list[dict[str, object]],
) -> Receipt | BillingError:
    """Answer one record of a batch, queueing its row; earlier records count as stored."""
    usage = item.usage
    try:
        if usage.op_id in stored:
            digest, recorded_at = stored[usage.op_id]
            return repeat("opId", usage.op_id, digest, item.digest, recorded_at)
        resolved = check_usage_against(usage, orders.get(usage.order_id))
    except BillingError as exc:
        return exc
    new_rows.append(rows.usage_row(resolved, item.digest, item.now))
    stored[usage.op_id] = (item.digest, item.now)
    return accepted(usage.op_id, item.now)


def _add_account_change(conn: Connection, change: AccountNumChange, now: datetime) -> bool:
    # Locking an order of (payer, product) makes concurrent changes of the pair
    # take turns, so two equal counts cannot both be appended.
    has_order = conn.execute(
        select(order_mirror.c.id)
        .where(order_mirror.c.payer_id == change.payer_id)
        .where(order_mirror.c.product_code == change.product_code)
        .limit(1)
        .with_for_update()
    ).first()
    if has_order is None:
        raise no_order_of(change.payer_id, change.product_code)
    latest = conn.execute(
        select(account_num_change.c.count)
        .where(account_num_change.c.payer_id == change.payer_id)
        .where(account_num_change.c.product_code == change.product_code)
        .order_by(account_num_change.c.changed_at.desc(), account_num_change.c.id.desc())
        .limit(1)
    ).scalar()
    if latest == change.count:
        return False
    conn.execute(insert(account_num_change), rows.account_change_row(change, now))
    return True
