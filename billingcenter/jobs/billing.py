"""The bill run of a bill date: every due payer's unbilled charges on one bill.

``run_bills`` bills date X (a business date in the business time zone; the charges
billed are those of the business days before X) in phases, each resumable:

1. **register**: the payers that have charges before X and no ``payer_account`` row
   yet get one (one statement, its own transaction; ``billingcenter.ledger.bills``);
2. **open**: a bill with status ``BUILDING`` for every POSTPAID payer due on X (its
   billing day, else ``[billing] day``, is X's day of the month) that has unbilled
   charges and no bill for X (one statement, its own transaction);
3. **mark** (``billingcenter.jobs.bill_marks``, job ``bill-mark``): ranges of
   ``charge.id``, claimed through ``job_claim``; in one transaction per range, its
   charges are marked with their payers' BUILDING bills and summed per (bill, order,
   product) into ``bill_part``.  Walking ``charge`` in id order reads and writes each
   page once, however the charges of a payer are spread over the table;
4. **finish** (job ``bill``), once every range is marked: chunks of ``payer_account``
   ids holding due payers, claimed like the ranges; in one transaction per chunk, its
   BUILDING bills get their lines (the sums of their parts), totals, status OWED (with
   the ``chargeAccount`` outbox message) or EMPTY, and the chunk's claim is marked
   done; a bill that got no charge is deleted.

If another process still marks a range, the run waits for it (a dead owner's range
is taken over after ``stale_after``); when asked to stop, or when the wait runs out,
it ends without finishing anything, and a rerun does the rest.

Idempotent: a payer has at most one bill per date (unique (payer_id, bill_date)), a
charge is marked by one bill only (``bill_id = 0`` is part of the marking UPDATE), and
each phase's work is committed with its claim, so a rerun, a crash at any point, or
two processes at once never bill anything twice.  A rerun opens bills for payers
registered since; the ranges are then passed again for those bills only, and the
chunks holding BUILDING bills are finished again.  Charges rated after a payer's bill
was finished (late usage, a late day) wait for its next bill.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from typing import Protocol, TypeVar

import attrs
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from billingcenter.jobs.bill_marks import DEFAULT_RANGE, MarkSummary, mark_charges
from billingcenter.jobs.claims import (
    DEFAULT_STALE_AFTER,
    RETRYABLE_MYSQL_ERRORS,
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
from billingcenter.ledger import bills
from billingcenter.ledger.bills import ChunkBills, DueRule
from billingcenter.ledger.charges import ChunkResult, Claim, finish_claim
from billingcenter.ledger.coltypes import is_mysql
from billingcenter.ledger.schema_billing import BUILDING, bill, payer_account
from billingcenter.ledger.transact import error_code

JOB = "bill"
DEADLOCK_ROUNDS = 4  # of ``retrying`` (3 attempts each)
T = TypeVar("T")


class BillingRules(Protocol):
    """What a bill run reads of ``[billing]`` (``billingcenter.config.BillingSettings``)."""

    @property
    def day(self) -> int:
        """The default billing day of the month (1..28)."""

    @property
    def chunk(self) -> int:
        """Payers per claimed chunk."""


@attrs.frozen
class BillRunSummary:
    """What one process's run of a bill date did."""

    run: RunSummary  # finish chunks planned/billed/skipped/lost; seen = due payers
    registered: int = 0  # payer rows this run added
    bills: int = 0
    owed: int = 0
    empty: int = 0
    messages: int = 0  # chargeAccount messages queued
    opened: int = 0  # BUILDING bills this run opened
    marks: MarkSummary = MarkSummary()
    phases: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0)  # seconds: register, open, mark, finish

    @property
    def bill_date(self) -> date:
        """The date billed."""
        return self.run.day

    @property
    def total_fen(self) -> int:
        """The total of the bills this run made."""
        return self.run.amount_fen


def run_bills(
    engine: Engine,
    bill_date: date,
    settings: BillingRules,
    owner: str,
    clock: Clock,
    *,
    chunk: int | None = None,
    mark_range: int = DEFAULT_RANGE,
    stale_after: timedelta = DEFAULT_STALE_AFTER,
    run_id: str | None = None,
    stop: Callable[[], bool] = never,
    start_at: float = 0.0,
) -> BillRunSummary:
    """Bill ``bill_date`` for every due payer; what this process did.

    Bills are finished in chunks of ``chunk`` (default ``settings.chunk``) payer rows,
    charges marked in ranges of ``mark_range`` charge ids.  ``owner`` names this
    process among those sharing the run (unique among processes running at once; the
    same name after a crash takes its chunks back at once, another one after
    ``stale_after``); ``clock`` gives the time; ``stop`` is asked before each chunk
    and range.  ``start_at`` (0..1) rotates the plans so that workers started
    together begin in different places.
    """
    began = time.perf_counter()
    run_id = run_id or new_run_id()
    due = DueRule(bill_date, settings.day)
    registered = retrying(lambda: _register(engine, bill_date, clock))
    registered_at = time.perf_counter()
    opened = retrying(lambda: _open(engine, due, clock, run_id))
    opened_at = time.perf_counter()
    marks = mark_charges(engine, bill_date, owner, run_id, clock, size=mark_range,
                         stale_after=stale_after, stop=stop, start_at=start_at)
    marked_at = time.perf_counter()
    size = day_chunk_size(engine, JOB, bill_date, chunk or settings.chunk)
    summary = RunSummary(JOB, bill_date, owner, run_id, size)
    worker = _Worker(engine, bill_date, size, clock)
    if marks.complete:
        planned_at = clock()
        plan, building = _plan(engine, due, size)
        summary = run_chunks(engine, summary, _rotate(plan, start_at), clock(), clock,
                             stale_after, _redo(building, planned_at), worker.bill, stop)
    else:
        summary = attrs.evolve(summary, stopped=True)
    made, ended = worker.made, time.perf_counter()
    return BillRunSummary(
        run=attrs.evolve(summary, seconds=ended - began),
        registered=registered, bills=made.bills, owed=made.owed, empty=made.empty,
        messages=made.messages, opened=opened, marks=marks,
        phases=(registered_at - began, opened_at - registered_at, marked_at - opened_at,
                ended - marked_at),
    )


def _register(engine: Engine, bill_date: date, clock: Clock) -> int:
    with engine.begin() as conn:
        return bills.register_payers(conn, bill_date, clock())


def _open(engine: Engine, due: DueRule, clock: Clock, run_id: str) -> int:
    with engine.begin() as conn:
        return bills.open_bills(conn, due, clock(), run_id)


def _rotate(plan: list[PlannedChunk], start_at: float) -> list[PlannedChunk]:
    cut = int(len(plan) * min(max(start_at, 0.0), 1.0)) % max(len(plan), 1)
    return plan[cut:] + plan[:cut]


def _redo(building: set[int], planned_at: datetime) -> Redo:
    """A done chunk is finished again when it held BUILDING bills (opened since) at
    ``planned_at`` and was done before: one done since (by another worker) has none."""
    def redo(held: Claim, planned: PlannedChunk, plan_started: datetime) -> bool:
        done = held.finished_at
        return planned.chunk in building and done is not None and done < planned_at

    return redo


def _plan(engine: Engine, due: DueRule, size: int) -> tuple[list[PlannedChunk], set[int]]:
    """The chunks holding payers due on the date, with their highest ids; and the
    chunks holding BUILDING bills of the date."""
    p, b = payer_account.c, bill.c
    with engine.connect() as conn:
        number = chunk_number(p.id, size, is_mysql(conn.dialect))
        query = (
            select(number, func.count(), func.max(p.id))
            .where(due.condition())
            .group_by(number)
            .order_by(number)
        )
        plan = [PlannedChunk(int(k), int(n), int(top)) for k, n, top in conn.execute(query)]
        building = (
            select(number).distinct()
            .select_from(bill.join(payer_account, p.payer_id == b.payer_id))
            .where(b.bill_date == due.bill_date, b.status == BUILDING)
        )
        return plan, {int(k) for k in conn.execute(building).scalars()}


class _Worker:
    """Finishes claimed chunks; keeps the totals of the chunks it committed."""

    def __init__(self, engine: Engine, bill_date: date, size: int, clock: Clock) -> None:
        self._engine = engine
        self._bill_date = bill_date
        self._size = size
        self._clock = clock
        self.made = ChunkBills()

    def bill(self, held: Claim, planned: PlannedChunk) -> ChunkResult | None:
        """Finish one claimed chunk and mark it done; None if the claim was taken over."""
        lo, hi = planned.chunk * self._size, planned.max_id

        def work() -> tuple[ChunkResult, ChunkBills]:
            with self._engine.begin() as conn:
                now = self._clock()
                made = bills.bill_chunk(conn, self._bill_date, lo, hi, now)
                result = ChunkResult(hi, planned.rows, made.charges, made.total_fen)
                if not finish_claim(conn, held, result, self._clock()):
                    raise ClaimLost(f"chunk {held.chunk} of bill {held.day} was taken over")
                return result, made

        try:
            result, made = _persisting(work)
        except ClaimLost:
            return None
        self.made = _add(self.made, made)
        return result


def _persisting(work: Callable[[], T]) -> T:
    """``retrying`` a few times over: two workers' chunks may deadlock now and then
    (unique index gaps of ``bill`` and ``outbox``); the chunk is simply run again."""
    for attempt in range(DEADLOCK_ROUNDS):
        try:
            return retrying(work)
        except DBAPIError as exc:
            if attempt == DEADLOCK_ROUNDS - 1 or error_code(exc) not in RETRYABLE_MYSQL_ERRORS:
                raise
            time.sleep(random.uniform(0.05, 0.5))
    raise AssertionError("unreachable")


def _add(a: ChunkBills, b: ChunkBills) -> ChunkBills:
    return ChunkBills(*(x + y for x, y in zip(attrs.astuple(a), attrs.astuple(b), strict=True)))


def describe(summary: BillRunSummary) -> str:
    """One line about a run: payers, bills, money, time."""
    run = summary.run
    fen = summary.total_fen
    line = (
        f"bill {run.day}: {run.chunks} of {run.planned} chunks billed, {run.seen} payers due, "
        f"{summary.bills} bills ({summary.owed} owed, {summary.empty} empty), {run.charges} "
        f"charges, {'-' if fen < 0 else ''}{abs(fen) // 100}.{abs(fen) % 100:02d} yuan, "
        f"{summary.messages} deductions queued, {summary.marks.charges} charges marked in "
        f"{summary.marks.passes} of {summary.marks.ranges} id ranges, {run.seconds:.2f} s "
        "(register {:.2f}, open {:.2f}, mark {:.2f}, finish {:.2f})".format(*summary.phases)
    )
    notes = []
    if summary.registered:
        notes.append(f"{summary.registered} payers registered")
    if run.skipped:
        notes.append(f"{run.skipped} chunks done before or held by another owner")
    if run.lost:
        notes.append(f"{run.lost} chunks taken over by another owner")
    if not (summary.marks.complete or summary.marks.stopped):
        notes.append("charge ranges still being marked by another owner: no bill finished "
                     "(a rerun finishes them)")
    elif run.stopped:
        notes.append("stopped before the end")
    return line + (f" ({'; '.join(notes)})" if notes else "")


def merge(summaries: Sequence[BillRunSummary]) -> BillRunSummary:
    """Several workers' summaries of one date as one (seconds: the longest)."""
    first = summaries[0]
    runs = [s.run for s in summaries]
    planned = max(r.planned for r in runs)
    chunks, lost = sum(r.chunks for r in runs), sum(r.lost for r in runs)
    run = attrs.evolve(
        first.run,
        owner=",".join(r.owner for r in runs), planned=planned, chunks=chunks, lost=lost,
        skipped=max(planned - chunks, 0),  # done before, or held by someone else
        seen=sum(r.seen for r in runs), charges=sum(r.charges for r in runs),
        amount_fen=sum(r.amount_fen for r in runs), seconds=max(r.seconds for r in runs),
        stopped=any(r.stopped for r in runs),
    )
    marks = [s.marks for s in summaries]
    return BillRunSummary(
        run=run, registered=sum(s.registered for s in summaries),
        bills=sum(s.bills for s in summaries), owed=sum(s.owed for s in summaries),
        empty=sum(s.empty for s in summaries), messages=sum(s.messages for s in summaries),
        opened=sum(s.opened for s in summaries),
        phases=tuple(max(p) for p in zip(*(s.phases for s in summaries), strict=True)),
        marks=MarkSummary(
            ranges=max(m.ranges for m in marks), passes=sum(m.passes for m in marks),
            charges=sum(m.charges for m in marks), complete=all(m.complete for m in marks),
            stopped=any(m.stopped for m in marks)),
    )
