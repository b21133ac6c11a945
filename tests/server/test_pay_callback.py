"""payCallback through the real Site (no socket) on the SQL ledger (SQLite): DTO in,
typed Receipt or BillingException out, repeats, and refusals kept in the error store."""

from __future__ import annotations

import shutil
from datetime import date

import pytest
from sqlalchemy import select

from billingcenter.hessian import HessianObject, Long
from billingcenter.ledger import migrate
from billingcenter.ledger.engine import create_engine
from billingcenter.ledger.payments import AccountStore
from billingcenter.ledger.schema import error_record
from billingcenter.ledger.store import SqlLedger
from tests.ledger.accounts_support import (
    add_bill,
    add_orders,
    bill_status,
    deduction_id,
    events,
    snapshot,
)
from tests.server.memhttp import NOW, harness
from tests.server.test_resource import API, call, fault_of

DEC = date(2026, 11, 1)


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    path = tmp_path_factory.mktemp("pay") / "ledger.sqlite3"
    migrate.upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture
def engine(template, tmp_path):
    path = tmp_path / "ledger.sqlite3"
    shutil.copyfile(template, path)
    engine = create_engine(f"sqlite:///{path}")
    add_orders(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def site(engine):
    h = harness(SqlLedger(engine))
    h.service.payments = AccountStore(engine)
    return h


def pay_notice(serial="s-1", deduction=None, amount=700, status="SUCCESS", payer=None):
    return HessianObject(API + "PayNotice", {
        "serial": serial, "deductionId": deduction_id("p1", DEC) if deduction is None
        else deduction, "payerId": payer, "amountFen": Long(amount), "status": status,
        "paidAt": NOW})


def errors(engine):
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(
            select(error_record.c.method, error_record.c.key, error_record.c.code))]


@pytest.mark.parametrize("version", ["c1", "c2", "H2"])
def test_failure_then_success(site, engine, version):
    """FAILED answers ARREARS (and stops), SUCCESS answers SETTLED (and reopens)."""
    bill_id = add_bill(engine, "p1", DEC, 700)
    failed, _ = call(site, "payCallback", pay_notice("s-1", status="failed"), version=version)
    assert failed.type == API + "Receipt"
    assert (failed.fields["key"], failed.fields["status"]) == ("s-1", "ARREARS")
    settled, _ = call(site, "payCallback", pay_notice("s-2"), version=version)
    assert settled.fields["status"] == "SETTLED"
    assert bill_status(engine, bill_id) == "SETTLED"
    assert [e[2] for e in events(engine)] == ["STOP", "STOP", "REOPEN", "REOPEN"]


def test_repeat_and_conflict(site, engine):
    """The same serial answers the same receipt; other content is DUPLICATE_CONFLICT."""
    add_bill(engine, "p1", DEC, 700)
    first, _ = call(site, "payCallback", pay_notice())
    again, _ = call(site, "payCallback", pay_notice())
    assert again == first
    fault = fault_of(site, "payCallback", pay_notice(status="FAILED"))
    assert fault.detail.fields["code"] == "DUPLICATE_CONFLICT"
    assert errors(engine) == [("payCallback", "s-1", "DUPLICATE_CONFLICT")]


@pytest.mark.parametrize(("notice", "code"), [
    (pay_notice(deduction="DED-nobody"), "UNKNOWN_DEDUCTION"),
    (pay_notice(amount=701), "AMOUNT_MISMATCH"),
    (pay_notice(payer="p2"), "AMOUNT_MISMATCH"),
    (pay_notice(status="OK"), "INVALID_ARGUMENT"),
    (pay_notice(deduction="", payer=None, amount=5), "INVALID_ARGUMENT"),
    (pay_notice(deduction="", payer="p1", amount=0), "INVALID_ARGUMENT"),
])
def test_faults_change_nothing_but_the_error_store(site, engine, notice, code):
    """Each refusal is a typed fault; only the error store gains the refused notice."""
    add_bill(engine, "p1", DEC, 700)
    before = snapshot(engine)
    fault = fault_of(site, "payCallback", notice)
    assert fault.detail.fields["code"] == code
    after = snapshot(engine)
    assert len(after.pop("error_record")) == len(before.pop("error_record")) + 1
    assert after == before
    assert errors(engine) == [("payCallback", "s-1", code)]


def test_topup(site, engine):
    """A top-up answers TOPUP."""
    receipt, _ = call(site, "payCallback", pay_notice(deduction="", payer="p9", amount=50))
    assert receipt.fields["status"] == "TOPUP"
