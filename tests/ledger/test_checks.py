"""``billingcenter.ledger.checks``: a clean ledger passes; each broken invariant is found.

Each test corrupts one row of the same clean ledger (built row by row, on SQLite and
MariaDB) and expects exactly the breaches that row causes, to the text.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from sqlalchemy import delete, insert, select

from billingcenter.ledger.checks import run_checks
from billingcenter.ledger.invariants import CHECKS, KINDS
from billingcenter.ledger.schema_billing import (
    balance_entry,
    bill,
    bill_line,
    outbox,
    payer_account,
    payment,
)
from billingcenter.ledger.schema_rating import charge
from tests.ledger import billing_rows
from tests.ledger.billing_rows import AT, Rows, bill_of, clean_ledger

engine = billing_rows.engine
report_mysql_engine = billing_rows.report_mysql_engine
report_sqlite_template = billing_rows.report_sqlite_template


def found(engine: Any, limit: int = 10) -> dict[str, list[str]]:
    """The breaches, per kind: ``"ids: expected ...; found ..."``."""
    results = run_checks(engine, CHECKS, limit)
    assert [r.kind for r in results] == list(KINDS)
    return {
        r.kind: [", ".join(f"{k} {v}" for k, v in b.ids) + f": expected {b.expected}; "
                 f"found {b.found}" for b in r.breaches]
        for r in results if r.count
    }


def _insert(table: Any, **values: Any) -> Callable[[Any], None]:
    def corrupt(engine: Any) -> None:
        with engine.begin() as conn:
            conn.execute(insert(table).values(**values))
    return corrupt


def _set(table: Any, row_id: int, **values: Any) -> Callable[[Any], None]:
    return lambda engine: Rows(engine).set(table, row_id, **values)


def _both(*corruptions: Callable[[Any], None]) -> Callable[[Any], None]:
    def corrupt(engine: Any) -> None:
        for one in corruptions:
            one(engine)
    return corrupt


def _delete(table: Any, row_id: int) -> Callable[[Any], None]:
    def corrupt(engine: Any) -> None:
        with engine.begin() as conn:
            conn.execute(delete(table).where(table.c.id == row_id))
    return corrupt


class TestCleanLedger:
    def test_nothing_is_found(self, engine):
        """The clean ledger breaks no invariant; its bills hold the charges their bounds
        and dates say (bill 4 not charge 4, which bill 2 holds), its payer rows repeat
        their latest bills' bounds."""
        clean_ledger(Rows(engine))
        assert found(engine) == {}
        assert bill_of(engine) == {1: 1, 2: 1, 3: 1, 4: 2, 7: 3, 9: 4}
        p = payer_account.c
        with engine.begin() as conn:
            bounds = conn.execute(select(p.payer_id, p.billed_upto, p.billed_before,
                                         p.unbilled_from).order_by(p.id)).all()
        assert [tuple(r) for r in bounds] == [
            ("p-1", 4, date(2026, 11, 1), 5), ("p-2", 9, date(2026, 12, 1), 10),
            ("p-4", 7, date(2026, 11, 1), 8), ("p-3", 0, None, 0)]

    def test_an_empty_ledger_is_clean(self, engine):
        """No rows, no breaches."""
        assert found(engine) == {}


CORRUPTIONS = [
    pytest.param(_set(bill, 2, upto_id=10), {
        "bill_bounds_grow": [
            "bill 4, bill 2: expected a bound of at least 10; found bound 9",
        ],
        "payer_bill_bounds": [
            "payer p-2: expected charges up to id 10 before 2026-12-01; found charges up to "
            "id 9 before 2026-12-01",
        ],
    }, id="bill_bounds_grow"),
    pytest.param(_set(bill, 4, upto_id=3), {
        "bill_bounds_grow": [
            "bill 4, bill 2: expected a bound of at least 4; found bound 3",
        ],
        "bill_line_charges": [
            "bill 4, line 5, order o-3, product CRM: expected no charges; found amount 300 "
            "fen, 1 charges, days 2026-11-30 to 2026-11-30",
        ],
        "payer_bill_bounds": [
            "payer p-2: expected charges up to id 4 before 2026-12-01; found charges up to "
            "id 9 before 2026-12-01",
        ],
    }, id="bill_bounds_shrink_below_its_charges"),
    pytest.param(_set(payer_account, 1, billed_upto=3), {
        "payer_bill_bounds": [
            "payer p-1: expected charges up to id 4 before 2026-11-01; found charges up to "
            "id 3 before 2026-11-01",
        ],
    }, id="payer_bill_bounds"),
    pytest.param(_set(payer_account, 1, billed_upto=2), {
        "charge_forgotten": [
            "charge 3, payer p-1: expected a charge id of at least 5; found charge 3",
        ],
        "payer_bill_bounds": [
            "payer p-1: expected charges up to id 4 before 2026-11-01; found charges up to "
            "id 2 before 2026-11-01",
        ],
    }, id="payer_bill_bounds_forget_a_charge"),
    pytest.param(_set(payer_account, 3, billed_upto=0, billed_before=None), {
        "charge_forgotten": [
            "charge 7, payer p-4: expected a charge id of at least 8; found charge 7",
        ],
        "payer_bill_bounds": [
            "payer p-4: expected charges up to id 7 before 2026-11-01; found never billed",
        ],
    }, id="payer_bill_bounds_never_billed"),
    pytest.param(_set(payer_account, 4, billed_upto=6, billed_before=date(2026, 11, 4)), {
        "payer_bill_bounds": [
            "payer p-3: expected never billed; found charges up to id 6 before 2026-11-04",
        ],
    }, id="payer_bill_bounds_without_a_bill"),
    pytest.param(_set(payer_account, 1, unbilled_from=9), {
        "charge_forgotten": [
            "charge 8, payer p-1: expected a charge id of at least 9; found charge 8",
        ],
    }, id="charge_forgotten"),
    pytest.param(_set(charge, 1, entry_id=4), {
        "bill_line_charges": [
            "bill 1, line 1, order o-1, product CRM: expected amount 300 fen, 1 charges, days "
            "2026-10-31 to 2026-10-31; found amount 600 fen, 2 charges, days 2026-10-30 to "
            "2026-10-31",
        ],
        "prepaid_entry": [
            "charge 1, entry 4: expected charge:1: -300 fen from p-1; found charge:5: -20 fen "
            "from p-3",
        ],
    }, id="billed_charge_paid_from_a_balance"),
    pytest.param(_set(bill, 1, bill_date=date(2026, 10, 31)), {
        "bill_line_charges": [
            "bill 1, line 1, order o-1, product CRM: expected amount 300 fen, 1 charges, days "
            "2026-10-30 to 2026-10-30; found amount 600 fen, 2 charges, days 2026-10-30 to "
            "2026-10-31",
            "bill 1, line 2, order o-2, product SMS: expected no charges; found amount 15 fen, "
            "1 charges, days 2026-10-31 to 2026-10-31",
        ],
        "payer_bill_bounds": [
            "payer p-1: expected charges up to id 4 before 2026-10-31; found charges up to "
            "id 4 before 2026-11-01",
        ],
    }, id="bill_date_bounds_its_charges"),
    pytest.param(_set(bill, 1, upto_id=2), {
        "bill_line_charges": [
            "bill 1, line 2, order o-2, product SMS: expected no charges; found amount 15 fen, "
            "1 charges, days 2026-10-31 to 2026-10-31",
        ],
        "payer_bill_bounds": [
            "payer p-1: expected charges up to id 2 before 2026-11-01; found charges up to "
            "id 4 before 2026-11-01",
        ],
    }, id="bill_bound_bounds_its_charges"),
    pytest.param(_set(bill, 1, charges=4), {
        "bill_lines": [
            "bill 1: expected total 615 fen, 2 lines, 3 charges, days 2026-10-30 to "
            "2026-10-31; found total 615 fen, 2 lines, 4 charges, days 2026-10-30 to 2026-10-31",
        ],
    }, id="bill_lines"),
    pytest.param(_set(charge, 2, amount_fen=301), {
        "bill_line_charges": [
            "bill 1, line 1, order o-1, product CRM: expected amount 601 fen, 2 charges, days "
            "2026-10-30 to 2026-10-31; found amount 600 fen, 2 charges, days 2026-10-30 to "
            "2026-10-31",
        ],
    }, id="bill_line_charges"),
    pytest.param(_set(charge, 3, order_id="o-9"), {
        "bill_charges_unlined": [
            "bill 1, order o-9, product SMS: expected a line of 1 charges, 15 fen; found no "
            "line",
        ],
        "bill_line_charges": [
            "bill 1, line 2, order o-2, product SMS: expected no charges; found amount 15 fen, "
            "1 charges, days 2026-10-31 to 2026-10-31",
        ],
    }, id="bill_charges_unlined"),
    pytest.param(_set(charge, 4, payer_id="p-1"), {
        "bill_charges_unlined": [
            "bill 1, order o-3, product CRM: expected a line of 1 charges, 300 fen; found no "
            "line",
        ],
        "bill_line_charges": [
            "bill 2, line 3, order o-3, product CRM: expected no charges; found amount 300 "
            "fen, 1 charges, days 2026-10-31 to 2026-10-31",
        ],
    }, id="bill_charges_unlined_other_payer"),
    pytest.param(_set(bill_line, 1, amount_fen=601), {
        "bill_line_charges": [
            "bill 1, line 1, order o-1, product CRM: expected amount 600 fen, 2 charges, days "
            "2026-10-30 to 2026-10-31; found amount 601 fen, 2 charges, days 2026-10-30 to "
            "2026-10-31",
        ],
        "bill_lines": [
            "bill 1: expected total 616 fen, 2 lines, 3 charges, days 2026-10-30 to "
            "2026-10-31; found total 615 fen, 2 lines, 3 charges, days 2026-10-30 to "
            "2026-10-31",
        ],
    }, id="bill_line_amount"),
    pytest.param(_set(bill, 1, status="PAID"), {
        "bill_status": [
            "bill 1: expected one of OWED, SETTLED, ARREARS, EMPTY; found PAID, total 615 fen, "
            "deduction DED-p-1-20261101",
        ],
    }, id="bill_status"),
    pytest.param(_set(bill, 1, deduction_id=None), {
        "bill_deduction_missing": [
            "bill 1: expected a deduction id; found SETTLED without one",
        ],
        "outbox_unknown_deduction": [
            "message 1, deduction DED-p-1-20261101: expected a bill with this deduction id; "
            "found no such bill",
        ],
        "payment_unknown_deduction": [
            "payment 1, serial s-1, deduction DED-p-1-20261101: expected a bill with this "
            "deduction id; found no such bill",
        ],
        "settled_unpaid": [
            "bill 1, deduction -: expected a SUCCESS payment or a bill:1 balance entry; found "
            "neither",
        ],
    }, id="bill_deduction_missing"),
    pytest.param(_set(outbox, 1, method="feedbackUser"), {
        "deduction_outbox": [
            "bill 1, deduction DED-p-1-20261101: expected chargeAccount to account; found "
            "message 1: feedbackUser to account",
        ],
    }, id="deduction_outbox"),
    pytest.param(_insert(
        outbox, message_key="DED-ghost", target="account", method="chargeAccount",
        ordering_key="", payload="{}", status="PENDING", attempts=0, next_attempt_at=AT,
        last_error="", created_at=AT), {
        "outbox_unknown_deduction": [
            "message 4, deduction DED-ghost: expected a bill with this deduction id; found no "
            "such bill",
        ],
    }, id="outbox_unknown_deduction"),
    pytest.param(_set(payment, 1, status="FAILED"), {
        "settled_unpaid": [
            "bill 1, deduction DED-p-1-20261101: expected a SUCCESS payment or a bill:1 "
            "balance entry; found neither",
        ],
    }, id="settled_unpaid"),
    pytest.param(_insert(
        payment, serial="s-4", deduction_id="DED-p-1-20261101", payer_id="p-1",
        amount_fen=615, status="SUCCESS", paid_at=AT, outcome="SETTLED", digest="0" * 64,
        recorded_at=AT), {
        "bill_paid_twice": [
            "bill 1, deduction DED-p-1-20261101: expected paid once; found 2 SUCCESS payments, "
            "0 balance entries",
        ],
    }, id="bill_paid_twice"),
    pytest.param(_insert(
        payment, serial="s-5", deduction_id="DED-nobody", payer_id="p-1", amount_fen=1,
        status="SUCCESS", paid_at=AT, outcome="SETTLED", digest="0" * 64, recorded_at=AT), {
        "payment_unknown_deduction": [
            "payment 4, serial s-5, deduction DED-nobody: expected a bill with this deduction "
            "id; found no such bill",
        ],
    }, id="payment_unknown_deduction"),
    pytest.param(_set(payment, 1, amount_fen=600), {
        "payment_mismatch": [
            "payment 1, serial s-1, deduction DED-p-1-20261101, bill 1: expected 615 fen from "
            "p-1; found 600 fen from p-1",
        ],
    }, id="payment_mismatch"),
    pytest.param(_set(payment, 3, amount_fen=999), {
        "topup_entry": [
            "payment 3, serial s-3: expected topup:s-3: 999 fen to p-2; found entry 1: 1000 "
            "fen to p-2",
        ],
    }, id="topup_entry"),
    pytest.param(_set(payer_account, 1, balance_fen=5), {
        "balance_sum": [
            "payer p-1: expected 0 fen (0 entries); found 5 fen",
        ],
    }, id="balance_sum"),
    pytest.param(_set(balance_entry, 5, balance_after_fen=461), {
        "balance_chain": [
            "entry 5, payer p-3: expected 460 fen; found 461 fen",
        ],
        "balance_last": [
            "payer p-3, entry 5: expected 461 fen; found 460 fen",
        ],
    }, id="balance_last"),
    pytest.param(_set(balance_entry, 3, balance_after_fen=499), {
        "balance_chain": [
            "entry 3, payer p-3: expected 500 fen; found 499 fen",
            "entry 4, payer p-3: expected 479 fen; found 480 fen",
        ],
    }, id="balance_chain"),
    pytest.param(_set(payer_account, 4, floor_fen=1000), {
        "balance_floor": [
            "payer p-3: expected at least 1000 fen; found 460 fen",
        ],
    }, id="balance_floor"),
    pytest.param(_insert(
        balance_entry, entry_key="topup:s-7", payer_id="p-ghost", kind="TOPUP",
        amount_fen=5, balance_after_fen=5, created_at=AT), {
        "entry_unknown_payer": [
            "entry 6, payer p-ghost: expected a payer_account row; found none",
        ],
    }, id="entry_unknown_payer"),
    pytest.param(_set(charge, 5, amount_fen=25), {
        "prepaid_entry": [
            "charge 5, entry 4: expected charge:5: -25 fen from p-3; found charge:5: -20 fen "
            "from p-3",
        ],
    }, id="prepaid_entry"),
    pytest.param(_set(balance_entry, 2, entry_key="bill:99"), {
        "bill_entry": [
            "entry 2, key bill:99: expected SETTLED bill of p-2, total 300 fen; found no such "
            "bill",
        ],
        "settled_unpaid": [
            "bill 2, deduction DED-p-2-20261101: expected a SUCCESS payment or a bill:2 "
            "balance entry; found neither",
        ],
    }, id="bill_entry"),
    pytest.param(_set(bill, 3, status="OWED"), {
        "bill_deduction_missing": [
            "bill 3: expected a deduction id; found OWED without one",
        ],
        "bill_status": [
            "bill 3: expected EMPTY; found OWED, total 0 fen, deduction -",
        ],
    }, id="bill_status_empty"),
    pytest.param(_both(_delete(payment, 2), _delete(outbox, 2)), {
        "deduction_outbox": [
            "bill 2, deduction DED-p-2-20261101: expected chargeAccount to account; found no "
            "message",
        ],
    }, id="deduction_outbox_missing"),
    pytest.param(_delete(outbox, 1), {}, id="deduction_outbox_purged_after_payment"),
    pytest.param(_delete(bill_line, 3), {
        "bill_charges_unlined": [
            "bill 2, order o-3, product CRM: expected a line of 1 charges, 300 fen; found no "
            "line",
        ],
        "bill_lines": [
            "bill 2: expected no lines; found total 300 fen, 1 lines, 1 charges, days "
            "2026-10-31 to 2026-10-31",
        ],
    }, id="bill_lines_missing"),
]


class TestCorruption:
    @pytest.mark.parametrize("corrupt, expected", CORRUPTIONS)
    def test_the_breach_is_found(self, engine, corrupt, expected):
        """One corrupted row: exactly the breaches it causes, ids and values named."""
        clean_ledger(Rows(engine))
        corrupt(engine)
        assert found(engine) == expected

    def test_every_kind_is_covered(self):
        """Each kind of breach is caused by at least one corruption above."""
        caused = {kind for case in CORRUPTIONS for kind in case.values[1]}
        assert caused == set(KINDS)

    def test_the_limit_keeps_the_count(self, engine):
        """Past the limit, breaches are counted but not all kept."""
        clean_ledger(Rows(engine))
        Rows(engine).set(balance_entry, 3, balance_after_fen=499)
        [chain] = [r for r in run_checks(engine, CHECKS, 1) if r.kind == "balance_chain"]
        assert (chain.count, [b.ids for b in chain.breaches]) == (
            2, [(("entry", 3), ("payer", "p-3"))])
