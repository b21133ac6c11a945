"""Rating inside the daemon: each business day is rated ``delay`` seconds after it closes.

``RatingTimer`` is a Twisted service (a ``billingcenter.jobs.periodic.DailyTimer``).
When it starts, and then each time a business day closes (midnight in the business
time zone) plus ``[rating] delay``, it runs ``run_day`` for the latest closed day and
the ``lookback`` days before it (``[rating] lookback``), oldest first: ``run_day``
rates one day (the daily and the per-use job) in the database thread pool and fires
with the summaries, which are logged.  Rerunning a rated day is cheap and charges
nothing twice, so the lookback days pick up what arrived late (usage records, orders,
state events, account changes) and what a failed or interrupted run left.  Stored
charges a rerun finds the current history prices otherwise are logged as a warning
(they are never changed: see ``billingcenter.jobs.late``).  A failure is logged and
the same days are tried again after ``retry_after`` (at the latest when the next day is
due).  Runs never overlap.

``DayRater`` is the blocking ``run_day`` body: both jobs of one day with the rule book
published at the time of the run.  Stopping the service asks a running ``DayRater`` to
stop after its current chunk.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from itertools import chain
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine
from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from billingcenter.jobs.claims import Clock, RunSummary
from billingcenter.jobs.daily import rate_day_job
from billingcenter.jobs.periodic import DailyTimer, DueSettings
from billingcenter.jobs.usage import rate_usage_job
from billingcenter.rating.days import business_day, day_bounds
from billingcenter.rating.model import RuleBook

log = Logger()

DEFAULT_RETRY_AFTER = timedelta(minutes=15)

RunDay = Callable[[date], "Deferred[Sequence[RunSummary]]"]


class TimerSettings(DueSettings, Protocol):
    """What the timer reads of ``[rating]`` (``billingcenter.config.RatingSettings``):
    ``enabled``, and ``delay``, the seconds after a business day closes before it is
    rated."""


class DayRater:
    """Rates one business day, daily job then per-use job; call it in a pool thread."""

    def __init__(
        self,
        engine: Engine,
        rules: Callable[[], RuleBook],
        tz: ZoneInfo,
        chunk: int,
        owner: str,
        clock: Clock,
    ) -> None:
        self._engine = engine
        self._rules = rules
        self._tz = tz
        self._chunk = chunk
        self._owner = owner
        self._clock = clock
        self.stopping = threading.Event()

    def __call__(self, day: date) -> list[RunSummary]:
        """Both jobs of ``day`` with the rules published now; their summaries."""
        book = self._rules()
        found = []
        for job in (rate_day_job, rate_usage_job):
            if self.stopping.is_set():
                break
            found.append(job(self._engine, book, day, self._tz, self._chunk, self._owner,
                             self._clock, stop=self.stopping.is_set))
        return found


class RatingTimer(DailyTimer):
    """Rates each closed business day in the daemon (see the module doc)."""

    def __init__(
        self,
        reactor: Any,
        clock: Clock,
        settings: TimerSettings,
        tz: ZoneInfo,
        run_day: RunDay,
        lookback: int = 1,
        retry_after: timedelta = DEFAULT_RETRY_AFTER,
        on_stop: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(reactor, clock, settings, tz, run_day, lookback, retry_after, on_stop)

    def due_days(self, now: datetime) -> list[date]:
        """The days a tick at ``now`` rates: the latest due one and ``lookback`` before it."""
        return self.due_dates(now)

    def due_at(self, day: date) -> datetime:
        """When ``day`` becomes due: its end plus the delay."""
        return day_bounds(day, self._tz)[1] + self._delay

    def _latest_due(self, now: datetime) -> date:
        return business_day(now - self._delay, self._tz) - timedelta(days=1)

    def _enabled(self) -> bool:
        if not self._settings.enabled:
            log.info("rating timer disabled ([rating] enabled = false)")
        return self._settings.enabled

    def _report(self, results: Sequence[Sequence[RunSummary]]) -> None:
        for summary in chain.from_iterable(results):
            log.info(
                "rated {day} {job}: {chunks} of {planned} chunks, {seen} looked at, "
                "{charges} charges, {fen} fen, {errors} without a rule, {seconds:.1f} s"
                "{stopped}",
                day=summary.day.isoformat(), job=summary.job, chunks=summary.chunks,
                planned=summary.planned, seen=summary.seen, charges=summary.charges,
                fen=summary.amount_fen, errors=summary.errors, seconds=summary.seconds,
                stopped=" (stopped)" if summary.stopped else "",
            )
            if summary.differences:
                log.warn(
                    "rated {day} {job}: {differences} stored charges differ from the current "
                    "history, {over} fen charged too much, {under} fen too little; list them: "
                    "billingcenter rate --day {day} --differences",
                    day=summary.day.isoformat(), job=summary.job,
                    differences=summary.differences, over=summary.over_fen,
                    under=summary.under_fen,
                )

    def _report_failure(self, failure: Failure, latest: date, retry: datetime) -> None:
        log.failure("rating up to {day} failed; trying again at {retry}", failure,
                    day=latest.isoformat(), retry=retry.isoformat())
