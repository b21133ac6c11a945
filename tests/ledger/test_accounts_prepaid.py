"""Tests of prepaid balances: charges paid as they are rated, the floor, the threshold,
and (MariaDB) charges racing from several connections."""

from __future__ import annotations

import threading
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from billingcenter.jobs.arrears import check
from billingcenter.ledger.payments import AccountStore, PayerSettings
from billingcenter.ledger.schema_billing import balance_entry, payer_account
from billingcenter.ledger.schema_rating import charge
from tests.ledger.accounts_support import (
    NOW,
    add_bill,
    add_orders,
    charge_rows,
    entries,
    entry_sum,
    events,
    notice,
    notices,
    payer_row,
    rate,
    unpaid,
)
from tests.ledger.billing_rows import bill_of

PREPAID = PayerSettings(kind="PREPAID", threshold_fen=100)


@pytest.fixture
def store(sql_engine):
    add_orders(sql_engine)
    return AccountStore(sql_engine)


@pytest.mark.parametrize("scan", [2000, 0], ids=["prepaid-read-whole", "prepaid-looked-up"])
def test_charges_are_paid_as_rated(store, sql_engine, monkeypatch, scan):
    """A prepaid payer's charges are paid in the rating transaction, entry per charge
    (a prepaid payer without money is stopped at once, and reopened by the top-up);
    the same whether the hook reads every prepaid payer or looks the chunk's up."""
    monkeypatch.setattr("billingcenter.ledger.accounts.PREPAID_SCAN", scan)
    assert store.set_payer("p1", PREPAID, NOW).service_state == "STOPPED"
    store.pay_callback(notice("t1", "", 1000, payer="p1"), NOW)
    assert rate(sql_engine, charge_rows("p1", [300, 400])) == 2
    assert unpaid(sql_engine, "p1") == []
    keys = [key for key, _, _ in entries(sql_engine, "p1")]
    assert [(a, b) for _, a, b in entries(sql_engine, "p1")] == [
        (1000, 1000), (-300, 700), (-400, 300)]
    assert keys[1].startswith("charge:") and keys[2].startswith("charge:")
    with sql_engine.connect() as conn:
        marked = conn.execute(select(func.count()).where(charge.c.entry_id != 0)).scalar_one()
    assert marked == 2
    assert payer_row(sql_engine, "p1").balance_fen == 300 == entry_sum(sql_engine, "p1")


def test_postpaid_charges_are_left_alone(store, sql_engine):
    """Charges of postpaid (or unknown) payers are not touched by the hook."""
    store.pay_callback(notice("t1", "", 1000, payer="p1"), NOW)
    rate(sql_engine, charge_rows("p1", [300]) + charge_rows("p2", [200], prefix="d"))
    assert unpaid(sql_engine, "p1") == [300] and unpaid(sql_engine, "p2") == [200]
    assert payer_row(sql_engine, "p1").balance_fen == 1000


def test_floor_is_never_crossed_then_stop_and_reopen(store, sql_engine):
    """A charge that does not fit stays unpaid; the check stops the payer (LOW_BALANCE);
    a top-up pays it and reopens."""
    store.pay_callback(notice("t1", "", 1000, payer="p1"), NOW)
    store.set_payer("p1", PREPAID, NOW)
    assert payer_row(sql_engine, "p1").service_state == "OPEN"
    rate(sql_engine, charge_rows("p1", [600, 500, 100]))
    assert unpaid(sql_engine, "p1") == [500, 100]  # oldest first: the 500 blocks
    assert payer_row(sql_engine, "p1").balance_fen == 400
    summary = check(store, NOW + timedelta(minutes=1))
    assert (summary.stopped, summary.charges) == (1, 0)
    assert events(sql_engine) == [("p1", "o1", "STOP", "LOW_BALANCE"),
                                  ("p1", "o2", "STOP", "LOW_BALANCE")]
    receipt = store.pay_callback(notice("t2", "", 300, payer="p1"), NOW + timedelta(hours=1))
    assert receipt.status == "TOPUP"
    assert unpaid(sql_engine, "p1") == []
    payer = payer_row(sql_engine, "p1")
    assert (payer.balance_fen, payer.service_state) == (100, "STOPPED")  # 100 <= threshold
    store.pay_callback(notice("t3", "", 1, payer="p1"), NOW + timedelta(hours=2))
    assert payer_row(sql_engine, "p1").service_state == "OPEN"
    assert [(n["action"], n["reason"]) for n in notices(sql_engine)][-2:] == [
        ("REOPEN", "SETTLED"), ("REOPEN", "SETTLED")]
    assert entry_sum(sql_engine, "p1") == 101


def test_threshold_stops_after_paid_charges(store, sql_engine):
    """Charges all paid but the balance at the threshold: stopped by the check."""
    store.pay_callback(notice("t1", "", 500, payer="p1"), NOW)
    store.set_payer("p1", PREPAID, NOW)
    rate(sql_engine, charge_rows("p1", [400]))
    assert payer_row(sql_engine, "p1").balance_fen == 100 and unpaid(sql_engine, "p1") == []
    assert check(store, NOW).stopped == 1
    assert payer_row(sql_engine, "p1").service_state == "STOPPED"


def test_negative_floor_allows_credit(store, sql_engine):
    """A floor below zero lets the balance go negative down to it, never beyond."""
    store.set_payer("p1", PayerSettings(kind="PREPAID", floor_fen=-200, threshold_fen=-200),
                    NOW)
    rate(sql_engine, charge_rows("p1", [150, 100, 50]))
    assert payer_row(sql_engine, "p1").balance_fen == -150
    assert unpaid(sql_engine, "p1") == [100, 50]  # 100 does not fit: it and later wait
    store.pay_callback(notice("t1", "", 100, payer="p1"), NOW)  # -50: room for 150
    assert payer_row(sql_engine, "p1").balance_fen == -200
    assert unpaid(sql_engine, "p1") == []
    with pytest.raises(Exception, match="threshold"):
        store.set_payer("p1", PayerSettings(threshold_fen=-300), NOW)


def test_sweep_pays_charges_the_rating_path_missed(store, sql_engine):
    """Charges written without the hook (file loads) are paid by the check."""
    rate(sql_engine, charge_rows("p1", [120, 80]))  # postpaid when rated
    store.pay_callback(notice("t1", "", 1000, payer="p1"), NOW)
    store.set_payer("p1", PayerSettings(kind="PREPAID"), NOW)  # pays them at once
    assert unpaid(sql_engine, "p1") == [] and payer_row(sql_engine, "p1").balance_fen == 800
    store.set_payer("p1", PayerSettings(kind="POSTPAID"), NOW)
    rate(sql_engine, charge_rows("p1", [30], prefix="late"))
    with sql_engine.begin() as conn:
        conn.execute(payer_account.update().values(kind="PREPAID"))
    summary = check(store, NOW)
    assert (summary.charges, summary.amount_fen) == (1, 30)
    assert payer_row(sql_engine, "p1").balance_fen == 770 == entry_sum(sql_engine, "p1")


def test_billed_charges_are_never_paid_from_the_balance(store, sql_engine):
    """A payer turned prepaid pays its charges no bill holds: those rated after its last
    bill's run (above the bound) or dated on the bill date or later; never the ones the
    bill holds (up to the bound and before the date)."""
    rate(sql_engine, charge_rows("p1", [120, 80]))  # 2026-11-30
    rate(sql_engine, charge_rows("p1", [40], prefix="dec", day=date(2026, 12, 1)))
    bill_id = add_bill(sql_engine, "p1", date(2026, 12, 1), 200)  # bound: the 40's id
    rate(sql_engine, charge_rows("p1", [30], prefix="late"))  # 2026-11-30, after the run
    with sql_engine.connect() as conn:
        ids = conn.execute(select(charge.c.id).order_by(charge.c.id)).scalars().all()
    assert len(ids) == 4 and bill_of(sql_engine) == {ids[0]: bill_id, ids[1]: bill_id}
    assert unpaid(sql_engine, "p1") == [40, 30]
    store.pay_callback(notice("t1", "", 1000, payer="p1"), NOW)
    store.set_payer("p1", PayerSettings(kind="PREPAID"), NOW)
    assert unpaid(sql_engine, "p1") == []
    assert entries(sql_engine, "p1") == [
        ("topup:t1", 1000, 1000), (f"charge:{ids[2]}", -40, 960),
        (f"charge:{ids[3]}", -30, 930)]
    assert payer_row(sql_engine, "p1").balance_fen == 930 == entry_sum(sql_engine, "p1")
    with sql_engine.connect() as conn:
        paid = conn.execute(select(charge.c.id).where(charge.c.entry_id != 0)
                            .order_by(charge.c.id)).scalars().all()
    assert paid == ids[2:]


@pytest.mark.mariadb
def test_racing_charges_never_cross_the_floor(mariadb_engine):
    """Eight connections rate charges of the same prepaid payers at once, top-ups among
    them: every balance stays at or above its floor and equals the sum of its entries."""
    sql_engine = mariadb_engine
    store = AccountStore(sql_engine)
    payers = [f"pp{i}" for i in range(4)]
    for i, payer in enumerate(payers):
        store.set_payer(payer, PayerSettings(kind="PREPAID", floor_fen=-50 * i), NOW)
        store.pay_callback(notice(f"t{payer}", "", 10_000, payer=payer), NOW)
    errors = []

    def worker(n):
        try:
            for batch in range(10):
                rows = [row for payer in payers for row in
                        charge_rows(payer, [37, 113, 250], prefix=f"w{n}b{batch}{payer}")]
                rate(sql_engine, rows)
                if batch == 5:
                    store.pay_callback(notice(f"mid{n}", "", 500, payer=payers[n % 4]), NOW)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with sql_engine.connect() as conn:
        for i, payer in enumerate(payers):
            row = payer_row(sql_engine, payer)
            assert row.balance_fen >= row.floor_fen == -50 * i
            assert row.balance_fen == entry_sum(sql_engine, payer)
            paid = conn.execute(select(func.coalesce(func.sum(charge.c.amount_fen), 0)).where(
                charge.c.payer_id == payer, charge.c.entry_id != 0)).scalar_one()
            taken = conn.execute(select(func.coalesce(func.sum(balance_entry.c.amount_fen), 0))
                                 .where(balance_entry.c.payer_id == payer,
                                        balance_entry.c.kind == "CHARGE")).scalar_one()
            assert paid == -taken
            waiting = unpaid(sql_engine, payer)  # oldest first: the first one did not fit
            assert waiting == [] or row.balance_fen - waiting[0] < row.floor_fen
