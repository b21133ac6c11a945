"""``Periodic``: a job run now and again in the daemon, one run at a time.

A Twisted service that, when it starts (unless disabled), ticks at once; a tick runs the
job (``_run``, a Deferred: the blocking work goes to a thread pool by whatever function
the subclass was given), and when the run has ended its outcome says how long to wait
before the next tick.  Runs never overlap.  Stopping the service cancels the next tick;
a run in progress is asked to stop (``on_stop``) and waited for.

The rating, bill and arrears timers (``billingcenter.jobs``) and the outbox purger
(``billingcenter.outbound.purge``) are ``Periodic``; they keep only what differs: whether
they run at all, what a run does, and how they log its outcome.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from twisted.application import service
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

Clock = Callable[[], datetime]


class Periodic(service.Service):
    """Runs a job now and again, one run at a time (see the module doc).

    ``reactor`` schedules (``callLater``); ``clock`` gives the time; ``on_stop`` is
    called when the service stops during a run.  Subclasses define ``_enabled``,
    ``_run``, ``_succeeded`` and ``_failed``.
    """

    def __init__(self, reactor: Any, clock: Clock,
                 on_stop: Callable[[], None] | None = None) -> None:
        self._reactor = reactor
        self._clock = clock
        self._on_stop = on_stop
        self._call: Any = None
        self._running: Deferred[Any] | None = None

    def startService(self) -> None:
        """Tick at once, unless the timer is disabled."""
        super().startService()
        if self._enabled():
            self._later(0)

    def stopService(self) -> Deferred[Any] | None:
        """Cancel the next tick; a run in progress is asked to stop and waited for."""
        super().stopService()
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None
        if self._running is not None and self._on_stop is not None:
            self._on_stop()
        return self._running

    def _enabled(self) -> bool:
        """Whether the timer runs at all; it logs why not."""
        raise NotImplementedError

    def _run(self, now: datetime) -> Deferred[Any]:
        """One run of the job, ticked at ``now``."""
        raise NotImplementedError

    def _succeeded(self, result: Any, now: datetime) -> float:
        """Log a run's ``result``; the seconds to wait before the next tick."""
        raise NotImplementedError

    def _failed(self, failure: Failure, now: datetime) -> float:
        """Log a run's ``failure``; the seconds to wait before trying again."""
        raise NotImplementedError

    def _until(self, when: datetime) -> float:
        """The seconds from now until ``when`` (none if it has passed)."""
        return max(0.0, (when - self._clock()).total_seconds())

    def _later(self, seconds: float) -> None:
        self._call = self._reactor.callLater(seconds, self._tick)

    def _tick(self) -> None:
        self._call = None
        now = self._clock()
        running = self._run(now)
        self._running = running
        running.addCallback(self._succeeded, now)
        running.addErrback(self._failed, now)
        running.addBoth(self._finished)

    def _finished(self, wait: float | Failure) -> None:
        self._running = None
        # A Failure here is one of _failed's own: there is no moment to tick again at.
        if self.running and not isinstance(wait, Failure):
            self._later(wait)
