"""Rating inside the daemon: each business day is rated ``delay`` seconds after it closes.

``RatingTimer`` is a Twisted service.  When it starts, and then each time a business
day closes (midnight in the business time zone) plus ``[rating] delay``, it runs
``run_day`` for the latest closed day and the ``lookback`` days before it
(``[rating] lookback``), oldest first: ``run_day`` rates one day (the daily and the
per-use job) in the database thread pool and fires with the summaries, which are
logged.  Rerunning a rated day is cheap and charges nothing twice, so the lookback days
pick up what arrived late (usage records, orders, state events, account changes) and
what a failed or interrupted run left.  Stored charges a rerun finds the current
history prices otherwise are logged as a warning (they are never changed: see
``billingcenter.jobs.late``).  A failure is logged and the same days are tried again
after ``retry_after``.  Runs never overlap.

``DayRater`` is the blocking ``run_day`` body: both jobs of one day with the rule book
published at the time of the run.  Stopping the service asks a running ``DayRater`` to
stop after its current chunk.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine
from twisted.application import service
from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure

from billingcenter.jobs.claims import Clock, RunSummary
from billingcenter.jobs.daily import rate_day_job
from billingcenter.jobs.usage import rate_usage_job
from billingcenter.rating.days import business_day, day_bounds
from billingcenter.rating.model import RuleBook

log = Logger()

DEFAULT_RETRY_AFTER = timedelta(minutes=15)

RunDay = Callable[[date], "Deferred[Sequence[RunSummary]]"]


class TimerSettings(Protocol):
    """What the timer reads of ``[rating]`` (``billingcenter.config.RatingSettings``)."""

    @property
    def enabled(self) -> bool:
        """Whether the daemon rates days at all."""

    @property
    def delay(self) -> int:
        """Seconds after a business day closes before it is rated."""


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


class RatingTimer(service.Service):
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
        self._reactor = reactor
        self._clock = clock
        self._settings = settings
        self._delay = timedelta(seconds=settings.delay)
        self._tz = tz
        self._run_day = run_day
        self._lookback = lookback
        self._retry_after = retry_after
        self._on_stop = on_stop
        self._call: Any = None
        self._running: Deferred[Any] | None = None

    def due_days(self, now: datetime) -> list[date]:
        """The days a tick at ``now`` rates: the latest due one and ``lookback`` before it."""
        latest = business_day(now - self._delay, self._tz) - timedelta(days=1)
        return [latest - timedelta(days=n) for n in range(self._lookback, -1, -1)]

    def due_at(self, day: date) -> datetime:
        """When ``day`` becomes due: its end plus the delay."""
        return day_bounds(day, self._tz)[1] + self._delay

    def startService(self) -> None:
        """Rate the days due now, then wait for the next one (unless disabled)."""
        super().startService()
        if not self._settings.enabled:
            log.info("rating timer disabled ([rating] enabled = false)")
            return
        self._schedule(self._clock())

    def stopService(self) -> Deferred[Any] | None:
        """Cancel the next tick; a run in progress stops after its chunk and is waited for."""
        super().stopService()
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None
        if self._running is None:
            return None
        if self._on_stop is not None:
            self._on_stop()
        return self._running

    def _schedule(self, when: datetime) -> None:
        seconds = max(0.0, (when - self._clock()).total_seconds())
        self._call = self._reactor.callLater(seconds, self._tick)

    def _tick(self) -> None:
        self._call = None
        now = self._clock()
        days = self.due_days(now)
        running = self._run(days)
        self._running = running
        running.addCallback(self._succeeded, days[-1])
        running.addErrback(self._failed, days[-1])
        running.addBoth(self._finished)

    def _run(self, days: Sequence[date]) -> Deferred[Any]:
        """Rate ``days`` one after the other; the chain fires with all their summaries."""
        found: list[RunSummary] = []
        chain: Deferred[Any] = succeed(None)
        for day in days:
            chain.addCallback(self._run_one, day, found)
        return chain.addCallback(lambda _: found)

    def _run_one(self, _: object, day: date, found: list[RunSummary]) -> Deferred[None]:
        if not self.running:  # stopped: no further day
            return succeed(None)
        return self._run_day(day).addCallback(found.extend)

    def _succeeded(self, summaries: Sequence[RunSummary], latest: date) -> None:
        for summary in summaries:
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
        if self.running:  # the next day; at once if it became due during this run
            self._schedule(self.due_at(latest + timedelta(days=1)))

    def _failed(self, failure: Failure, latest: date) -> None:
        retry = min(self._clock() + self._retry_after, self.due_at(latest + timedelta(days=1)))
        log.failure("rating up to {day} failed; trying again at {retry}", failure,
                    day=latest.isoformat(), retry=retry.isoformat())
        if self.running:
            self._schedule(retry)

    def _finished(self, _: object) -> None:
        self._running = None
