"""The bill run of a bill date: every due payer's unbilled charges on one bill.

``run_bills`` bills date X (a business date in the business time zone; the charges
billed are those of the business days before X):

1. registers the payers that have charges before X and no ``payer_account`` row yet
   (one statement, its own transaction; see ``billingcenter.ledger.bills``);
2. plans the chunks of ``payer_account`` ids holding POSTPAID payers due on X (their
   billing day, else ``[billing] day``, is X's day of the month) and claims them through
   ``job_claim`` (job ``bill``, day X; ``billingcenter.jobs.claims``), so several
   processes share a run and a crashed one's chunks are finished by the next run;
3. bills each claimed chunk and marks its claim done in ONE transaction: bills, marked
   charges, lines, totals and the ``chargeAccount`` outbox messages exist together or
   not at all.

Idempotent: a payer has at most one bill per date (unique (payer_id, bill_date)) and a
charge is marked by one bill only (``bill_id = 0`` is part of the marking UPDATE), so a
rerun, a crash, or two processes at once never bill anything twice.  A rerun of a
finished date looks again only at chunks where payers were registered since (their
highest id grew); there it bills the due payers that have no bill for X yet.  Charges
rated after a payer's bill was made (late usage, a late day) wait for its next bill.
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

from billingcenter.jobs.claims import (
    DEFAULT_STALE_AFTER,
    RETRYABLE_MYSQL_ERRORS,
    ClaimLost,
    Clock,
    PlannedChunk,
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
from billingcenter.ledger.schema_billing import payer_account
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

    run: RunSummary  # chunks planned/billed/skipped/lost; seen = due payers looked at
    registered: int = 0  # payer rows this run added
    bills: int = 0
    owed: int = 0
    empty: int = 0
    messages: int = 0  # chargeAccount messages queued

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
    stale_after: timedelta = DEFAULT_STALE_AFTER,
    run_id: str | None = None,
    stop: Callable[[], bool] = never,
    start_at: float = 0.0,
) -> BillRunSummary:
    """Bill ``bill_date`` for every due payer, in chunks of ``chunk`` (default
    ``settings.chunk``) payer rows; what this process did.

    ``owner`` names this process among those sharing the run (unique among processes
    running at once; the same name after a crash takes its chunks back at once,
    another one after ``stale_after``); ``clock`` gives the time; ``stop`` is asked
    before each chunk.  ``start_at`` (0..1) rotates the plan so that workers started
    together begin in different places.
    """
    began = time.perf_counter()
    registered = retrying(lambda: _register(engine, bill_date, clock))
    due = DueRule(bill_date, settings.day)
    size = day_chunk_size(engine, JOB, bill_date, chunk or settings.chunk)
    summary = RunSummary(JOB, bill_date, owner, run_id or new_run_id(), size)
    plan = _rotate(_plan(engine, due, size), start_at)
    worker = _Worker(engine, due, size, clock, summary.run_id)
    summary = run_chunks(
        engine, summary, plan, clock(), clock, stale_after, _redo, worker.bill, stop
    )
    made = worker.made
    return BillRunSummary(
        run=attrs.evolve(summary, seconds=time.perf_counter() - began),
        registered=registered, bills=made.bills, owed=made.owed, empty=made.empty,
        messages=made.messages,
    )


def _register(engine: Engine, bill_date: date, clock: Clock) -> int:
    with engine.begin() as conn:
        return bills.register_payers(conn, bill_date, clock())


def _rotate(plan: list[PlannedChunk], start_at: float) -> list[PlannedChunk]:
    cut = int(len(plan) * min(max(start_at, 0.0), 1.0)) % max(len(plan), 1)
    return plan[cut:] + plan[:cut]


def _redo(held: Claim, planned: PlannedChunk, plan_started: datetime) -> bool:
    """A done chunk is looked at again when payers were registered in it since."""
    return planned.max_id > (held.last_id or 0)


def _plan(engine: Engine, due: DueRule, size: int) -> list[PlannedChunk]:
    """The chunks holding payers due on the date, with their highest ids."""
    with engine.connect() as conn:
        number = chunk_number(payer_account.c.id, size, is_mysql(conn.dialect))
        query = (
            select(number, func.count(), func.max(payer_account.c.id))
            .where(due.condition())
            .group_by(number)
            .order_by(number)
        )
        return [PlannedChunk(int(k), int(n), int(top)) for k, n, top in conn.execute(query)]


class _Worker:
    """Bills claimed chunks; keeps the totals of the chunks it committed."""

    def __init__(self, engine: Engine, due: DueRule, size: int, clock: Clock,
                 run_id: str) -> None:
        self._engine = engine
        self._due = due
        self._size = size
        self._clock = clock
        self._run_id = run_id
        self.made = ChunkBills()

    def bill(self, held: Claim, planned: PlannedChunk) -> ChunkResult | None:
        """Bill one claimed chunk and mark it done; None if the claim was taken over."""
        lo, hi = planned.chunk * self._size, planned.max_id

        def work() -> tuple[ChunkResult, ChunkBills]:
            with self._engine.begin() as conn:
                now = self._clock()
                made = bills.bill_chunk(conn, self._due, lo, hi, now, self._run_id)
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
        f"{summary.messages} deductions queued, {run.seconds:.2f} s"
    )
    notes = []
    if summary.registered:
        notes.append(f"{summary.registered} payers registered")
    if run.skipped:
        notes.append(f"{run.skipped} chunks done before or held by another owner")
    if run.lost:
        notes.append(f"{run.lost} chunks taken over by another owner")
    if run.stopped:
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
    return BillRunSummary(
        run=run, registered=sum(s.registered for s in summaries),
        bills=sum(s.bills for s in summaries), owed=sum(s.owed for s in summaries),
        empty=sum(s.empty for s in summaries), messages=sum(s.messages for s in summaries),
    )
