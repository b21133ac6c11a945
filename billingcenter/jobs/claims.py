"""Sharing a job's business day between processes: chunks claimed through ``job_claim``.

A job's day is split into chunks by the id of its source rows (chunk ``k`` covers ids
``(k * size, (k + 1) * size]``); ``size`` is fixed by the first run of the day and
recorded on its claims, so every later run splits the day the same way.  A run:

1. reads the day's claims and plans the chunks that hold work (one grouped query);
2. for each planned chunk, claims it by INSERTing its claim row; a unique-key error
   means someone holds it, and the stored claim is taken over (a compare-and-set
   UPDATE on owner and claim time, so two processes never both win) only when
   * it is ``running`` under this same owner name (the owner restarted after a crash),
   * it is ``running`` and was claimed more than ``stale_after`` ago (its owner died),
   * it is ``done`` but the job says it has new work (``redo``: orders that arrived
     after it was rated, unrated usage records);
3. rates the chunk and writes its charges and marks the claim ``done`` in ONE
   transaction; the mark is a compare-and-set too, so an owner whose claim was taken
   over meanwhile rolls its chunk back.

Charges are unique per (kind, source_key) whatever happens here, so claiming only
decides who does the work; it is never what prevents a double charge.  Owner names
must be unique among processes running at the same time (``host:pid`` by default).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

import attrs
from sqlalchemy import literal_column
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.sql.elements import ColumnElement

from billingcenter.ledger import charges
from billingcenter.ledger.charges import DONE, RUNNING, ChunkResult, Claim

T = TypeVar("T")

DEFAULT_STALE_AFTER = timedelta(minutes=10)
ATTEMPTS = 3
# MySQL/MariaDB errors after which a transaction may simply run again.
RETRYABLE_MYSQL_ERRORS = frozenset({1205, 1213})  # lock wait timeout, deadlock

Clock = Callable[[], datetime]


@attrs.frozen
class PlannedChunk:
    """A chunk that holds work now: how many source rows, and the highest id among them."""

    chunk: int
    rows: int
    max_id: int


# Whether a chunk marked done must be rated again: (its claim, the plan, plan start).
Redo = Callable[[Claim, PlannedChunk, datetime], bool]
# Rate one claimed chunk, mark it done in the same transaction; None if the claim was lost.
RateChunk = Callable[[Claim, PlannedChunk], ChunkResult | None]


@attrs.frozen
class RunSummary:
    """What one run of a job did for one business day (this process only)."""

    job: str
    day: date
    owner: str
    run_id: str
    chunk_size: int
    planned: int = 0  # chunks holding work when the run planned
    chunks: int = 0  # chunks this run rated
    skipped: int = 0  # chunks done already or held by a live owner
    lost: int = 0  # chunks taken over by another owner while this one rated them
    seen: int = 0  # orders (daily) or records (usage) looked at
    charges: int = 0  # charges this run wrote
    amount_fen: int = 0  # their total
    errors: int = 0  # records no rule prices (usage; kept in error_record)
    differences: int = 0  # stored charges the current history prices otherwise (daily)
    over_fen: int = 0  # what they charged more than the current history supports
    under_fen: int = 0  # what they charged less than the current history prices
    seconds: float = 0.0
    stopped: bool = False  # asked to stop before every planned chunk was looked at

    def add(self, result: ChunkResult) -> RunSummary:
        """This summary with one more rated chunk."""
        return attrs.evolve(
            self,
            chunks=self.chunks + 1,
            seen=self.seen + result.rows_seen,
            charges=self.charges + result.charges,
            amount_fen=self.amount_fen + result.amount_fen,
            errors=self.errors + result.errors,
        )


class ClaimLost(Exception):
    """The chunk's claim was taken over while this owner rated it; its work is undone."""


def new_run_id() -> str:
    """A fresh run id (the ``charge.run_id`` of what one run writes)."""
    return uuid.uuid4().hex


def chunk_number(column: Any, size: int, mysql: bool) -> ColumnElement[int]:
    """Which chunk of ``size`` ids a positive integer id falls in (integer division)."""
    shifted = (column - literal_column("1")).self_group()
    divisor: ColumnElement[int] = literal_column(str(int(size)))
    # Integer division: MySQL DIV; SQLite divides integers as integers.
    return shifted.op("DIV" if mysql else "/")(divisor)


def retrying(work: Callable[[], T]) -> T:
    """Run a transaction, again after a deadlock or lock wait timeout (MySQL)."""
    for attempt in range(ATTEMPTS):
        try:
            return work()
        except IntegrityError:
            raise
        except DBAPIError as exc:
            code = getattr(exc.orig, "args", (None,))[0] if exc.orig is not None else None
            if code not in RETRYABLE_MYSQL_ERRORS or attempt == ATTEMPTS - 1:
                raise
            time.sleep(0.05 * (attempt + 1))
    raise AssertionError("unreachable")


def day_chunk_size(engine: Engine, job: str, day: date, requested: int) -> int:
    """The chunk size of ``job`` on ``day``: the one its first run recorded, else ``requested``."""
    with engine.connect() as conn:
        found = charges.day_claims(conn, job, day)
    sizes = {claim.chunk_size for claim in found.values()}
    return min(sizes) if sizes else requested


def may_take(
    held: Claim, owner: str, now: datetime, stale_after: timedelta, redo: bool
) -> bool:
    """Whether ``owner`` may take the stored claim ``held`` over (see the module doc)."""
    if held.status == RUNNING:
        return held.owner == owner or held.claimed_at < now - stale_after
    return held.status == DONE and redo


def claim(
    engine: Engine,
    job: str,
    day: date,
    size: int,
    planned: PlannedChunk,
    owner: str,
    clock: Clock,
    stale_after: timedelta,
    needs_redo: Callable[[Claim], bool],
) -> Claim | None:
    """Claim a planned chunk for ``owner``; None when someone else holds it rightly."""
    def insert() -> Claim:
        with engine.begin() as conn:
            return charges.insert_claim(conn, job, day, planned.chunk, size, owner, clock())

    def take_over() -> Claim | None:
        with engine.begin() as conn:
            held = charges.get_claim(conn, job, day, planned.chunk)
            now = clock()
            if held is None or not may_take(held, owner, now, stale_after, needs_redo(held)):
                return None
            return charges.take_claim(conn, held, owner, now)

    try:
        return retrying(insert)
    except IntegrityError:
        return retrying(take_over)


def never() -> bool:
    """A stop signal that never fires."""
    return False


def never_redo(held: Claim, planned: PlannedChunk, plan_started: datetime) -> bool:
    """A ``Redo`` for work done once and for all: a done chunk is never taken again."""
    return False


def all_done(found: Mapping[int, Claim], plan: Sequence[PlannedChunk]) -> bool:
    """Whether every chunk of ``plan`` has a done claim among ``found`` (by chunk)."""
    return all((held := found.get(planned.chunk)) is not None and held.status == DONE
               for planned in plan)


def rotate(plan: list[PlannedChunk], start_at: float) -> list[PlannedChunk]:
    """``plan`` started at the fraction ``start_at`` (0..1) of its length and wrapped, so
    that workers started together begin in different places."""
    cut = int(len(plan) * min(max(start_at, 0.0), 1.0)) % max(len(plan), 1)
    return plan[cut:] + plan[:cut]


def run_chunks(
    engine: Engine,
    summary: RunSummary,
    plan: Sequence[PlannedChunk],
    plan_started: datetime,
    clock: Clock,
    stale_after: timedelta,
    redo: Redo,
    rate_chunk: RateChunk,
    stop: Callable[[], bool] = never,
) -> RunSummary:
    """Claim and rate each chunk planned at ``plan_started``; what this run did.

    ``stop`` is asked before each chunk: when it says so the run ends there (the
    chunks left are rated by the next run).
    """
    summary = attrs.evolve(summary, planned=len(plan))
    with engine.connect() as conn:
        known = charges.day_claims(conn, summary.job, summary.day)
    for planned in plan:
        if stop():
            return attrs.evolve(summary, stopped=True)
        seen = known.get(planned.chunk)
        if seen is not None and seen.status == DONE and not redo(seen, planned, plan_started):
            summary = attrs.evolve(summary, skipped=summary.skipped + 1)
            continue
        held = claim(
            engine, summary.job, summary.day, summary.chunk_size, planned, summary.owner,
            clock, stale_after, _redo_of(redo, planned, plan_started),
        )
        if held is None:
            summary = attrs.evolve(summary, skipped=summary.skipped + 1)
            continue
        result = rate_chunk(held, planned)
        if result is None:
            summary = attrs.evolve(summary, lost=summary.lost + 1)
        else:
            summary = summary.add(result)
    return summary


def _redo_of(redo: Redo, planned: PlannedChunk, plan_started: datetime) -> Callable[[Claim], bool]:
    def needs_redo(found: Claim) -> bool:
        return redo(found, planned, plan_started)

    return needs_redo
