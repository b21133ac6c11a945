"""``Purger``: delivered outbox messages deleted once they are ``[outbox] keep_delivered`` days old.

A ``billingcenter.periodic.Periodic``, owned by the ``Deliverer`` and started and stopped
with it.  A purge round runs ``billingcenter.ledger.outbox.purge`` in the database thread
pool, one batch (``PURGE_BATCH`` rows, one short transaction) after another, until a
batch comes back short, ``batches`` batches went, or the purger is stopping; the next
round starts ``every`` seconds after the last one ended (the first at once), also after
a failure.  Several daemons may purge one database: they delete the same rows at worst,
and the second finds them gone.  ``PENDING`` and ``DEAD`` messages are never purged;
``keep_delivered = 0`` keeps everything.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine
from twisted.internet.defer import Deferred, maybeDeferred, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure

from billingcenter.ledger import outbox
from billingcenter.periodic import Periodic

log = Logger()

PURGE_EVERY = 60.0  # seconds from the end of one purge round to the next
PURGE_BATCHES = 20  # batches per round at most (10,000 rows a minute)


class Purger(Periodic):
    """Purges delivered messages older than ``keep_days`` now and then (see the module doc).

    ``run``: runs a blocking function in the database thread pool; ``clock``: the time
    as an aware datetime; ``reactor``: for the timer.
    """

    def __init__(
        self, engine: Engine, run: Callable[..., Deferred[Any]], keep_days: int,
        clock: Callable[[], datetime], reactor: Any, every: float = PURGE_EVERY,
        batch: int = outbox.PURGE_BATCH, batches: int = PURGE_BATCHES,
    ) -> None:
        super().__init__(reactor, clock)
        self._engine = engine
        self._pool = run
        self._keep = timedelta(days=keep_days)
        self._every = every
        self._batch = batch
        self._batches = batches
        self.purged = 0  # messages deleted since start

    def start(self) -> None:
        """Start purging (nothing happens when ``keep_days`` is 0)."""
        if not self.running:
            self.startService()

    def stop(self) -> Deferred[None]:
        """No more batches; fires once the batch in the database thread pool, if any, ends."""
        if not self.running:
            return succeed(None)
        return maybeDeferred(self.stopService).addCallback(lambda _: None)

    def _enabled(self) -> bool:
        return self._keep > timedelta(0)

    def _run(self, now: datetime) -> Deferred[Any]:
        """One round: batch after batch, each in the pool, while they come back full."""
        before = now - self._keep

        def batch(number: int) -> Deferred[Any]:
            found = self._pool(outbox.purge, self._engine, before, self._batch)
            return found.addCallback(purged, number)

        def purged(found: int, number: int) -> Deferred[Any] | None:
            self.purged += found
            if found:
                log.debug("outbox: purged {found} delivered messages", found=found)
            if found == self._batch and number < self._batches and self.running:
                return batch(number + 1)
            return None

        return batch(1)

    def _succeeded(self, result: Any, now: datetime) -> float:
        return self._every

    def _failed(self, failure: Failure, now: datetime) -> float:
        log.failure("outbox: purging delivered messages failed; trying again later", failure)
        return self._every
