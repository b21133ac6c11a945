"""Bill runs inside the daemon: each date is billed ``[billing] delay`` after it starts.

``BillTimer`` is a Twisted service (a ``billingcenter.jobs.periodic.DailyTimer``).
Every business date may be some payer's billing date (payers may have their own day),
so a run is made for every date X, at X's start (midnight in the business time zone)
plus ``[billing] delay``.  When the service starts, and then at each such moment, it
runs ``run_date`` for the latest due date and the ``lookback`` dates before it, oldest
first; ``run_date`` (a ``BillRunner`` in the database thread pool) fires with the
run's summary, which is logged.  A rerun of a billed date is cheap and bills nothing
twice, so the lookback catches up dates missed while the daemon was down and finishes
what a crashed or failed run left.  A failure is logged and the same dates are tried
again after ``retry_after`` (at the latest when the next date is due).  Runs never
overlap.

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
from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from billingcenter.jobs.billing import BillingRules, BillRunSummary, describe, run_workers
from billingcenter.jobs.claims import Clock
from billingcenter.jobs.periodic import DailyTimer, DueSettings
from billingcenter.rating.days import business_day, day_bounds

log = Logger()

DEFAULT_RETRY_AFTER = timedelta(minutes=15)
DEFAULT_LOOKBACK = 3

RunDate = Callable[[date], "Deferred[BillRunSummary]"]


class BillTimerSettings(DueSettings, Protocol):
    """What the timer reads of ``[billing]`` (``billingcenter.config.BillingSettings``):
    ``enabled``, and ``delay``, the seconds after a date starts before it is billed."""


class BillRunner:
    """Bills one date (``run_workers``, ``[billing] workers`` threads); call it in a pool
    thread.

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
        return run_workers(self._engine, bill_date, self._settings, self._owner, self._clock,
                           self._settings.workers, stop=self.stopping.is_set)


class BillTimer(DailyTimer):
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
        super().__init__(reactor, clock, settings, tz, run_date, lookback, retry_after, on_stop)

    def due_at(self, bill_date: date) -> datetime:
        """When ``bill_date`` becomes due: its start plus the delay."""
        return day_bounds(bill_date, self._tz)[0] + self._delay

    def _latest_due(self, now: datetime) -> date:
        return business_day(now - self._delay, self._tz)

    def _enabled(self) -> bool:
        if not self._settings.enabled:
            log.info("bill timer disabled ([billing] enabled = false)")
        return self._settings.enabled

    def _report(self, results: Sequence[BillRunSummary]) -> None:
        for summary in results:
            log.info("{line}", line=describe(summary))

    def _report_failure(self, failure: Failure, latest: date, retry: datetime) -> None:
        log.failure("bill run up to {date} failed; trying again at {retry}", failure,
                    date=latest.isoformat(), retry=retry.isoformat())
