"""What the daily job reads for a business day: its prices, its window, its chunks.

``DayPrices`` are the rule sets that price a day (those with a daily rule, per product);
``Window`` is the day being rated and how it is split; ``plan`` lists the chunks that
hold candidate orders; ``read_chunk`` reads a chunk's candidate orders, their state
events and their account changes in three queries; ``histories`` turns those rows into
the core's ``OrderHistory`` values.  Read-only: the job (``billingcenter.jobs.daily``),
its views and the simulation use the same readers, so they all see the same orders.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import attrs
from sqlalchemy import and_, func, or_, select
from sqlalchemy.engine import Engine
from sqlalchemy.sql.elements import ColumnElement

from billingcenter.jobs.claims import PlannedChunk, chunk_number
from billingcenter.jobs.reading import fetch, text, utc
from billingcenter.ledger.coltypes import is_mysql
from billingcenter.ledger.engine import READ_ONLY
from billingcenter.ledger.schema import account_num_change, order_mirror, order_state_event
from billingcenter.model import Order, OrderStatus, StateEvent, StateKind
from billingcenter.rating.daily import DAILY_MODES
from billingcenter.rating.model import (
    AccountCount,
    Mode,
    OrderHistory,
    Rule,
    RuleBook,
    RuleSet,
)

_KINDS = {kind.value: kind for kind in StateKind}
# An order whose latest event (before the day) left it in one of these was not active.
_INACTIVE = (OrderStatus.PAUSED.value, OrderStatus.CANCELLED.value, OrderStatus.EXPIRED.value)


@attrs.frozen
class DayPrices:
    """The rule sets that price a day's orders: per product, those with a daily rule."""

    rule_sets: Mapping[str, RuleSet]
    accounts_products: frozenset[str]  # products priced by a DAILY_ACCOUNTS rule

    @classmethod
    def of(cls, book: RuleBook, at: datetime) -> DayPrices:
        """The rule sets in force at ``at`` (the start of the day) with a daily rule."""
        found: dict[str, RuleSet] = {}
        accounts: set[str] = set()
        for code in sorted({code for version in book.versions for code in version.products}):
            rule_set = book.for_product(code, at)
            if rule_set is None:
                continue
            modes = {rule.price.mode for rule in rule_set.rules if _may_match(rule, code)}
            if modes & DAILY_MODES:
                found[code] = rule_set
            if Mode.DAILY_ACCOUNTS in modes:
                accounts.add(code)
        return cls(found, frozenset(accounts))


def _may_match(rule: Rule, product_code: str) -> bool:
    """False when the rule's condition requires another product."""
    products = rule.when.equals.get("product_code")
    return products is None or product_code in products


@attrs.frozen
class Window:
    """The day being rated and how it is split."""

    day: date
    tz: ZoneInfo
    start: datetime
    end: datetime
    size: int
    prices: DayPrices

    def candidates(self, lo: int, hi: int) -> ColumnElement[bool]:
        """Orders with ids in ``(lo, hi]`` that may have been active on the day."""
        o = order_mirror.c
        return and_(
            o.id > lo,
            o.id <= hi,
            o.product_code.in_(sorted(self.prices.rule_sets)),
            o.activated_at < self.end,
            or_(
                o.status.not_in(_INACTIVE),
                o.status_changed_at.is_(None),
                o.status_changed_at >= self.start,
            ),
        )


def plan(engine: Engine, window: Window) -> list[PlannedChunk]:
    """The chunks holding orders of the day's daily products, and their highest ids.

    Only the product is tested here: the query then reads nothing but the index on
    ``product_code`` (which holds the id too); the time and status tests run per chunk.
    """
    with engine.connect() as conn:
        number = chunk_number(order_mirror.c.id, window.size, is_mysql(conn.dialect))
        query = (
            select(number, func.count(), func.max(order_mirror.c.id))
            .where(order_mirror.c.product_code.in_(sorted(window.prices.rule_sets)))
            .group_by(number)
            .order_by(number)
        )
        return [PlannedChunk(int(k), int(n), int(top)) for k, n, top in conn.execute(query)]


def histories(
    orders: Sequence[Any],
    events: Mapping[str, list[StateEvent]],
    accounts: Mapping[tuple[str, str], tuple[AccountCount, ...]],
) -> Iterator[OrderHistory]:
    """The history of each order row read by ``read_chunk``."""
    none: tuple[Any, ...] = ()
    for order_id, payer_id, user_id, product, plan, activated_at, account_num in orders:
        order = Order(order_id, payer_id, user_id, product, plan, activated_at, account_num)
        yield OrderHistory(
            order, tuple(events.get(order_id, none)), accounts.get((payer_id, product), none)
        )


_ORDER_FIELDS = (text, text, text, text, text, utc, int)
_EVENT_FIELDS = (text, text, text, utc)
_ACCOUNT_FIELDS = (text, text, int, utc)


def read_chunk(
    engine: Engine, window: Window, lo: int, hi: int
) -> tuple[
    list[Any], dict[str, list[StateEvent]], dict[tuple[str, str], tuple[AccountCount, ...]]
]:
    """The chunk's candidate orders, their events, their pairs' account changes."""
    with engine.connect() as conn:
        conn.execution_options(**{READ_ONLY: True})
        with conn.begin():
            orders = fetch(conn, _orders_query(window, lo, hi), _ORDER_FIELDS)
            events: dict[str, list[StateEvent]] = {}
            for order_id, event_id, kind, changed_at in fetch(
                conn, _events_query(window, lo, hi), _EVENT_FIELDS
            ):
                found = StateEvent(event_id, order_id, _KINDS[kind], changed_at)
                events.setdefault(order_id, []).append(found)
            accounts: dict[tuple[str, str], list[AccountCount]] = {}
            if window.prices.accounts_products:
                for payer_id, product, count, changed_at in fetch(
                    conn, _accounts_query(window, lo, hi), _ACCOUNT_FIELDS
                ):
                    accounts.setdefault((payer_id, product), []).append(
                        AccountCount(changed_at, count)
                    )
    return orders, events, {pair: tuple(found) for pair, found in accounts.items()}


def _orders_query(window: Window, lo: int, hi: int) -> Any:
    o = order_mirror.c
    return (
        select(
            o.order_id, o.payer_id, o.user_id, o.product_code, o.plan_code, o.activated_at,
            o.account_num,
        )
        .where(window.candidates(lo, hi))
    )


def _events_query(window: Window, lo: int, hi: int) -> Any:
    e = order_state_event.c
    return (
        select(e.order_id, e.event_id, e.kind, e.changed_at)
        .select_from(
            order_state_event.join(order_mirror, order_mirror.c.order_id == e.order_id)
        )
        # status_event_id is NULL exactly when an order has no events: skip those.
        .where(
            window.candidates(lo, hi),
            order_mirror.c.status_event_id.is_not(None),
            e.changed_at < window.end,
        )
    )


def _accounts_query(window: Window, lo: int, hi: int) -> Any:
    """Changes of the chunk's DAILY_ACCOUNTS pairs: the last before the day, those in it."""
    a = account_num_change.c
    b = account_num_change.alias("b").c
    pairs = (
        select(order_mirror.c.payer_id, order_mirror.c.product_code)
        .where(
            window.candidates(lo, hi),
            order_mirror.c.product_code.in_(sorted(window.prices.accounts_products)),
        )
        .distinct()
        .subquery("pairs")
    )
    carried_in = (
        select(func.max(b.changed_at))
        .where(
            b.payer_id == a.payer_id, b.product_code == a.product_code, b.changed_at < window.start
        )
        .scalar_subquery()
    )
    return (
        select(a.payer_id, a.product_code, a.count, a.changed_at)
        .select_from(
            account_num_change.join(
                pairs,
                and_(a.payer_id == pairs.c.payer_id, a.product_code == pairs.c.product_code),
            )
        )
        .where(a.changed_at < window.end, or_(a.changed_at >= window.start,
                                               a.changed_at >= carried_in))
    )
