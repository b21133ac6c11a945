"""The bill run of a bill date: every due payer's unbilled charges on one bill.

``run_bills`` bills date X (a business date in the business time zone; the charges
billed are those of the business days before X) in phases, each resumable
(``billingcenter.ledger.bills`` has the SQL, ``billingcenter.ledger.coverage`` the rule
that says which bill holds a charge):

1. **begin**: the ``bill_run`` row of X with its charge id bound, read under the fence
   (``billingcenter.ledger.fence``); a rerun of X takes the same row.  While another
   date's run is RUNNING, X fails with ``BillRunBusy`` (that date must finish first);
2. **register and plan**: payer rows for new payers, then the run's start (the lowest
   charge id a due payer may still have unbilled) and carry;
3. **sum** (``billingcenter.jobs.bill_sums``, job ``bill-sum``): ranges of charge ids
   from the start to the bound, claimed through ``job_claim``, each summed per (payer,
   order, product) into ``bill_part`` in one transaction.  Walking ``charge`` in id
   order reads each page once, however a payer's charges are spread over the table;
   nothing is written to ``charge``;
4. **finish** (job ``bill``), once every range is summed: chunks of ``payer_account``
   ids holding due payers, claimed like the ranges; in one transaction per chunk, the
   due payers' bills with their lines, totals, status OWED (with the ``chargeAccount``
   outbox message) or EMPTY, their payer rows' bounds, and the chunk's claim;
5. **close**: when every chunk is done, the run is DONE.

If another process still sums a range, the run waits for it (a dead owner's range is
taken over after ``stale_after``); when asked to stop, or when the wait runs out, it
ends without finishing anything, and a rerun does the rest.

Idempotent: a payer has at most one bill per date (unique (payer_id, bill_date)), the
bill holds exactly the payer's charges its rule names, and each phase's work is
committed with its claim, so a rerun, a crash at any point, or two processes at once
never bill anything twice.  Charges rated after the run began (late usage, a late day)
wait for the payer's next bill; so do the charges of a payer whose row appeared after
the run was planned.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from typing import Protocol, TypeVar

import attrs
from sqlalchemy import func, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from billingcenter.jobs.bill_sums import DEFAULT_RANGE, SumSummary, sum_charges
from billingcenter.jobs.claims import (
    DEFAULT_STALE_AFTER,
    RETRYABLE_MYSQL_ERRORS,
    ClaimLost,
    Clock,
    PlannedChunk,
    RunSummary,
    all_done,
    chunk_number,
    day_chunk_size,
    never,
    never_redo,
    new_run_id,
    retrying,
    rotate,
    run_chunks,
)
from billingcenter.ledger import bills, fence
from billingcenter.ledger.bills import BillRun, ChunkBills, DueRule
from billingcenter.ledger.charges import ChunkResult, Claim, day_claims, finish_claim
from billingcenter.ledger.coltypes import is_mysql
from billingcenter.ledger.schema_billing import DONE as RUN_DONE
from billingcenter.ledger.schema_billing import payer_account
from billingcenter.ledger.transact import error_code

JOB = "bill"
DEADLOCK_ROUNDS = 4  # of ``retrying`` (3 attempts each)
T = TypeVar("T")


class BillRunBusy(Exception):
    """Another date's bill run is unfinished: it must end before this one begins."""

    def __init__(self, bill_date: date, other: date) -> None:
        super().__init__(
            f"the bill run of {other} is not finished: bill {other} again to finish it "
            f"before billing {bill_date}")
        self.bill_date = bill_date
        self.other = other


class BillingRules(Protocol):
    """What a bill run reads of ``[billing]`` (``billingcenter.config.BillingSettings``)."""

    @property
    def day(self) -> int:
        """The default billing day of the month (1..28)."""

    @property
    def chunk(self) -> int:
        """Payers per claimed chunk."""

    @property
    def workers(self) -> int:
        """Threads sharing a run (``run_workers``)."""


@attrs.frozen
class BillRunSummary:
    """What one process's run of a bill date did."""

    run: RunSummary  # finish chunks planned/billed/skipped/lost; seen = due payers
    registered: int = 0  # payer rows this run added
    bills: int = 0
    owed: int = 0
    empty: int = 0
    messages: int = 0  # chargeAccount messages queued
    sums: SumSummary = SumSummary()
    phases: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0)  # seconds: begin, plan, sum, finish
    done_before: bool = False  # the date's run was DONE already: nothing to do
    closed: bool = False  # this process marked the run DONE

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
    sum_range: int = DEFAULT_RANGE,
    stale_after: timedelta = DEFAULT_STALE_AFTER,
    run_id: str | None = None,
    stop: Callable[[], bool] = never,
    start_at: float = 0.0,
) -> BillRunSummary:
    """Bill ``bill_date`` for every due payer; what this process did.

    Bills are finished in chunks of ``chunk`` (default ``settings.chunk``) payer rows,
    charges summed in ranges of ``sum_range`` charge ids.  ``owner`` names this
    process among those sharing the run (unique among processes running at once; the
    same name after a crash takes its chunks back at once, another one after
    ``stale_after``); ``clock`` gives the time; ``stop`` is asked before each chunk
    and range.  ``start_at`` (0..1) rotates the plans so that workers started
    together begin in different places.  Raises ``BillRunBusy`` while another date's
    run is unfinished.
    """
    began = time.perf_counter()
    if is_mysql(engine.dialect):
        # As the ledger's own engines are (``billingcenter.ledger.engine``), whoever made
        # this one: under REPEATABLE READ the sums' INSERT ... SELECT would lock every
        # charge it reads and the gap above the last one, where rating inserts.  The bills
        # rest on the payer rows' FOR UPDATE locks and on the fence, not on isolation.
        engine = engine.execution_options(isolation_level="READ COMMITTED")
    run_id = run_id or new_run_id()
    due = DueRule(bill_date, settings.day)
    size = day_chunk_size(engine, JOB, bill_date, chunk or settings.chunk)
    summary = RunSummary(JOB, bill_date, owner, run_id, size)
    run = _begin(engine, bill_date, run_id, clock)
    begun_at = time.perf_counter()
    if run.status == RUN_DONE:
        return BillRunSummary(run=attrs.evolve(summary, seconds=begun_at - began),
                              sums=SumSummary(complete=True), done_before=True)
    registered = 0
    if not run.planned:
        begun = run
        registered, run = retrying(lambda: _register_and_plan(engine, begun, due, clock))
    planned_at = time.perf_counter()
    sums = sum_charges(engine, run, due, owner, run_id, clock, size=sum_range,
                       stale_after=stale_after, stop=stop, start_at=start_at)
    summed_at = time.perf_counter()
    worker = _Worker(engine, run, due, size, clock)
    closed = False
    if sums.complete:
        plan = _plan(engine, due, run, size)
        summary = run_chunks(engine, summary, rotate(plan, start_at), clock(), clock,
                             stale_after, never_redo, worker.bill, stop)
        closed = not summary.stopped and _close_if_done(engine, run, plan, clock)
    else:
        summary = attrs.evolve(summary, stopped=True)
    made, ended = worker.made, time.perf_counter()
    return BillRunSummary(
        run=attrs.evolve(summary, seconds=ended - began),
        registered=registered, bills=made.bills, owed=made.owed, empty=made.empty,
        messages=made.messages, sums=sums, closed=closed,
        phases=(begun_at - began, planned_at - begun_at, summed_at - planned_at,
                ended - summed_at),
    )


def run_workers(
    engine: Engine,
    bill_date: date,
    settings: BillingRules,
    owner: str,
    clock: Clock,
    workers: int,
    *,
    chunk: int | None = None,
    sum_range: int = DEFAULT_RANGE,
    stale_after: timedelta = DEFAULT_STALE_AFTER,
    stop: Callable[[], bool] = never,
) -> BillRunSummary:
    """``run_bills`` in ``workers`` threads (owners ``OWNER/1``.., each with its own
    connection, starting at different places of the plans), their summaries merged."""
    def one(index: int) -> BillRunSummary:
        name = owner if workers == 1 else f"{owner}/{index + 1}"
        return run_bills(engine, bill_date, settings, name, clock, chunk=chunk,
                         sum_range=sum_range, stale_after=stale_after, stop=stop,
                         start_at=index / workers)

    if workers == 1:
        return one(0)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bill-run") as pool:
        return merge(list(pool.map(one, range(workers))))


def _begin(engine: Engine, bill_date: date, run_id: str, clock: Clock) -> BillRun:
    """The run row of the date, begun now (under the fence) if there is none yet."""
    while True:
        with engine.connect() as conn:
            found = bills.find_run(conn, bill_date)
            other = bills.running_other(conn, bill_date) if found is None else None
        if found is not None:
            return found
        if other is not None:
            raise BillRunBusy(bill_date, other)

        def begin(conn: Connection, upto: int) -> None:
            if bills.find_run(conn, bill_date) is None and (
                    bills.running_other(conn, bill_date) is None):
                bills.insert_run(conn, bill_date, upto, run_id, clock())

        retrying(lambda: fence.within(engine, begin))


def _register_and_plan(engine: Engine, run: BillRun, due: DueRule, clock: Clock
                       ) -> tuple[int, BillRun]:
    """Register new payers and plan the run, in one transaction holding the run's row:
    a second process starting the same run waits here, then finds it planned."""
    with engine.begin() as conn:
        found = bills.find_run(conn, run.bill_date, lock=True)
        if found is not None and found.planned:
            return 0, found
        registered = bills.register_payers(conn, run, due, clock())
        return registered, bills.plan_run(conn, run, due)


def _plan(engine: Engine, due: DueRule, run: BillRun, size: int) -> list[PlannedChunk]:
    """The chunks holding payers the run bills, with their highest ids."""
    p = payer_account.c
    with engine.connect() as conn:
        number = chunk_number(p.id, size, is_mysql(conn.dialect))
        query = (
            select(number, func.count(), func.max(p.id))
            .where(due.unbilled(), p.unbilled_from >= run.start_id)
            .group_by(number)
            .order_by(number)
        )
        plan = [PlannedChunk(int(k), int(n), int(top)) for k, n, top in conn.execute(query)]
        # Chunks done before (by this run, in another process or before a crash) hold
        # no unbilled payer any more: keep them in the plan so that the run can tell
        # when every chunk is done.
        done = day_claims(conn, JOB, run.bill_date)
    numbers = {c.chunk for c in plan}
    plan += [PlannedChunk(k, 0, 0) for k, held in done.items() if k not in numbers]
    return sorted(plan, key=lambda c: c.chunk)


def _close_if_done(engine: Engine, run: BillRun, plan: list[PlannedChunk],
                   clock: Clock) -> bool:
    """Mark the run DONE when every chunk of the plan is done; whether it was."""
    with engine.begin() as conn:
        if not all_done(day_claims(conn, JOB, run.bill_date), plan):
            return False
        bills.close_run(conn, run, clock())
    return True


class _Worker:
    """Finishes claimed chunks; keeps the totals of the chunks it committed."""

    def __init__(self, engine: Engine, run: BillRun, due: DueRule, size: int,
                 clock: Clock) -> None:
        self._engine = engine
        self._run = run
        self._due = due
        self._size = size
        self._clock = clock
        self.made = ChunkBills()

    def bill(self, held: Claim, planned: PlannedChunk) -> ChunkResult | None:
        """Finish one claimed chunk and mark it done; None if the claim was taken over."""
        lo, hi = planned.chunk * self._size, (planned.chunk + 1) * self._size

        def work() -> tuple[ChunkResult, ChunkBills]:
            with self._engine.begin() as conn:
                now = self._clock()
                made = bills.finish_chunk(conn, self._run, self._due, lo, hi, now)
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
    if summary.done_before:
        return f"bill {run.day}: billed before (the run of this date is done); nothing to do"
    fen = summary.total_fen
    line = (
        f"bill {run.day}: {run.chunks} of {run.planned} chunks billed, {run.seen} payers due, "
        f"{summary.bills} bills ({summary.owed} owed, {summary.empty} empty), {run.charges} "
        f"charges, {'-' if fen < 0 else ''}{abs(fen) // 100}.{abs(fen) % 100:02d} yuan, "
        f"{summary.messages} deductions queued, {summary.sums.passes} of "
        f"{summary.sums.ranges} id ranges summed here, {run.seconds:.2f} s "
        "(begin {:.2f}, plan {:.2f}, sum {:.2f}, finish {:.2f})".format(*summary.phases)
    )
    notes = []
    if summary.registered:
        notes.append(f"{summary.registered} payers registered")
    if run.skipped:
        notes.append(f"{run.skipped} chunks done before or held by another owner")
    if run.lost:
        notes.append(f"{run.lost} chunks taken over by another owner")
    if not (summary.sums.complete or summary.sums.stopped or run.stopped):
        notes.append("charge ranges still being summed by another owner: no bill written "
                     "(a rerun finishes them)")
    elif run.stopped:
        notes.append("stopped before the end")
    elif summary.closed:
        notes.append("run done")
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
    sums = [s.sums for s in summaries]
    return BillRunSummary(
        run=run, registered=sum(s.registered for s in summaries),
        bills=sum(s.bills for s in summaries), owed=sum(s.owed for s in summaries),
        empty=sum(s.empty for s in summaries), messages=sum(s.messages for s in summaries),
        phases=tuple(max(p) for p in zip(*(s.phases for s in summaries), strict=True)),
        sums=SumSummary(
            ranges=max(m.ranges for m in sums), passes=sum(m.passes for m in sums),
            parts=sum(m.parts for m in sums), complete=all(m.complete for m in sums),
            stopped=any(m.stopped for m in sums)),
        done_before=all(s.done_before for s in summaries),
        closed=any(s.closed for s in summaries),
    )
