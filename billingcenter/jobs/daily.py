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
from sqlalchemy.engine import Connection, Engine

from billingcenter.jobs import day_window, late
from billingcenter.jobs.claims import (
    DEFAULT_STALE_AFTER,
    ClaimLost,
    Clock,
    PlannedChunk,
    Redo,
    RunSummary,
    day_chunk_size,
    never,
    new_run_id,
    retrying,
    run_chunks,
)
from billingcenter.jobs.day_window import DayPrices, Window, histories, read_chunk
from billingcenter.ledger import charges
from billingcenter.ledger.charges import DONE, ChargeRow, ChunkResult, Claim
from billingcenter.model import StateEvent
from billingcenter.rating.daily import rate_day
from billingcenter.rating.days import day_bounds
from billingcenter.rating.model import (
    AccountCount,
    Charge,
    OrderHistory,
    RuleBook,
    RuleSet,
)

JOB = "daily"

RateDay = Callable[[OrderHistory, date, ZoneInfo, RuleSet], Charge | None]



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
        window = Window(day, tz, start, end, size, prices)
        plan = day_window.plan(engine, window)
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


def _late_facts(engine: Engine, window: Window) -> dict[int, datetime]:
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


class _Worker:
    """Rates claimed chunks of one day: reads, prices with the core, writes."""

    def __init__(
        self, engine: Engine, window: Window, rate: RateDay, clock: Clock, run_id: str
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
        orders, events, accounts = read_chunk(self._engine, self._window, lo, hi)
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
        for history in histories(orders, events, accounts):
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
    for _, _, found in _read_day_chunks(engine, book, day, tz, chunk):
        yield found


def day_differences(
    engine: Engine, book: RuleBook, day: date, tz: ZoneInfo, chunk: int,
    rate: RateDay = rate_day,
) -> Iterator[late.Difference]:
    """The stored charges of ``day`` that the current history no longer supports or
    prices otherwise (``billingcenter.jobs.late``).  Reads only."""
    for lo, hi, found in _read_day_chunks(engine, book, day, tz, chunk):
        current = {}
        for history, rule_set in found:
            charged = rate(history, day, tz, rule_set)
            if charged is not None:
                current[charged.source_key] = charged.amount_fen
        with engine.connect() as conn:
            stored = late.stored_charges(conn, day, lo, hi)
        yield from late.compare(day, stored, current)


def _read_day_chunks(
    engine: Engine, book: RuleBook, day: date, tz: ZoneInfo, chunk: int
) -> Iterator[tuple[int, int, list[tuple[OrderHistory, RuleSet]]]]:
    """Per chunk of orders (ids ``lo < id <= hi``): each order that may have been active
    on ``day``, with its history and its product's rule set (nothing without rule sets)."""
    start, end = day_bounds(day, tz)
    prices = DayPrices.of(book, start)
    if not prices.rule_sets:
        return
    window = Window(day, tz, start, end, chunk, prices)
    for planned in day_window.plan(engine, window):
        lo, hi = planned.chunk * chunk, planned.max_id
        yield lo, hi, [(history, prices.rule_sets[history.order.product_code])
                       for history in histories(*read_chunk(engine, window, lo, hi))]
