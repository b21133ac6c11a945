"""The sum phase of a bill run: ranges of ``charge.id``, claimed, summed into parts.

``sum_charges`` plans the ranges of ``size`` charge ids (range ``k`` covers ids
``(k * size, (k + 1) * size]``) from the run's ``start_id`` to its bound ``upto_id``
(both fixed when the run began, so every process plans the same ranges), and claims
them through ``job_claim`` (job ``bill-sum``, day X; ``billingcenter.jobs.claims``).
Each claimed range is summed in ONE transaction with its claim's mark
(``billingcenter.ledger.bills.sum_range``); a done range is never summed again.

The bills must not be written before every range is done: ranges held by another live
process are waited for (and taken over once stale); ``sum_charges`` says whether
everything is summed, or why not (asked to stop, or the wait ran out).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

import attrs
from sqlalchemy.engine import Engine

from billingcenter.jobs.claims import (
    ClaimLost,
    Clock,
    PlannedChunk,
    RunSummary,
    all_done,
    day_chunk_size,
    never_redo,
    retrying,
    rotate,
    run_chunks,
)
from billingcenter.ledger import bills
from billingcenter.ledger.bills import BillRun, DueRule
from billingcenter.ledger.charges import ChunkResult, Claim, day_claims, finish_claim

SUM_JOB = "bill-sum"
# Charge ids per range: a range's sums are one row per (payer, order, product) of it,
# so the ranges must span days of charges for the sums to be fewer than the charges.
DEFAULT_RANGE = 2_000_000
POLL_SECONDS = 0.2


@attrs.frozen
class SumSummary:
    """What the sum phase did in this process, and whether every range is done."""

    ranges: int = 0  # ranges planned
    passes: int = 0  # ranges this process summed
    parts: int = 0  # part rows they wrote
    complete: bool = False  # every planned range is done: the bills may be written
    stopped: bool = False  # asked to stop first


def sum_charges(
    engine: Engine, run: BillRun, due: DueRule, owner: str, run_id: str, clock: Clock, *,
    size: int, stale_after: timedelta, stop: Callable[[], bool], start_at: float = 0.0,
) -> SumSummary:
    """Sum every range of the run (see the module doc); what this process did.

    Waits, polling, while another owner holds a range, at most ``2 * stale_after``
    plus a minute (a dead owner's range is taken over after ``stale_after``).
    """
    size = day_chunk_size(engine, SUM_JOB, run.bill_date, size)
    summary = RunSummary(SUM_JOB, run.bill_date, owner, run_id, size)
    plan = _plan(run, size)
    deadline = time.monotonic() + 2 * stale_after.total_seconds() + 60
    adder = _Adder(engine, run, due, size, clock)
    while True:
        summary = run_chunks(engine, summary, rotate(plan, start_at), clock(), clock,
                             stale_after, never_redo, adder.sum, stop)
        found = SumSummary(len(plan), summary.chunks, summary.charges)
        if summary.stopped:
            return attrs.evolve(found, stopped=True)
        if _all_done(engine, run, plan):
            return attrs.evolve(found, complete=True)
        if time.monotonic() > deadline:
            return found
        if stop():
            return attrs.evolve(found, stopped=True)
        time.sleep(POLL_SECONDS)


def _plan(run: BillRun, size: int) -> list[PlannedChunk]:
    """The ranges from the run's start to its bound."""
    low, high = run.start_id, run.upto_id
    if low > high:
        return []
    chunks = []
    for k in range((low - 1) // size, (high - 1) // size + 1):
        first, last = max(k * size + 1, low), min((k + 1) * size, high)
        chunks.append(PlannedChunk(k, last - first + 1, last))
    return chunks


def _all_done(engine: Engine, run: BillRun, plan: list[PlannedChunk]) -> bool:
    with engine.connect() as conn:
        return all_done(day_claims(conn, SUM_JOB, run.bill_date), plan)


class _Adder:
    """Sums claimed ranges; each range and its claim's mark in one transaction."""

    def __init__(self, engine: Engine, run: BillRun, due: DueRule, size: int,
                 clock: Clock) -> None:
        self._engine = engine
        self._run = run
        self._due = due
        self._size = size
        self._clock = clock

    def sum(self, held: Claim, planned: PlannedChunk) -> ChunkResult | None:
        """Sum one claimed range and mark it done; None if the claim was taken over."""
        k, run = planned.chunk, self._run
        lo, hi = max(k * self._size + 1, run.start_id), min((k + 1) * self._size, run.upto_id)

        def work() -> ChunkResult:
            with self._engine.begin() as conn:
                parts = bills.sum_range(conn, run, self._due, k, lo, hi)
                result = ChunkResult(hi, planned.rows, parts, 0)
                if not finish_claim(conn, held, result, self._clock()):
                    raise ClaimLost(f"range {k} of {SUM_JOB} {held.day} was taken over")
                return result

        try:
            return retrying(work)
        except ClaimLost:
            return None
