"""The Deliverer against fakes served on loopback, on SQLite and MariaDB."""

from __future__ import annotations

from datetime import timedelta

import attrs
import pytest
from sqlalchemy import update

from billingcenter.hessian import HessianObject
from billingcenter.ledger import outbox
from billingcenter.ledger.schema_billing import DEAD, DELIVERED, PENDING
from billingcenter.ledger.schema_billing import outbox as table
from tests.outbound.support import (
    CREATED_MS,
    FAST,
    TIMEOUT,
    add,
    deduction,
    delivering,
    notice,
    now,
    remotes_for,
    rows,
    statuses,
    wait_for,
)

pytestmark = pytest.mark.network


def _all(engine, status, count):
    return lambda: list(statuses(engine).values()) == [status] * count


class TestDeliverer:
    def test_delivers_typed_calls(self, rt, engine, account):
        """Each message is called once as a typed DeductionRequest and marked DELIVERED."""
        add(engine, *[deduction(n) for n in range(1, 21)])
        with delivering(rt, engine, remotes_for(account.url)) as deliverer:
            stats = rt.call(deliverer.idle)
        assert set(statuses(engine).values()) == {DELIVERED}
        assert stats.delivered == 20 and stats.failed == 0
        fake = account.fake
        assert fake.repeats() == {f"DED-P{n}-20260101": 1 for n in range(1, 21)}
        first = fake.method_calls("chargeAccount")[0]
        assert first.version == "c2"
        request = first.args[0]
        assert isinstance(request, HessianObject)
        assert request.type == "org.billingcenter.api.DeductionRequest"
        assert request.fields["amountFen"] == 1000 + request.fields["billId"]
        assert request.fields["createdAt"].timestamp() * 1000 == CREATED_MS
        row = rows(engine)["DED-P1-20260101"]
        assert (row.attempts, row.last_error, row.lease_until) == (1, "", None)

    def test_account_system_down_then_up(self, rt, engine, account):
        """Refused connections are retried with backoff; delivered once it listens again."""
        rt.call(account.stop)
        add(engine, deduction(1), deduction(2))
        with delivering(rt, engine, remotes_for(account.url)):
            wait_for(lambda: all(r.attempts >= 2 for r in rows(engine).values()))
            row = rows(engine)["DED-P1-20260101"]
            assert row.status == PENDING and row.last_error.startswith("unreachable:")
            assert row.next_attempt_at > row.created_at
            rt.call(account.start)
            wait_for(_all(engine, DELIVERED, 2))
        assert account.fake.repeats() == {"DED-P1-20260101": 1, "DED-P2-20260101": 1}

    def test_slow_answer_is_retried_and_deducted_once(self, rt, engine, account):
        """An answer later than the timeout is a failed attempt; the retry gets the same
        answer and the fake deducts once."""
        account.fake.slow(TIMEOUT * 3, times=1)
        add(engine, deduction(1))
        with delivering(rt, engine, remotes_for(account.url)):
            wait_for(_all(engine, DELIVERED, 1))
        row = rows(engine)["DED-P1-20260101"]
        assert row.attempts == 2
        assert account.fake.repeats() == {"DED-P1-20260101": 2}
        assert list(account.fake.deductions) == ["DED-P1-20260101"]
        assert [c.answer for c in account.fake.calls] == ["late", "reply"]

    def test_fault_retried_then_dead_then_revived(self, rt, engine, account):
        """Faults are retried; after max_attempts the message is DEAD; retry revives it."""
        account.fake.fail(FAST.max_attempts)
        add(engine, deduction(1))
        with delivering(rt, engine, remotes_for(account.url)) as deliverer:
            wait_for(_all(engine, DEAD, 1))
            row = rows(engine)["DED-P1-20260101"]
            assert row.attempts == FAST.max_attempts
            assert row.last_error == "fault: ServiceException: fake: told to fail"
            waits = _gaps([c.at for c in account.fake.calls])
            # at least initial, doubled each time, up to the maximum (0.1, 0.2, 0.4)
            assert [round(w, 2) >= d for w, d in zip(waits, (0.1, 0.2, 0.4), strict=True)] \
                == [True] * 3
            assert outbox.retry(engine, now(), dead=True) == 1
            wait_for(_all(engine, DELIVERED, 1))
        assert deliverer.stats.dead == 1  # stopped: every settle counted (see below)
        assert rows(engine)["DED-P1-20260101"].attempts == 1
        assert len(account.fake.calls) == FAST.max_attempts + 1

    def test_ordering_key_keeps_stop_before_reopen(self, rt, engine, business):
        """Notices of one order are delivered one at a time in id order, even when the
        first one needs retries."""
        business.fake.fail(2)
        add(engine, notice(1, "O1", "STOP"), notice(2, "O1", "REOPEN"),
            notice(3, "O2", "STOP"), notice(4, "O1", "STOP"))
        with delivering(rt, engine, remotes_for(business_url=business.url)):
            wait_for(_all(engine, DELIVERED, 4))
        order = [(n["orderId"], n["action"]) for n in business.fake.notices.values()]
        assert [a for o, a in order if o == "O1"] == ["STOP", "REOPEN", "STOP"]
        first_ok = [c.args[0].fields["noticeId"] for c in business.fake.calls
                    if c.answer == "reply"]
        assert first_ok.index("SE-1") < first_ok.index("SE-2") < first_ok.index("SE-4")

    def test_target_without_url_is_not_attempted(self, rt, engine, account):
        """A target whose remote has no URL keeps its messages PENDING, untouched."""
        add(engine, deduction(1), notice(1, "O1", "STOP"))
        with delivering(rt, engine, remotes_for(account.url, "")) as deliverer:
            rt.call(deliverer.idle)
        found = rows(engine)
        assert found["DED-P1-20260101"].status == DELIVERED
        waiting = found["SE-1"]
        assert (waiting.status, waiting.attempts, waiting.lease_owner) == (PENDING, 0, None)

    def test_two_deliverers_never_call_one_message_at_once(self, rt, engine, account):
        """Two deliverers share the outbox: every message called exactly once."""
        account.fake.slow(0.05, times=10_000)
        add(engine, *[deduction(n) for n in range(1, 121)])
        small = attrs.evolve(FAST, batch=10, concurrency=4)
        remotes = remotes_for(account.url)
        with delivering(rt, engine, remotes, small, "A") as one, \
                delivering(rt, engine, remotes, small, "B") as two:
            wait_for(_all(engine, DELIVERED, 120))
        # Counted once both have stopped: a deliverer counts a settle in the reactor
        # thread after its transaction has committed, so every row can be DELIVERED a
        # moment before the stats say so; stopping waits for the settles in progress.
        shares = (one.stats.delivered, two.stats.delivered)
        assert set(account.fake.repeats().values()) == {1}
        assert sum(shares) == 120 and min(shares) > 0
        owners = {r.lease_owner.split("/")[0] for r in rows(engine).values()}
        assert owners == {"A", "B"}

    def test_purges_old_delivered_messages(self, rt, engine, account):
        """A running deliverer deletes the messages delivered more than keep_delivered
        days ago, and only those."""
        add(engine, deduction(1), deduction(2))
        old = now() - timedelta(days=31)
        with engine.begin() as conn:
            conn.execute(update(table).where(table.c.message_key == "DED-P1-20260101")
                         .values(status=DELIVERED, next_attempt_at=old, delivered_at=old))
        with delivering(rt, engine, remotes_for(account.url),
                        attrs.evolve(FAST, keep_delivered=30)) as deliverer:
            wait_for(lambda: list(statuses(engine).items()) == [("DED-P2-20260101", DELIVERED)])
        assert deliverer.purger.purged == 1
        assert account.fake.repeats() == {"DED-P2-20260101": 1}


def _gaps(times):
    return [b - a for a, b in zip(times, times[1:], strict=False)]
