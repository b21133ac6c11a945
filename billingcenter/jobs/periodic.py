"""What the daemon's date timers share (rating and bill runs).

``DailyTimer`` is a ``billingcenter.periodic.Periodic`` that runs a job for business
dates: each tick runs the latest due date and the ``lookback`` dates before it, oldest
first; after a success the next tick is when the date after the latest becomes due,
after a failure ``retry_after`` later (at the latest when that date becomes due).

Subclasses keep what differs: whether they run at all, when a date is due, what a run
does, and their log lines (logged with their own module's logger).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from twisted.internet.defer import Deferred, succeed
from twisted.python.failure import Failure

from billingcenter.periodic import Clock, Periodic

# one date's run off the reactor thread, e.g. partial(deferToThreadPool, reactor, pool, f)
RunOne = Callable[[date], "Deferred[Any]"]


class DueSettings(Protocol):
    """What a ``DailyTimer`` reads of its configuration section."""

    @property
    def enabled(self) -> bool:
        """Whether the daemon runs the job at all."""

    @property
    def delay(self) -> int:
        """Seconds after a date's moment (``due_at``) before it is run."""


class DailyTimer(Periodic):
    """Runs a job for each business date as it becomes due (see the module doc).

    ``settings`` gives ``enabled`` and ``delay``; ``tz`` is the business time zone;
    ``run_one(X)`` runs the job of date X off the reactor thread and fires with its
    result; ``lookback`` is how many dates before the latest due one each tick runs
    again; ``retry_after`` the wait after a failure.  Subclasses define ``_latest_due``
    and ``due_at`` (when a date is due), ``_enabled`` and the logging of outcomes
    (``_report``, ``_report_failure``).
    """

    def __init__(
        self, reactor: Any, clock: Clock, settings: DueSettings, tz: ZoneInfo,
        run_one: RunOne, lookback: int, retry_after: timedelta,
        on_stop: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(reactor, clock, on_stop)
        self._settings = settings
        self._delay = timedelta(seconds=settings.delay)
        self._tz = tz
        self._run_one = run_one
        self._lookback = lookback
        self._retry_after = retry_after

    def due_dates(self, now: datetime) -> list[date]:
        """The dates a tick at ``now`` runs: the latest due one and ``lookback`` before it."""
        latest = self._latest_due(now)
        return [latest - timedelta(days=n) for n in range(self._lookback, -1, -1)]

    def due_at(self, day: date) -> datetime:
        """When ``day`` becomes due."""
        raise NotImplementedError

    def _latest_due(self, now: datetime) -> date:
        """The latest date due at ``now``."""
        raise NotImplementedError

    def _report(self, results: Sequence[Any]) -> None:
        """Log the results of a run's dates, oldest first."""
        raise NotImplementedError

    def _report_failure(self, failure: Failure, latest: date, retry: datetime) -> None:
        """Log a failed run up to ``latest``, tried again at ``retry``."""
        raise NotImplementedError

    def _run(self, now: datetime) -> Deferred[Any]:
        """Run the dates due at ``now`` one after the other; fires with their results."""
        found: list[Any] = []
        chain: Deferred[Any] = succeed(None)
        for day in self.due_dates(now):
            chain.addCallback(self._run_date, day, found)
        return chain.addCallback(lambda _: found)

    def _run_date(self, _: object, day: date, found: list[Any]) -> Deferred[None]:
        if not self.running:  # stopped: no further date
            return succeed(None)
        return self._run_one(day).addCallback(found.append)

    def _succeeded(self, results: Sequence[Any], now: datetime) -> float:
        self._report(results)
        # the next date; at once if it became due during this run
        return self._until(self._next_due(now))

    def _failed(self, failure: Failure, now: datetime) -> float:
        retry = min(self._clock() + self._retry_after, self._next_due(now))
        self._report_failure(failure, self._latest_due(now), retry)
        return self._until(retry)

    def _next_due(self, now: datetime) -> datetime:
        """When the date after the latest due at ``now`` becomes due."""
        return self.due_at(self._latest_due(now) + timedelta(days=1))
