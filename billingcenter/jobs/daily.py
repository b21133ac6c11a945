"""The daily rating job: each order active on a business day is charged once for it.

``rate_day_job`` rates one business day.  The orders that may have been active that
day (activated before the day's end, and not paused, cancelled or expired for good
before its start: ``order_mirror.status`` is set by the order's latest event) of the
products whose rule set in force at the day's start has a DAILY or DAILY_ACCOUNTS rule
are split into chunks by ``order_mirror.id`` and claimed chunk by chunk
(``billingcenter.jobs.claims``).  Per chunk, ONE query reads the orders, one their
state events up to the day's end, one the account-count changes of their (payer,
product) pairs that matter for the day (the last one before the day, the ones in it);
the pure core (``billingcenter.rating.daily.rate_day``) prices each order; one
multi-row INSERT writes the charges (skipping any already stored) and the chunk is
marked done in the same transaction.  Memory is bounded by the chunk size.

A day is priced by the rule set version in force at its start (a version that takes
effect at noon prices from the next day on).

A rerun of a finished day rates nothing again unless something arrived late.  Orders
installed late (after their day was rated) get higher ids: the chunk they fall in is
rated again (the claim records the highest id it rated) and only their charges are new.
A state event, or an account change of an order's (payer, product), recorded after its
chunk was rated and dated before the day's end makes the next run rate the chunk again
(``billingcenter.jobs.late``): a day the order now turns out to have been active gets
its missing charge.  Charges are never changed, only appended: a stored charge that
the current history no longer supports, or prices otherwise, is counted in the run's
summary (``differences``, ``over_fen``, ``under_fen``) and listed by
``billingcenter rate --day D --differences`` for an operator to settle.  The daemon
reruns the ``[rating] lookback`` days before the latest closed one on each run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import attrs
from sqlalchemy import and_, func, or_, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql.elements import ColumnElement

from billingcenter.jobs import late
from billingcenter.jobs.claims import (
    DEFAULT_STALE_AFTER,
    ClaimLost,
    Clock,
    PlannedChunk,
    Redo,
    RunSummary,
    chunk_number,
    day_chunk_size,
    never,
    new_run_id,
    retrying,
    run_chunks,
)
from billingcenter.jobs.reading import fetch, text, utc
from billingcenter.ledger import charges
from billingcenter.ledger.charges import DONE, ChargeRow, ChunkResult, Claim
from billingcenter.ledger.coltypes import is_mysql
from billingcenter.ledger.engine import READ_ONLY
from billingcenter.ledger.schema import account_num_change, order_mirror, order_state_event
from billingcenter.model import Order, OrderStatus, StateEvent, StateKind
from billingcenter.rating.daily import DAILY_MODES, rate_day
from billingcenter.rating.days import day_bounds
from billingcenter.rating.model import (
    AccountCount,
    Charge,
    Mode,
    OrderHistory,
    Rule,
    RuleBook,
    RuleSet,
)

JOB = "daily"

RateDay = Callable[[OrderHistory, date, ZoneInfo, RuleSet], Charge | None]

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


def rate_day_job(
    engine: Engine,
    book: RuleBook,
    day: date,
    tz: ZoneInfo,
    chunk: int,
    owner: str,
    clock: Clock,
    *,
    rate: RateDay = rate_day,
    stale_after: timedelta = DEFAULT_STALE_AFTER,
    run_id: str | None = None,
    stop: Callable[[], bool] = never,
) -> RunSummary:
    """Rate business day ``day`` of every order in chunks of ``chunk`` orders.

    ``clock`` gives the current time (claims, ``rated_at``); ``owner`` names this
    process among those sharing the run; ``stop`` is asked before each chunk.  Returns
    what this process did.
    """
    started = clock()
    start, end = day_bounds(day, tz)
    prices = DayPrices.of(book, start)
    size = day_chunk_size(engine, JOB, day, chunk)
    summary = RunSummary(JOB, day, owner, run_id or new_run_id(), size)
    if prices.rule_sets:
        window = _Window(day, tz, start, end, size, prices)
        plan = _plan(engine, window)
        worker = _Worker(engine, window, rate, clock, summary.run_id)
        redo = _redo_of(_late_facts(engine, window))
        summary = run_chunks(
            engine, summary, plan, started, clock, stale_after, redo, worker.rate_chunk, stop
        )
        summary = worker.tally(summary)
    return attrs.evolve(summary, seconds=(clock() - started).total_seconds())


def _redo_of(late_facts: Mapping[int, datetime]) -> Redo:
    def redo(held: Claim, planned: PlannedChunk, plan_started: datetime) -> bool:
        """A done chunk is rated again when orders arrived in it after it was rated, or
        facts that change its day were recorded since."""
        return planned.max_id > (held.last_id or 0) or late.is_late(
            late_facts.get(planned.chunk), held
        )

    return redo


def _late_facts(engine: Engine, window: _Window) -> dict[int, datetime]:
    """Chunk -> the latest recording time of facts that may be missing from a done chunk
    (none read on a day's first run)."""
    with engine.connect() as conn:
        done = [c for c in charges.day_claims(conn, JOB, window.day).values() if c.status == DONE]
        if not done:
            return {}
        since = min(c.claimed_at for c in done) - late.LATE_MARGIN
        prices = window.prices
        return late.late_chunks(conn, window.size, window.end, sorted(prices.rule_sets),
                                sorted(prices.accounts_products), since)


@attrs.frozen
class _Window:
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


def _plan(engine: Engine, window: _Window) -> list[PlannedChunk]:
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


class _Worker:
    """Rates claimed chunks of one day: reads, prices with the core, writes."""

    def __init__(
        self, engine: Engine, window: _Window, rate: RateDay, clock: Clock, run_id: str
    ) -> None:
        self._engine = engine
        self._window = window
        self._rate = rate
        self._clock = clock
        self._run_id = run_id
        self.differences: list[late.Difference] = []  # of the chunks this worker rated

    def rate_chunk(self, held: Claim, planned: PlannedChunk) -> ChunkResult | None:
        """Rate one claimed chunk and mark it done; None if the claim was taken over."""
        # Orders that arrive in the chunk after it was planned are left for a redo.
        lo, hi = planned.chunk * self._window.size, planned.max_id
        orders, events, accounts = _read(self._engine, self._window, lo, hi)
        rows = self._price(orders, events, accounts)
        last_id = planned.max_id
        # A chunk rated before: compare what it stored with what the history says now.
        found = self._differences(rows, lo, hi) if held.last_id is not None else []

        def write() -> ChunkResult:
            with self._engine.begin() as conn:
                return self._write(conn, held, rows, last_id, len(orders))

        try:
            result = retrying(write)
        except ClaimLost:
            return None
        self.differences.extend(found)
        return result

    def _differences(self, rows: Sequence[ChargeRow], lo: int, hi: int) -> list[late.Difference]:
        with self._engine.connect() as conn:
            stored = late.stored_charges(conn, self._window.day, lo, hi)
        current = {row[charges.KEY_INDEX]: row[charges.AMOUNT_INDEX] for row in rows}
        return late.compare(self._window.day, stored, current)

    def tally(self, summary: RunSummary) -> RunSummary:
        """``summary`` with the differences this worker found."""
        found = self.differences
        return attrs.evolve(
            summary, differences=len(found), over_fen=sum(d.over_fen for d in found),
            under_fen=sum(d.under_fen for d in found),
        )

    def _price(
        self,
        orders: Sequence[Any],
        events: Mapping[str, list[StateEvent]],
        accounts: Mapping[tuple[str, str], tuple[AccountCount, ...]],
    ) -> list[ChargeRow]:
        window, rate, run_id = self._window, self._rate, self._run_id
        day, tz, rule_sets = window.day, window.tz, window.prices.rule_sets
        now = self._clock()
        rows = []
        for history in _histories(orders, events, accounts):
            found = rate(history, day, tz, rule_sets[history.order.product_code])
            if found is not None:
                rows.append(charges.charge_row(found, now, run_id))
        return rows

    def _write(
        self, conn: Connection, held: Claim, rows: list[ChargeRow], last_id: int, seen: int
    ) -> ChunkResult:
        inserted = charges.insert_charges(conn, rows)
        if inserted == len(rows):
            total = sum(row[charges.AMOUNT_INDEX] for row in rows)
        else:  # some were stored before (a takeover, a redo): count only ours
            inserted, total = charges.inserted_totals(conn, rows, self._run_id)
        result = ChunkResult(last_id, seen, inserted, total)
        if not charges.finish_claim(conn, held, result, self._clock()):
            raise ClaimLost(f"chunk {held.chunk} of {held.job} {held.day} was taken over")
        return result


def day_histories(
    engine: Engine, book: RuleBook, day: date, tz: ZoneInfo, chunk: int
) -> Iterator[list[tuple[OrderHistory, RuleSet]]]:
    """What the job would rate on ``day``, chunk by chunk: each order that may have been
    active with its history and its product's rule set.  Reads only (no claims, no
    charges): for simulations and checks."""
    start, end = day_bounds(day, tz)
    prices = DayPrices.of(book, start)
    if not prices.rule_sets:
        return
    window = _Window(day, tz, start, end, chunk, prices)
    for planned in _plan(engine, window):
        found = _read(engine, window, planned.chunk * chunk, planned.max_id)
        yield [(history, prices.rule_sets[history.order.product_code])
               for history in _histories(*found)]


def day_differences(
    engine: Engine, book: RuleBook, day: date, tz: ZoneInfo, chunk: int,
    rate: RateDay = rate_day,
) -> Iterator[late.Difference]:
    """The stored charges of ``day`` that the current history no longer supports or
    prices otherwise (``billingcenter.jobs.late``).  Reads only."""
    start, end = day_bounds(day, tz)
    prices = DayPrices.of(book, start)
    if not prices.rule_sets:
        return
    window = _Window(day, tz, start, end, chunk, prices)
    for planned in _plan(engine, window):
        lo, hi = planned.chunk * chunk, planned.max_id
        current = {}
        for history in _histories(*_read(engine, window, lo, hi)):
            found = rate(history, day, tz, prices.rule_sets[history.order.product_code])
            if found is not None:
                current[found.source_key] = found.amount_fen
        with engine.connect() as conn:
            stored = late.stored_charges(conn, day, lo, hi)
        yield from late.compare(day, stored, current)


def _histories(
    orders: Sequence[Any],
    events: Mapping[str, list[StateEvent]],
    accounts: Mapping[tuple[str, str], tuple[AccountCount, ...]],
) -> Iterator[OrderHistory]:
    """The history of each order row read by ``_read``."""
    none: tuple[Any, ...] = ()
    for order_id, payer_id, user_id, product, plan, activated_at, account_num in orders:
        order = Order(order_id, payer_id, user_id, product, plan, activated_at, account_num)
        yield OrderHistory(
            order, tuple(events.get(order_id, none)), accounts.get((payer_id, product), none)
        )


_ORDER_FIELDS = (text, text, text, text, text, utc, int)
_EVENT_FIELDS = (text, text, text, utc)
_ACCOUNT_FIELDS = (text, text, int, utc)


def _read(
    engine: Engine, window: _Window, lo: int, hi: int
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


def _orders_query(window: _Window, lo: int, hi: int) -> Any:
    o = order_mirror.c
    return (
        select(
            o.order_id, o.payer_id, o.user_id, o.product_code, o.plan_code, o.activated_at,
            o.account_num,
        )
        .where(window.candidates(lo, hi))
    )


def _events_query(window: _Window, lo: int, hi: int) -> Any:
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


def _accounts_query(window: _Window, lo: int, hi: int) -> Any:
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
