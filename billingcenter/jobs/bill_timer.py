"""Bill runs inside the daemon: each date is billed ``[billing] delay`` after it starts.

``BillTimer`` is a Twisted service.  Every business date may be some payer's billing
date (payers may have their own day), so a run is made for every date X, at X's start
(midnight in the business time zone) plus ``[billing] delay``.  When the service
starts, and then at each such moment, it runs ``run_date`` for the latest due date and
the ``lookback`` dates before it, oldest first; ``run_date`` (a ``BillRunner`` in the
database thread pool) fires with the run's summary, which is logged.  A rerun of a
billed date is cheap and bills nothing twice, so the lookback catches up dates missed
while the daemon was down and finishes what a crashed or failed run left.  A failure
is logged and the same dates are tried again after ``retry_after`` (at the latest when
the next date is due).  Runs never overlap.

``[billing] delay`` must leave the rating of X's previous day time to finish
(``[rating] delay`` plus the run): charges rated after a payer's bill is made go on its
next bill.  With ``[billing] enabled = false`` the service does nothing.
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

from billingcenter.jobs.billing import BillingRules, BillRunSummary, describe, run_bills
from billingcenter.jobs.claims import Clock
from billingcenter.rating.days import business_day, day_bounds

log = Logger()

DEFAULT_RETRY_AFTER = timedelta(minutes=15)
DEFAULT_LOOKBACK = 3

RunDate = Callable[[date], "Deferred[BillRunSummary]"]


class BillTimerSettings(Protocol):
    """What the timer reads of ``[billing]`` (``billingcenter.config.BillingSettings``)."""

    @property
    def enabled(self) -> bool:
        """Whether the daemon makes bill runs at all."""

    @property
    def delay(self) -> int:
        """Seconds after a date starts before it is billed."""


class BillRunner:
    """Bills one date (``run_bills``); call it in a pool thread.

    ``stopping`` (set by the timer's ``on_stop``) ends a run after its current chunk.
    """

    def __init__(self, engine: Engine, settings: BillingRules, owner: str, clock: Clock) -> None:
        self._engine = engine
        self._settings = settings
        self._owner = owner
        self._clock = clock
        self.stopping = threading.Event()

    def __call__(self, bill_date: date) -> BillRunSummary:
        """The bill run of ``bill_date``."""
        return run_bills(self._engine, bill_date, self._settings, self._owner, self._clock,
                         stop=self.stopping.is_set)


class BillTimer(service.Service):
    """Bills each date in the daemon (see the module doc).

    ``reactor`` schedules (``callLater``); ``clock`` gives the time; ``settings`` is
    ``config.billing``; ``tz`` the business time zone; ``run_date(X)`` runs the bill run
    of X off the reactor thread (e.g. ``deferToThreadPool(reactor, pool, runner, X)``
    with a ``BillRunner``); ``lookback`` is how many dates before the latest due one
    each tick runs again; ``retry_after`` the wait after a failure; ``on_stop`` is
    called when the service stops during a run (``runner.stopping.set``).
    """

    def __init__(
        self,
        reactor: Any,
        clock: Clock,
        settings: BillTimerSettings,
        tz: ZoneInfo,
        run_date: RunDate,
        lookback: int = DEFAULT_LOOKBACK,
        retry_after: timedelta = DEFAULT_RETRY_AFTER,
        on_stop: Callable[[], None] | None = None,
    ) -> None:
        self._reactor = reactor
        self._clock = clock
        self._settings = settings
        self._delay = timedelta(seconds=settings.delay)
        self._tz = tz
        self._run_date = run_date
        self._lookback = lookback
        self._retry_after = retry_after
        self._on_stop = on_stop
        self._call: Any = None
        self._running: Deferred[Any] | None = None

    def due_dates(self, now: datetime) -> list[date]:
        """The dates a tick at ``now`` bills: the latest due one and ``lookback`` before it."""
        latest = business_day(now - self._delay, self._tz)
        return [latest - timedelta(days=n) for n in range(self._lookback, -1, -1)]

    def due_at(self, bill_date: date) -> datetime:
        """When ``bill_date`` becomes due: its start plus the delay."""
        return day_bounds(bill_date, self._tz)[0] + self._delay

    def startService(self) -> None:
        """Bill the dates due now, then wait for the next one (unless disabled)."""
        super().startService()
        if not self._settings.enabled:
            log.info("bill timer disabled ([billing] enabled = false)")
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
        dates = self.due_dates(self._clock())
        running = self._run(dates)
        self._running = running
        running.addCallback(self._succeeded, dates[-1])
        running.addErrback(self._failed, dates[-1])
        running.addBoth(self._finished)

    def _run(self, dates: Sequence[date]) -> Deferred[Any]:
        """Bill ``dates`` one after the other; the chain fires with their summaries."""
        found: list[BillRunSummary] = []
        chain: Deferred[Any] = succeed(None)
        for bill_date in dates:
            chain.addCallback(self._run_one, bill_date, found)
        return chain.addCallback(lambda _: found)

    def _run_one(self, _: object, bill_date: date, found: list[BillRunSummary]
                 ) -> Deferred[None]:
        if not self.running:  # stopped: no further date
            return succeed(None)
        return self._run_date(bill_date).addCallback(found.append)

    def _succeeded(self, summaries: Sequence[BillRunSummary], latest: date) -> None:
        for summary in summaries:
            log.info("{line}", line=describe(summary))
        if self.running:  # the next date; at once if it became due during this run
            self._schedule(self.due_at(latest + timedelta(days=1)))

    def _failed(self, failure: Failure, latest: date) -> None:
        retry = min(self._clock() + self._retry_after, self.due_at(latest + timedelta(days=1)))
        log.failure("bill run up to {date} failed; trying again at {retry}", failure,
                    date=latest.isoformat(), retry=retry.isoformat())
        if self.running:
            self._schedule(retry)

    def _finished(self, _: object) -> None:
        self._running = None
