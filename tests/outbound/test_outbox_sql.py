"""The outbox's lease, settle, release and retry SQL on SQLite and MariaDB."""

from __future__ import annotations

import threading
from datetime import timedelta

from sqlalchemy import update

from billingcenter.ledger import outbox
from billingcenter.ledger.outbox import Backoff, Outcome
from billingcenter.ledger.schema_billing import DEAD, DELIVERED, PENDING
from billingcenter.ledger.schema_billing import outbox as table
from tests.outbound.support import add, deduction, notice, now, rows

MINUTE = timedelta(minutes=1)
DAY = timedelta(days=1)
BACKOFF = Backoff(max_attempts=3, initial=2.0, maximum=5.0)


def _lease(engine, at, owner="o", limit=100, skip=()):
    return outbox.lease(engine, owner, at, MINUTE, limit, skip)


class TestBackoff:
    def test_doubles_up_to_the_maximum(self):
        """The wait after the n-th failure: initial, doubled each time, capped."""
        assert [BACKOFF.delay(n).total_seconds() for n in (1, 2, 3, 4, 80)] == \
            [2.0, 4.0, 5.0, 5.0, 5.0]


class TestLease:
    def test_takes_due_messages_in_id_order(self, engine):
        """Due, unleased messages are leased oldest first, up to the limit."""
        add(engine, *[deduction(n) for n in range(1, 6)])
        at = now()
        leased = _lease(engine, at, limit=3)
        assert [m.message_key for m in leased] == [f"DED-P{n}-20260101" for n in (1, 2, 3)]
        assert leased[0].payload["amountFen"] == 1001 and leased[0].attempts == 0
        assert leased[0].token.startswith("o/") and leased[0].lease_until == at + MINUTE
        assert [m.message_key for m in _lease(engine, at)] == ["DED-P4-20260101",
                                                               "DED-P5-20260101"]
        assert _lease(engine, at) == []
        assert len(_lease(engine, at + 2 * MINUTE)) == 5  # the leases ran out

    def test_waits_for_next_attempt_and_skipped_targets(self, engine):
        """A message waiting for its retry, or of a skipped target, is not leased."""
        add(engine, deduction(1), notice(1, "O1", "STOP"))
        with engine.begin() as conn:
            conn.execute(update(table).where(table.c.message_key == "DED-P1-20260101")
                         .values(next_attempt_at=now() + MINUTE))
        assert _lease(engine, now(), skip={"business:CRM"}) == []
        assert [m.message_key for m in _lease(engine, now() + 2 * MINUTE)] == [
            "DED-P1-20260101", "SE-1"]

    def test_ordering_key_waits_for_earlier_pending(self, engine):
        """A message waits while an earlier PENDING one has its ordering key."""
        add(engine, notice(1, "O1", "STOP"), notice(2, "O1", "REOPEN"),
            notice(3, "O2", "STOP"))
        first = _lease(engine, now())
        assert [m.message_key for m in first] == ["SE-1", "SE-3"]
        outbox.settle(engine, [Outcome(first[0])], now(), BACKOFF)
        assert [m.message_key for m in _lease(engine, now())] == ["SE-2"]

    def test_concurrent_pollers_never_share_a_message(self, engine):
        """Four threads leasing at once each get their own messages, all of them."""
        add(engine, *[deduction(n) for n in range(1, 301)])
        taken: list[list[int]] = [[] for _ in range(4)]

        def poll(mine):
            while batch := _lease(engine, now(), owner=f"t{len(mine)}", limit=7):
                mine.extend(m.id for m in batch)

        threads = [threading.Thread(target=poll, args=(t,)) for t in taken]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        every = [i for mine in taken for i in mine]
        assert len(every) == len(set(every)) == 300


class TestSettle:
    def test_delivered_retried_dead(self, engine):
        """Outcomes: a reply delivers; failures back off, then die at max_attempts."""
        add(engine, deduction(1), deduction(2))
        at = now()
        one, two = _lease(engine, at)
        settled = outbox.settle(engine, [Outcome(one), Outcome(two, "timeout: slow")], at,
                                BACKOFF)
        assert (settled.delivered, settled.retried, settled.dead, settled.lost) == (1, 1, 0, 0)
        found = rows(engine)
        assert (found[one.message_key].status, found[one.message_key].delivered_at) == (
            DELIVERED, at)
        second = found[two.message_key]
        assert (second.status, second.attempts, second.last_error) == (PENDING, 1,
                                                                       "timeout: slow")
        assert second.next_attempt_at == at + timedelta(seconds=2)
        assert second.lease_until is None
        for attempt in (2, 3):
            later = at + timedelta(minutes=attempt)
            (again,) = _lease(engine, later)
            assert again.attempts == attempt - 1
            outbox.settle(engine, [Outcome(again, "fault: no")], later, BACKOFF)
        assert (rows(engine)[two.message_key].status, rows(engine)[two.message_key].attempts) \
            == (DEAD, 3)

    def test_lost_lease_changes_nothing(self, engine):
        """An outcome under a lease someone else took over is not recorded."""
        add(engine, deduction(1))
        (stale,) = _lease(engine, now(), owner="a")
        (fresh,) = _lease(engine, now() + 2 * MINUTE, owner="b")
        settled = outbox.settle(engine, [Outcome(stale)], now(), BACKOFF)
        assert (settled.delivered, settled.lost) == (0, 1)
        row = rows(engine)[stale.message_key]
        assert (row.status, row.lease_owner) == (PENDING, fresh.token)

    def test_release_gives_back_untouched(self, engine):
        """A released message is due again at once, with no attempt counted."""
        add(engine, deduction(1))
        leased = _lease(engine, now())
        assert outbox.release(engine, leased) == 1
        row = rows(engine)["DED-P1-20260101"]
        assert (row.attempts, row.lease_owner, row.lease_until) == (0, None, None)
        assert len(_lease(engine, now())) == 1


class TestRetryAndList:
    def test_retry_revives_dead_and_hurries_pending(self, engine):
        """retry: DEAD -> PENDING with no attempts; a waiting PENDING due now."""
        add(engine, deduction(1), deduction(2), deduction(3))
        later = now() + MINUTE
        with engine.begin() as conn:
            conn.execute(update(table).where(table.c.message_key == "DED-P1-20260101")
                         .values(status=DEAD, attempts=3, last_error="x"))
            conn.execute(update(table).where(table.c.message_key == "DED-P2-20260101")
                         .values(next_attempt_at=later, attempts=1))
        ids = {k: r.id for k, r in rows(engine).items()}
        at = now()
        assert outbox.retry(engine, at, [ids["DED-P2-20260101"]]) == 1
        assert outbox.retry(engine, at, dead=True) == 1
        found = rows(engine)
        assert (found["DED-P1-20260101"].status, found["DED-P1-20260101"].attempts) == (
            PENDING, 0)
        assert found["DED-P2-20260101"].next_attempt_at == at
        assert found["DED-P2-20260101"].attempts == 1
        counts = outbox.counts(engine, at)
        assert (counts[PENDING], counts[DEAD], counts["DUE"]) == (3, 0, 3)
        listed = outbox.list_messages(engine, PENDING, limit=2)
        assert [m.message_key for m in listed] == ["DED-P3-20260101", "DED-P2-20260101"]


def _delivered(engine, keys, at):
    """Mark the messages DELIVERED at ``at`` (due then too)."""
    with engine.begin() as conn:
        conn.execute(update(table).where(table.c.message_key.in_(keys)).values(
            status=DELIVERED, attempts=1, next_attempt_at=at, delivered_at=at))


class TestPurge:
    def test_only_delivered_before_the_cutoff(self, engine):
        """DELIVERED messages older than the cutoff go; newer ones, PENDING and DEAD stay."""
        add(engine, *[deduction(n) for n in range(1, 6)])
        old, cutoff = now() - 40 * DAY, now() - 30 * DAY
        _delivered(engine, ["DED-P1-20260101", "DED-P2-20260101"], old)
        _delivered(engine, ["DED-P3-20260101"], now() - 29 * DAY)
        with engine.begin() as conn:
            conn.execute(update(table).where(table.c.message_key == "DED-P4-20260101")
                         .values(status=DEAD, next_attempt_at=old, created_at=old))
            conn.execute(update(table).where(table.c.message_key == "DED-P5-20260101")
                         .values(next_attempt_at=old, created_at=old))
        assert outbox.purge(engine, cutoff) == 2
        assert {k: r.status for k, r in rows(engine).items()} == {
            "DED-P3-20260101": DELIVERED, "DED-P4-20260101": DEAD,
            "DED-P5-20260101": PENDING}
        assert outbox.purge(engine, cutoff) == 0

    def test_batches_of_the_limit(self, engine):
        """One purge deletes at most ``limit`` rows; ``purge_all`` goes on until none is left."""
        add(engine, *[deduction(n) for n in range(1, 8)])
        _delivered(engine, [f"DED-P{n}-20260101" for n in range(1, 8)], now() - 2 * DAY)
        assert outbox.purge(engine, now() - DAY, limit=3) == 3
        assert len(rows(engine)) == 4
        assert outbox.purge_all(engine, now() - DAY, limit=2) == 4
        assert rows(engine) == {}

    def test_a_purged_key_can_be_queued_again(self, engine):
        """The outbox forgets a purged key: callers must not rely on it to refuse one."""
        add(engine, deduction(1))
        _delivered(engine, ["DED-P1-20260101"], now() - 2 * DAY)
        assert outbox.purge(engine, now() - DAY) == 1
        with engine.begin() as conn:
            assert outbox.enqueue(conn, [deduction(1)], now()) == 1
        assert rows(engine)["DED-P1-20260101"].status == PENDING
