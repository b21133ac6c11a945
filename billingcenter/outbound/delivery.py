"""``Deliverer``: the outbox delivered to remote Hessian services, in the daemon or a command.

A Twisted service that polls the outbox (``billingcenter.ledger.outbox``):

1. it leases up to ``[outbox] batch`` due messages in the thread pool (several
   deliverers, in one process or many, never lease the same message: the lease is a
   compare-and-set, ``FOR UPDATE SKIP LOCKED`` on MariaDB), and leases again as soon
   as fewer than half a batch are left in hand; after a lease that found less than a
   full batch it waits ``interval`` seconds before looking again;
2. it calls up to ``concurrency`` messages at once with the Hessian client, each
   with its message key as the DTO's id (``deductionId``, ``noticeId``);
3. it settles the outcomes in batches, each only while it still holds the lease:
   a reply (any value) -> ``DELIVERED``; a fault, an HTTP error, a timeout or a
   refused connection -> tried again after ``backoff_initial`` seconds, doubled each
   attempt up to ``backoff_max``; after ``max_attempts`` attempts -> ``DEAD`` (kept, and
   revived with ``billingcenter outbox retry``).

A message whose lease would run out before its call could finish (``Remote.timeout``)
is given back untouched; keep ``[outbox] lease`` well above the remotes' timeouts.
Messages of a target whose remote has no URL are given back and not attempted (logged
once per target).  A message whose ``ordering_key`` has an
earlier ``PENDING`` message waits for it (a STOP is delivered before the REOPEN of the
same order).  A deliverer that dies holding leases only delays those messages until
``lease`` seconds have passed; then any deliverer takes them again, so a remote may
receive a call twice and must act once per id.  Stopping the service waits for the
calls in flight and settles them.

While it runs it also purges ``DELIVERED`` messages older than ``[outbox]
keep_delivered`` days, in small batches about once a minute
(``billingcenter.outbound.purge``).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import attrs
from sqlalchemy.engine import Engine
from twisted.application import service
from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from billingcenter.config import Config, OutboxSettings, Remote
from billingcenter.ledger import outbox
from billingcenter.ledger.outbox import ACCOUNT, Backoff, Leased, Outcome, Settled
from billingcenter.outbound.client import HessianClient
from billingcenter.outbound.messages import BadMessage, call_arguments
from billingcenter.outbound.purge import Purger

log = Logger()

# run(function, *args) in the database thread pool: partial(deferToThreadPool, reactor, pool)
Runner = Callable[..., "Deferred[Any]"]
Clock = Callable[[], datetime]
# target -> the remote it names (a Remote without a URL: not delivered)
Remotes = Callable[[str], Remote]
BUSINESS_PREFIX = "business:"
LEASE_MARGIN = 1.0  # seconds a call must be able to finish before its lease runs out


def remotes_of(config: Config) -> Remotes:
    """Targets as configured: ``account`` -> ``[account_system]``, ``business:P`` ->
    ``[feedback:P]`` or ``[feedback]``; anything else has no remote."""
    def remote(target: str) -> Remote:
        if target == ACCOUNT:
            return config.account_system
        if target.startswith(BUSINESS_PREFIX):
            return config.feedback_for(target[len(BUSINESS_PREFIX):])
        return Remote()

    return remote


@attrs.define
class DeliveryStats:
    """What a deliverer did since it started (this process only)."""

    leased: int = 0
    attempts: int = 0
    delivered: int = 0
    retried: int = 0  # attempts that failed and will be tried again
    dead: int = 0
    lost: int = 0  # outcomes not recorded: the lease had been taken over
    released: int = 0  # given back unattempted
    started: float = attrs.field(factory=time.monotonic)
    last_settled: float = 0.0  # when outcomes were last recorded

    @property
    def failed(self) -> int:
        """Attempts that failed (retried or dead)."""
        return self.retried + self.dead

    def rate(self) -> float:
        """Messages delivered per second, from the start to the last recorded outcome."""
        seconds = (self.last_settled or time.monotonic()) - self.started
        return self.delivered / seconds if seconds > 0 else 0.0


class Deliverer(service.Service):
    """Delivers the outbox (see the module doc).

    ``engine``: the ledger database; ``run``: runs a blocking function in the
    service's database thread pool; ``settings``: ``config.outbox``; ``remotes``: the
    Remote of a target (``remotes_of(config)``); ``owner``: a name unique among running
    deliverers (``host:pid``); ``clock``: the time as an aware datetime; ``reactor``:
    for timers and the HTTP client (``client``, made here unless given).
    """

    def __init__(
        self, engine: Engine, run: Runner, settings: OutboxSettings, remotes: Remotes,
        owner: str, clock: Clock, reactor: Any, client: HessianClient | None = None,
    ) -> None:
        self._engine = engine
        self._run = run
        self._settings = settings
        self._remotes = remotes
        self._owner = owner
        self._clock = clock
        self._reactor = reactor
        self._own_client = client is None
        self._client = client or HessianClient(reactor, per_host=settings.concurrency)
        self._backoff = Backoff(settings.max_attempts, settings.backoff_initial,
                                settings.backoff_max)
        self._low_water = max(settings.concurrency, settings.batch // 2)
        self.stats = DeliveryStats()
        self._queue: deque[Leased] = deque()
        self._outcomes: list[Outcome] = []
        self._in_flight = self._giving = 0
        self._leasing = self._settling = False
        self._may_lease = True
        self._found_none = False  # the last lease found nothing due
        self._wake_call: Any = None
        self._skip: set[str] = set()
        self._waiters: list[Deferred[DeliveryStats]] = []
        self.purger = Purger(engine, run, settings.keep_delivered, clock, reactor)

    # ------------------------------------------------------------------ service

    def startService(self) -> None:
        """Start polling (unless ``[outbox] enabled`` is false)."""
        super().startService()
        if not self._settings.enabled:
            log.info("outbox delivery disabled ([outbox] enabled = false)")
            return
        self.stats = DeliveryStats()
        self._may_lease = True
        self.purger.start()
        self._pump()

    def stopService(self) -> Deferred[Any]:
        """Stop leasing; give back what is not started; wait for the calls in flight."""
        super().stopService()
        if self._wake_call is not None and self._wake_call.active():
            self._wake_call.cancel()
        self._wake_call = None
        done = self.idle()
        self._pump()
        purged = self.purger.stop()
        done.addBoth(lambda result: purged.addBoth(lambda _: result))
        if self._own_client:
            done.addBoth(lambda result: self._client.close().addBoth(lambda _: result))
        return done

    def idle(self) -> Deferred[DeliveryStats]:
        """Fires with the stats once nothing is due, in hand, in flight or unsettled
        (or, once stopped, when the calls in flight are settled)."""
        waiter: Deferred[DeliveryStats] = Deferred()
        self._waiters.append(waiter)
        self._check_idle()
        return waiter

    # ------------------------------------------------------------------ the loop

    def _pump(self) -> None:
        """Start calls, settle outcomes, lease more: whatever can happen now."""
        if not self.running and self._queue:
            self._give_back(list(self._queue))
            self._queue.clear()
        while self.running and self._queue and self._in_flight < self._settings.concurrency:
            self._start(self._queue.popleft())
        self._settle()
        self._lease()
        self._check_idle()

    def _lease(self) -> None:
        if not self.running or self._leasing or not self._may_lease:
            return
        if len(self._queue) + self._in_flight >= self._low_water:
            return
        self._leasing = True
        now = self._clock()
        leased = self._run(outbox.lease, self._engine, self._owner, now,
                           timedelta(seconds=self._settings.lease), self._settings.batch,
                           frozenset(self._skip))
        leased.addCallbacks(self._leased, self._lease_failed)

    def _leased(self, messages: list[Leased]) -> None:
        self._leasing = False
        self._found_none = not messages
        self.stats.leased += len(messages)
        unconfigured = [m for m in messages if not self._remote(m).configured]
        self._give_back(unconfigured)
        self._queue.extend(m for m in messages if self._remote(m).configured)
        if len(messages) < self._settings.batch:
            self._sleep()
        self._pump()

    def _lease_failed(self, failure: Failure) -> None:
        self._leasing = False
        log.failure("outbox: leasing failed; trying again in {interval} s", failure,
                    interval=self._settings.interval)
        self._sleep()
        self._pump()

    def _sleep(self) -> None:
        """No more leasing until ``interval`` seconds have passed."""
        self._may_lease = False
        if self.running and (self._wake_call is None or not self._wake_call.active()):
            self._wake_call = self._reactor.callLater(self._settings.interval, self._wake)

    def _wake(self) -> None:
        self._wake_call = None
        self._may_lease = True
        self._pump()

    def _remote(self, message: Leased) -> Remote:
        remote = self._remotes(message.target)
        if not remote.configured and message.target not in self._skip:
            self._skip.add(message.target)
            log.warn("outbox: target {target} has no URL configured; its messages wait",
                     target=message.target)
        return remote

    # ------------------------------------------------------------------ calls

    def _start(self, message: Leased) -> None:
        remote = self._remotes(message.target)
        left = (message.lease_until - self._clock()).total_seconds()
        # A call that could outlive its lease is given back (and leased again soon), unless
        # the lease is too short for any call: then half the lease must be left.
        if left < min(remote.timeout + LEASE_MARGIN, self._settings.lease / 2):
            self._give_back([message])
            return
        self._in_flight += 1
        self.stats.attempts += 1
        try:
            called = self._client.call(remote, message.method,
                                       call_arguments(message.method, message.payload))
        except BadMessage as exc:
            called = Deferred()
            called.errback(exc)
        called.addCallbacks(lambda _: Outcome(message),
                            lambda failure: Outcome(message, _reason(failure)))
        called.addCallback(self._called)

    def _called(self, outcome: Outcome) -> None:
        self._in_flight -= 1
        self._outcomes.append(outcome)
        self._pump()

    def _give_back(self, messages: list[Leased]) -> None:
        if not messages:
            return
        self.stats.released += len(messages)
        self._giving += 1
        given = self._run(outbox.release, self._engine, messages)
        given.addErrback(lambda f: log.failure("outbox: giving back leases failed", f))
        given.addBoth(self._given)

    def _given(self, _: object) -> None:
        self._giving -= 1
        self._check_idle()

    # ------------------------------------------------------------------ settling

    def _settle(self) -> None:
        if self._settling or not self._outcomes:
            return
        outcomes, self._outcomes = self._outcomes, []
        self._settling = True
        settled = self._run(outbox.settle, self._engine, outcomes, self._clock(),
                            self._backoff)
        settled.addCallbacks(self._settled, self._settle_failed, callbackArgs=(outcomes,),
                             errbackArgs=(outcomes,))

    def _settled(self, settled: Settled, outcomes: list[Outcome]) -> None:
        self._settling = False
        self.stats.delivered += settled.delivered
        self.stats.retried += settled.retried
        self.stats.dead += settled.dead
        self.stats.lost += settled.lost
        self.stats.last_settled = time.monotonic()
        _log_failures(outcomes, settled)
        if any(o.error is None and o.message.ordering_key for o in outcomes):
            self._may_lease = True  # the next message of an ordering key may be due now
            self._found_none = False
        self._pump()

    def _settle_failed(self, failure: Failure, outcomes: list[Outcome]) -> None:
        log.failure("outbox: recording {n} outcomes failed; trying again", failure,
                    n=len(outcomes))
        self._outcomes[:0] = outcomes
        self._reactor.callLater(self._settings.interval, self._retry_settle)

    def _retry_settle(self) -> None:
        self._settling = False
        self._pump()

    def _check_idle(self) -> None:
        busy = (self._in_flight or self._settling or self._outcomes or self._leasing
                or self._giving)
        if busy or (self.running and (self._queue or not self._found_none)):
            return
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter.callback(self.stats)


def _reason(failure: Failure) -> str:
    """The one-line reason of a failed call, as stored in ``last_error``."""
    error = failure.value
    text = str(error) if str(error) else type(error).__name__
    return " ".join(text.split())


def _log_failures(outcomes: list[Outcome], settled: Settled) -> None:
    failed = [o for o in outcomes if o.error is not None]
    if failed:
        first = failed[0]
        log.warn("outbox: {failed} calls failed ({retried} to retry, {dead} dead), e.g. "
                 "{method} {key} to {target}: {error}", failed=len(failed),
                 retried=settled.retried, dead=settled.dead, method=first.message.method,
                 key=first.message.message_key, target=first.message.target,
                 error=first.error)
    if settled.lost:
        log.warn("outbox: {lost} outcomes not recorded: their leases were taken over",
                 lost=settled.lost)

