"""Tests of payCallback, arrears and service control (billingcenter.ledger.payments,
accounts, control) on SQLite and MariaDB."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from billingcenter.errors import (
    AmountMismatch,
    DuplicateConflict,
    InvalidArgument,
    InvalidState,
    UnknownDeduction,
)
from billingcenter.jobs.arrears import check
from billingcenter.ledger.checks import run_checks
from billingcenter.ledger.control import ServicePolicy
from billingcenter.ledger.invariants import CHECKS
from billingcenter.ledger.payments import AccountStore
from tests.ledger.accounts_support import (
    NOW,
    add_bill,
    add_orders,
    bill_status,
    deduction_id,
    entries,
    entry_sum,
    events,
    notice,
    notices,
    payer_row,
    snapshot,
)

NOV, DEC = date(2026, 11, 1), date(2026, 12, 1)


@pytest.fixture
def store(sql_engine):
    add_orders(sql_engine)
    return AccountStore(sql_engine)


class TestDeduction:
    def test_success_settles(self, store, sql_engine):
        """SUCCESS on an owed bill settles it; the receipt says SETTLED."""
        bill_id = add_bill(sql_engine, "p1", DEC, 12345)
        receipt = store.pay_callback(notice("s1", deduction_id("p1", DEC), 12345), NOW)
        assert (receipt.key, receipt.status, receipt.recorded_at) == ("s1", "SETTLED", NOW)
        assert bill_status(sql_engine, bill_id) == "SETTLED"
        assert events(sql_engine) == [] and notices(sql_engine) == []
        assert payer_row(sql_engine, "p1").service_state == "OPEN"

    def test_repeat_answers_the_first_receipt(self, store, sql_engine):
        """The same serial with the same content changes nothing and answers the same."""
        add_bill(sql_engine, "p1", DEC, 12345)
        first = store.pay_callback(notice("s1", deduction_id("p1", DEC), 12345), NOW)
        before = snapshot(sql_engine)
        again = store.pay_callback(notice("s1", deduction_id("p1", DEC), 12345),
                                   NOW + timedelta(hours=1))
        assert again == first
        assert snapshot(sql_engine) == before

    def test_repeat_with_other_content_conflicts(self, store, sql_engine):
        """The same serial with another status is DUPLICATE_CONFLICT, nothing changed."""
        add_bill(sql_engine, "p1", DEC, 12345)
        store.pay_callback(notice("s1", deduction_id("p1", DEC), 12345), NOW)
        before = snapshot(sql_engine)
        with pytest.raises(DuplicateConflict):
            store.pay_callback(notice("s1", deduction_id("p1", DEC), 12345, "FAILED"), NOW)
        assert snapshot(sql_engine) == before

    @pytest.mark.parametrize(("sent", "error"), [
        (notice("s1", "DED-nobody-20261201", 12345), UnknownDeduction),
        (notice("s1", deduction_id("p1", DEC), 12344), AmountMismatch),
        (notice("s1", deduction_id("p1", DEC), 12346, "FAILED"), AmountMismatch),
        (notice("s1", deduction_id("p1", DEC), 12345, payer="p2"), AmountMismatch),
    ])
    def test_refusals_change_nothing(self, store, sql_engine, sent, error):
        """Unknown deduction, other amount, other payer: a typed fault, no row changed."""
        add_bill(sql_engine, "p1", DEC, 12345)
        before = snapshot(sql_engine)
        with pytest.raises(error):
            store.pay_callback(sent, NOW)
        assert snapshot(sql_engine) == before

    def test_settled_bill_refuses_another_serial(self, store, sql_engine):
        """A second outcome for a settled bill is INVALID_STATE and stores nothing."""
        add_bill(sql_engine, "p1", DEC, 500)
        store.pay_callback(notice("s1", deduction_id("p1", DEC), 500), NOW)
        before = snapshot(sql_engine)
        for status in ("SUCCESS", "FAILED"):
            with pytest.raises(InvalidState):
                store.pay_callback(notice("s2", deduction_id("p1", DEC), 500, status), NOW)
        assert snapshot(sql_engine) == before

    @pytest.mark.parametrize("sent", [
        notice("", deduction_id("p1", DEC), 500),
        notice("x" * 65, deduction_id("p1", DEC), 500),
        notice("s1", deduction_id("p1", DEC), 500, "MAYBE"),
        notice("s1", deduction_id("p1", DEC), -1),
        notice("s1", "", 0, payer="p1"),
        notice("s1", "", 100),
    ])
    def test_malformed_is_invalid_argument(self, store, sql_engine, sent):
        """Bad serial, status, amount, or a top-up without payer or amount."""
        add_bill(sql_engine, "p1", DEC, 500)
        before = snapshot(sql_engine)
        with pytest.raises(InvalidArgument):
            store.pay_callback(sent, NOW)
        assert snapshot(sql_engine) == before


class TestArrears:
    def test_failure_stops_at_once_with_grace_zero(self, store, sql_engine):
        """FAILED -> ARREARS -> the payer's live orders stop in the same transaction."""
        bill_id = add_bill(sql_engine, "p1", DEC, 700)
        receipt = store.pay_callback(notice("s1", deduction_id("p1", DEC), 700, "FAILED"), NOW)
        assert receipt.status == "ARREARS"
        assert bill_status(sql_engine, bill_id) == "ARREARS"
        payer = payer_row(sql_engine, "p1")
        assert (payer.service_state, payer.arrears_since, payer.state_changed_at) == (
            "STOPPED", NOW, NOW)
        assert events(sql_engine) == [("p1", "o1", "STOP", "ARREARS"),
                                      ("p1", "o2", "STOP", "ARREARS")]
        sent = notices(sql_engine)
        assert [(n["orderId"], n["productCode"], n["action"], n["reason"]) for n in sent] == [
            ("o1", "CRM-BASIC", "STOP", "ARREARS"), ("o2", "SMS-NOTIFY", "STOP", "ARREARS")]
        first = sent[0]
        assert first["noticeId"] == first["_key"] and first["noticeId"].startswith("SE-")
        assert (first["payerId"], first["at"], first["_target"], first["_ordering"]) == (
            "p1", int(NOW.timestamp() * 1000), "business:CRM-BASIC", "order:o1")
        assert store.payer("p2") is None  # untouched

    def test_success_after_failure_reopens(self, store, sql_engine):
        """SUCCESS (another serial) after FAILED settles and reopens the stopped orders."""
        bill_id = add_bill(sql_engine, "p1", DEC, 700)
        store.pay_callback(notice("s1", deduction_id("p1", DEC), 700, "INSUFFICIENT_FUNDS"), NOW)
        later = NOW + timedelta(days=2)
        receipt = store.pay_callback(notice("s2", deduction_id("p1", DEC), 700), later)
        assert receipt.status == "SETTLED"
        assert bill_status(sql_engine, bill_id) == "SETTLED"
        payer = payer_row(sql_engine, "p1")
        assert (payer.service_state, payer.arrears_since, payer.state_changed_at) == (
            "OPEN", None, later)
        assert events(sql_engine)[2:] == [("p1", "o1", "REOPEN", "SETTLED"),
                                          ("p1", "o2", "REOPEN", "SETTLED")]
        assert [(n["orderId"], n["action"]) for n in notices(sql_engine)] == [
            ("o1", "STOP"), ("o2", "STOP"), ("o1", "REOPEN"), ("o2", "REOPEN")]

    def test_failure_on_arrears_is_recorded_only(self, store, sql_engine):
        """A second failure for a bill in arrears answers ARREARS and changes nothing else."""
        add_bill(sql_engine, "p1", DEC, 700)
        store.pay_callback(notice("s1", deduction_id("p1", DEC), 700, "FAILED"), NOW)
        before = snapshot(sql_engine)
        receipt = store.pay_callback(notice("s2", deduction_id("p1", DEC), 700, "FAILED"), NOW)
        assert receipt.status == "ARREARS"
        after = snapshot(sql_engine)
        assert len(after.pop("payment")) == len(before.pop("payment")) + 1
        assert after == before

    def test_grace_waits_for_the_check(self, sql_engine):
        """With grace, the failure stops nothing; the check after the grace does."""
        add_orders(sql_engine)
        store = AccountStore(sql_engine, ServicePolicy(grace=timedelta(hours=1)))
        add_bill(sql_engine, "p1", DEC, 700)
        store.pay_callback(notice("s1", deduction_id("p1", DEC), 700, "FAILED"), NOW)
        assert payer_row(sql_engine, "p1").service_state == "OPEN"
        assert payer_row(sql_engine, "p1").arrears_since == NOW
        early = check(store, NOW + timedelta(minutes=59, seconds=59))
        assert (early.stopped, events(sql_engine)) == (0, [])
        due = check(store, NOW + timedelta(hours=1))
        assert (due.stopped, due.notices) == (1, 2)
        assert payer_row(sql_engine, "p1").service_state == "STOPPED"
        assert check(store, NOW + timedelta(hours=2)).stopped == 0  # idempotent
        assert len(events(sql_engine)) == 2

    def test_products_limit_the_stopped_orders(self, sql_engine):
        """[arrears] products: only the orders of those products stop."""
        add_orders(sql_engine)
        store = AccountStore(sql_engine, ServicePolicy(products=frozenset({"SMS-NOTIFY"})))
        add_bill(sql_engine, "p1", DEC, 700)
        store.pay_callback(notice("s1", deduction_id("p1", DEC), 700, "FAILED"), NOW)
        assert events(sql_engine) == [("p1", "o2", "STOP", "ARREARS")]


class TestTopUp:
    def test_topup_settles_arrears_oldest_first_then_reopens(self, store, sql_engine):
        """Bills in arrears are settled from the balance while it covers a whole bill."""
        nov = add_bill(sql_engine, "p1", NOV, 300)
        dec = add_bill(sql_engine, "p1", DEC, 500)
        store.pay_callback(notice("f1", deduction_id("p1", NOV), 300, "FAILED"), NOW)
        store.pay_callback(notice("f2", deduction_id("p1", DEC), 500, "FAILED"), NOW)
        assert payer_row(sql_engine, "p1").service_state == "STOPPED"
        receipt = store.pay_callback(notice("t1", "", 600, payer="p1"), NOW)
        assert receipt.status == "TOPUP"
        assert (bill_status(sql_engine, nov), bill_status(sql_engine, dec)) == (
            "SETTLED", "ARREARS")
        assert payer_row(sql_engine, "p1").balance_fen == 300
        assert payer_row(sql_engine, "p1").service_state == "STOPPED"
        store.pay_callback(notice("t2", "", 200, payer="p1"), NOW + timedelta(hours=1))
        assert bill_status(sql_engine, dec) == "SETTLED"
        assert entries(sql_engine, "p1") == [
            ("topup:t1", 600, 600), (f"bill:{nov}", -300, 300),
            ("topup:t2", 200, 500), (f"bill:{dec}", -500, 0)]
        payer = payer_row(sql_engine, "p1")
        assert (payer.balance_fen, payer.service_state, payer.arrears_since) == (0, "OPEN", None)
        assert [n["action"] for n in notices(sql_engine)] == ["STOP", "STOP", "REOPEN", "REOPEN"]
        assert entry_sum(sql_engine, "p1") == payer.balance_fen

    def test_deduction_after_a_topup_settled_the_bill_is_credited(self, store, sql_engine):
        """The account system deducts a bill a top-up already settled: the money is kept
        as the payer's balance (CREDITED), never lost and never taken twice for the bill;
        a second success for a bill its deduction settled stays INVALID_STATE."""
        nov = add_bill(sql_engine, "p1", NOV, 300)
        store.pay_callback(notice("f1", deduction_id("p1", NOV), 300, "FAILED"), NOW)
        store.pay_callback(notice("t1", "", 300, payer="p1"), NOW)
        assert bill_status(sql_engine, nov) == "SETTLED"
        late = store.pay_callback(notice("s1", deduction_id("p1", NOV), 300), NOW)
        assert late.status == "CREDITED"
        assert entries(sql_engine, "p1") == [
            ("topup:t1", 300, 300), (f"bill:{nov}", -300, 0), ("topup:s1", 300, 300)]
        assert payer_row(sql_engine, "p1").balance_fen == 300 == entry_sum(sql_engine, "p1")
        assert store.pay_callback(notice("s1", deduction_id("p1", NOV), 300), NOW) == late
        dec = add_bill(sql_engine, "p1", DEC, 500)
        store.pay_callback(notice("s2", deduction_id("p1", DEC), 500), NOW)
        before = snapshot(sql_engine)
        with pytest.raises(InvalidState):
            store.pay_callback(notice("s3", deduction_id("p1", DEC), 500), NOW)
        assert snapshot(sql_engine) == before
        assert bill_status(sql_engine, dec) == "SETTLED"
        money = ("settled_unpaid", "bill_paid_twice", "payment_mismatch", "topup_entry",
                 "balance_sum", "balance_last", "balance_chain", "balance_floor", "bill_entry")
        results = run_checks(sql_engine, [c for c in CHECKS if c.kind in money], 5)
        assert len(results) == len(money)
        assert {r.kind: r.count for r in results if r.count} == {}

    def test_topup_creates_the_payer(self, store, sql_engine):
        """A top-up for an unknown payer creates its account (postpaid) with the balance."""
        store.pay_callback(notice("t1", "", 250, payer="new"), NOW)
        payer = payer_row(sql_engine, "new")
        assert (payer.kind, payer.balance_fen, payer.service_state) == ("POSTPAID", 250, "OPEN")

    def test_failed_topup_is_ignored(self, store, sql_engine):
        """A failed top-up is recorded with outcome IGNORED and moves nothing."""
        before = snapshot(sql_engine)
        receipt = store.pay_callback(notice("t1", "", 250, "FAILED", payer="p1"), NOW)
        assert receipt.status == "IGNORED"
        after = snapshot(sql_engine)
        assert len(after.pop("payment")) == 1
        before.pop("payment")
        assert after == before
