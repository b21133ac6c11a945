"""The mark phase of a bill run: ranges of ``charge.id``, claimed, marked and summed.

``mark_charges`` plans the ranges of ``size`` charge ids (range ``k`` covers ids
``(k * size, (k + 1) * size]``) from the lowest charge a bill of X could take to the
highest charge id, and claims them through ``job_claim`` (job ``bill-mark``, day X;
``billingcenter.jobs.claims``).  Each claimed range is passed in ONE transaction
(``billingcenter.ledger.bill_marks.mark_range``): its charges are marked with the
BUILDING bills opened up to now and summed into ``bill_part``, and the claim is marked
done with the highest bill id the pass took (``last_id``).  A done range is passed
again when bills were opened after it (a BUILDING bill with a higher id: payers
registered since); that pass takes only those bills.

The finish phase must not start before every range is done: ranges held by another
live process are waited for (and taken over once stale); ``mark_charges`` says
whether everything is marked, or why not (asked to stop, or the wait ran out).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date, datetime, timedelta

import attrs
from sqlalchemy.engine import Engine

from billingcenter.jobs.claims import (
    ClaimLost,
    Clock,
    PlannedChunk,
    RunSummary,
    day_chunk_size,
    retrying,
    run_chunks,
)
from billingcenter.ledger import bill_marks
from billingcenter.ledger.bill_marks import MarkPass
from billingcenter.ledger.charges import DONE, ChunkResult, Claim, day_claims, finish_claim

MARK_JOB = "bill-mark"
# Charge ids per range: a range's sums are one row per (bill, order, product) of it,
# so the ranges must span days of charges for the sums to be fewer than the charges.
DEFAULT_RANGE = 500_000
POLL_SECONDS = 0.2


@attrs.frozen
class MarkSummary:
    """What the mark phase did in this process, and whether every range is done."""

    ranges: int = 0  # ranges planned (last plan)
    passes: int = 0  # passes this process made
    charges: int = 0  # charges they marked
    complete: bool = False  # every planned range is done: the bills may be finished
    stopped: bool = False  # asked to stop first


@attrs.frozen
class _Plan:
    chunks: list[PlannedChunk]
    newest: int  # the highest id of a BUILDING bill of the date (0: none)


def mark_charges(
    engine: Engine, bill_date: date, owner: str, run_id: str, clock: Clock, *,
    size: int, stale_after: timedelta, stop: Callable[[], bool], start_at: float = 0.0,
) -> MarkSummary:
    """Mark every range of the date (see the module doc); what this process did.

    Waits, polling, while another owner holds a range, at most ``2 * stale_after``
    plus a minute (a dead owner's range is taken over after ``stale_after``).
    """
    size = day_chunk_size(engine, MARK_JOB, bill_date, size)
    summary = RunSummary(MARK_JOB, bill_date, owner, run_id, size)
    deadline = time.monotonic() + 2 * stale_after.total_seconds() + 60
    while True:
        plan = _plan(engine, bill_date, size)
        marker = _Marker(engine, bill_date, size, clock)
        summary = run_chunks(engine, summary, _rotate(plan.chunks, start_at), clock(), clock,
                             stale_after, _redo(plan.newest), marker.mark, stop)
        found = MarkSummary(len(plan.chunks), summary.chunks, summary.charges)
        if summary.stopped:
            return attrs.evolve(found, stopped=True)
        if _all_done(engine, bill_date, plan):
            return attrs.evolve(found, complete=True)
        if time.monotonic() > deadline:
            return found
        if stop():
            return attrs.evolve(found, stopped=True)
        time.sleep(POLL_SECONDS)


def _plan(engine: Engine, bill_date: date, size: int) -> _Plan:
    """The ranges from the lowest charge a bill could take to the highest charge."""
    with engine.connect() as conn:
        newest = bill_marks.newest_building(conn, bill_date)
        low = bill_marks.lowest_unbilled(conn, bill_date) if newest else None
        high = bill_marks.highest_charge(conn)
    if low is None:
        return _Plan([], newest)
    chunks = []
    for k in range((low - 1) // size, (high - 1) // size + 1):
        first, last = max(k * size + 1, low), min((k + 1) * size, high)
        chunks.append(PlannedChunk(k, last - first + 1, last))
    return _Plan(chunks, newest)


def _rotate(plan: list[PlannedChunk], start_at: float) -> list[PlannedChunk]:
    cut = int(len(plan) * min(max(start_at, 0.0), 1.0)) % max(len(plan), 1)
    return plan[cut:] + plan[:cut]


def _redo(newest: int) -> Callable[[Claim, PlannedChunk, datetime], bool]:
    """A done range is passed again when a bill was opened after its last pass."""
    def redo(held: Claim, planned: PlannedChunk, plan_started: datetime) -> bool:
        return (held.last_id or 0) < newest

    return redo


def _all_done(engine: Engine, bill_date: date, plan: _Plan) -> bool:
    with engine.connect() as conn:
        claims = day_claims(conn, MARK_JOB, bill_date)
    return all(
        (held := claims.get(planned.chunk)) is not None and held.status == DONE
        and (held.last_id or 0) >= plan.newest
        for planned in plan.chunks
    )


class _Marker:
    """Passes claimed ranges; each pass and its claim's mark in one transaction."""

    def __init__(self, engine: Engine, bill_date: date, size: int, clock: Clock) -> None:
        self._engine = engine
        self._bill_date = bill_date
        self._size = size
        self._clock = clock

    def mark(self, held: Claim, planned: PlannedChunk) -> ChunkResult | None:
        """Pass one claimed range and mark it done; None if the claim was taken over."""
        k = planned.chunk

        def work() -> ChunkResult:
            with self._engine.begin() as conn:
                after = held.last_id or 0
                upto = max(bill_marks.newest_building(conn, self._bill_date), after)
                run = MarkPass(self._bill_date, k, k * self._size + 1, (k + 1) * self._size,
                               after, upto)
                marked = bill_marks.mark_range(conn, run)
                result = ChunkResult(upto, planned.rows, marked, 0)
                if not finish_claim(conn, held, result, self._clock()):
                    raise ClaimLost(f"range {k} of {MARK_JOB} {held.day} was taken over")
                return result

        try:
            return retrying(work)
        except ClaimLost:
            return None
