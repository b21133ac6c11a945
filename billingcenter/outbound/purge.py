"""``Purger``: delivered outbox messages deleted once they are ``[outbox] keep_delivered`` days old.

The ``Deliverer`` owns one and starts and stops it with itself.  A purge round runs
``billingcenter.ledger.outbox.purge`` in the database thread pool, one batch
(``PURGE_BATCH`` rows, one short transaction) after another, until a batch comes back
short or ``batches`` batches went; the next round starts ``every`` seconds after the
last one ended (the first at once).  Several daemons may purge one database: they
delete the same rows at worst, and the second finds them gone.  ``PENDING`` and
``DEAD`` messages are never purged; ``keep_delivered = 0`` keeps everything.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine
from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure

from billingcenter.ledger import outbox

log = Logger()

PURGE_EVERY = 60.0  # seconds from the end of one purge round to the next
PURGE_BATCHES = 20  # batches per round at most (10,000 rows a minute)


class Purger:
    """Purges delivered messages older than ``keep_days`` now and then (see the module doc).

    ``run``: runs a blocking function in the database thread pool; ``clock``: the time
    as an aware datetime; ``reactor``: for the timer.
    """

    def __init__(
        self, engine: Engine, run: Callable[..., Deferred[Any]], keep_days: int,
        clock: Callable[[], datetime], reactor: Any, every: float = PURGE_EVERY,
        batch: int = outbox.PURGE_BATCH, batches: int = PURGE_BATCHES,
    ) -> None:
        self._engine = engine
        self._run = run
        self._keep = timedelta(days=keep_days)
        self._clock = clock
        self._reactor = reactor
        self._every = every
        self._batch = batch
        self._batches = batches
        self._running = False
        self._call: Any = None
        self._busy: Deferred[Any] | None = None  # the batch in the database thread pool
        self.purged = 0  # messages deleted since start

    def start(self) -> None:
        """Start purging (nothing happens when ``keep_days`` is 0)."""
        if self._keep <= timedelta(0) or self._running:
            return
        self._running = True
        self._schedule(0)

    def stop(self) -> Deferred[None]:
        """No more rounds; fires once the batch in the database thread pool, if any, ends."""
        self._running = False
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None
        if self._busy is None:
            return succeed(None)
        stopped: Deferred[None] = Deferred()
        self._busy.addBoth(lambda _: stopped.callback(None))
        return stopped

    def _schedule(self, delay: float) -> None:
        if self._running:
            self._call = self._reactor.callLater(delay, self._round)

    def _round(self) -> None:
        self._batch_of(self._clock() - self._keep, 1)

    def _batch_of(self, before: datetime, number: int) -> None:
        self._call = None
        self._busy = self._run(outbox.purge, self._engine, before, self._batch)
        self._busy.addCallbacks(self._purged, self._failed, callbackArgs=(before, number))

    def _purged(self, found: int, before: datetime, number: int) -> None:
        self._busy = None
        self.purged += found
        if found:
            log.debug("outbox: purged {found} delivered messages", found=found)
        if found == self._batch and number < self._batches:
            if self._running:
                self._call = self._reactor.callLater(0, self._batch_of, before, number + 1)
        else:
            self._schedule(self._every)

    def _failed(self, failure: Failure) -> None:
        self._busy = None
        log.failure("outbox: purging delivered messages failed; trying again later", failure)
        self._schedule(self._every)
