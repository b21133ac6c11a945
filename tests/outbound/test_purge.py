"""``Purger``: rounds of purge batches on a fake clock, on SQLite and MariaDB."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update
from twisted.internet import task
from twisted.internet.defer import Deferred, maybeDeferred

from billingcenter.ledger.schema_billing import DELIVERED
from billingcenter.ledger.schema_billing import outbox as table
from billingcenter.outbound.purge import Purger
from tests.outbound.support import add, deduction, now, rows

EVERY = 60.0


def _old_delivered(engine, count, start=1):
    """``count`` messages delivered 40 days ago."""
    add(engine, *[deduction(n) for n in range(start, start + count)])
    at = now() - timedelta(days=40)
    with engine.begin() as conn:
        conn.execute(update(table).values(status=DELIVERED, attempts=1, next_attempt_at=at,
                                          delivered_at=at))


def _purger(engine, clock, run=maybeDeferred, keep_days=30, batch=2, batches=3):
    return Purger(engine, run, keep_days, now, clock, every=EVERY, batch=batch,
                  batches=batches)


class TestPurger:
    def test_rounds_of_batches(self, engine):
        """A round purges batch after batch, at most ``batches``; the next comes ``every``
        seconds later."""
        _old_delivered(engine, 9)
        clock = task.Clock()
        purger = _purger(engine, clock)
        purger.start()
        clock.advance(0)
        clock.advance(0)
        clock.advance(0)
        assert (purger.purged, len(rows(engine))) == (6, 3)  # 3 batches of 2
        clock.advance(EVERY - 1)
        assert purger.purged == 6
        clock.advance(1)
        clock.advance(0)
        assert (purger.purged, rows(engine)) == (9, {})  # a short batch ends the round
        assert [c.getTime() for c in clock.getDelayedCalls()] == [2 * EVERY]
        assert purger.stop().called and clock.getDelayedCalls() == []

    def test_keep_zero_purges_nothing(self, engine):
        """``keep_delivered = 0``: no round is ever scheduled."""
        _old_delivered(engine, 2)
        clock = task.Clock()
        purger = _purger(engine, clock, keep_days=0)
        purger.start()
        assert clock.getDelayedCalls() == []
        assert len(rows(engine)) == 2

    def test_stop_waits_for_the_batch_in_the_pool(self, engine):
        """Stopping while a batch runs fires once it ends, and no round follows."""
        _old_delivered(engine, 1)
        clock = task.Clock()
        pending: list[Deferred] = []

        def run(function, *args):
            pending.append(Deferred())
            pending[-1].addCallback(lambda _: function(*args))
            return pending[-1]

        purger = _purger(engine, clock, run=run)
        purger.start()
        clock.advance(0)
        stopped = purger.stop()
        assert not stopped.called
        pending[0].callback(None)
        assert stopped.called and purger.purged == 1
        assert clock.getDelayedCalls() == []

    def test_a_failed_batch_is_tried_next_round(self, engine):
        """A database failure is logged and the next round comes ``every`` seconds later."""
        clock = task.Clock()
        calls: list[int] = []

        def run(function, *args):
            calls.append(1)
            return maybeDeferred(_boom) if len(calls) == 1 else maybeDeferred(function, *args)

        _old_delivered(engine, 1)
        purger = _purger(engine, clock, run=run)
        purger.start()
        clock.advance(0)
        assert len(rows(engine)) == 1
        clock.advance(EVERY)
        assert (purger.purged, rows(engine)) == (1, {})


def _boom():
    raise RuntimeError("database gone")
