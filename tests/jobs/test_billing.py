"""The bill run on SQLite and MariaDB: totals to the fen, lines, dates, reruns, kinds."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from billingcenter.config import BillingSettings
from billingcenter.jobs.billing import describe, run_bills
from billingcenter.ledger import bills as ledger_bills
from billingcenter.ledger.bills import deduction_id
from billingcenter.ledger.checks import run_checks
from billingcenter.ledger.invariants import CHECKS
from billingcenter.ledger.schema_billing import bill_part, payer_account
from billingcenter.model import StateKind
from tests.jobs import billing_support as support
from tests.jobs import rating_support
from tests.jobs.billing_support import (
    BILL_DATE,
    SETTINGS,
    Clock,
    add_charge,
    bills,
    check_invariants,
    claims,
    lines,
    marks,
    messages,
    month,
    select_all,
    set_payer,
)

billing_sqlite_template = support.billing_sqlite_template
billing_mysql_engine = support.billing_mysql_engine
engine = support.engine

NOV_1 = date(2026, 11, 1)


def run(engine, bill_date=BILL_DATE, settings=SETTINGS, owner="me", clock=None, **options):
    """One bill run of ``bill_date``."""
    return run_bills(engine, bill_date, settings, owner, clock or Clock(), **options)


class TestBillTotals:
    def test_one_bill_with_lines_per_order_and_product(self, engine):
        """A payer's month becomes one OWED bill whose lines group by order and product."""
        month(engine, "p-1", "o-1", NOV_1, 30, 300)
        month(engine, "p-1", "o-2", date(2026, 11, 10), 5, 35, "PC2")
        add_charge(engine, "p-1", "o-2", date(2026, 11, 20), 7, "SMS-NOTIFY", "usage", key="u1")
        add_charge(engine, "p-1", "o-2", date(2026, 11, 21), 9, "SMS-NOTIFY", "usage", key="u2")
        summary = run(engine)
        found = bills(engine)[("p-1", BILL_DATE)]
        assert (found.total_fen, found.charges, found.lines, found.status) == (
            9000 + 175 + 16, 37, 3, "OWED")
        assert (found.first_day, found.last_day) == (NOV_1, date(2026, 11, 30))
        assert found.deduction_id == "DED-p-1-20261201" == deduction_id("p-1", BILL_DATE)
        assert lines(engine, found.id) == [
            ("o-1", "CRM-BASIC", 30, 9000, NOV_1, date(2026, 11, 30)),
            ("o-2", "PC2", 5, 175, date(2026, 11, 10), date(2026, 11, 14)),
            ("o-2", "SMS-NOTIFY", 2, 16, date(2026, 11, 20), date(2026, 11, 21)),
        ]
        assert set(marks(engine).values()) == {found.id}
        assert (summary.bills, summary.owed, summary.total_fen, summary.run.charges,
                summary.messages, summary.registered) == (1, 1, 9191, 37, 1, 1)
        check_invariants(engine)

    def test_the_deduction_message(self, engine):
        """The chargeAccount payload is the DeductionRequest of the bill."""
        month(engine, "p-1", "o-1", date(2026, 11, 29), 2, 123)
        clock = Clock()
        run(engine, clock=clock)
        found = bills(engine)[("p-1", BILL_DATE)]
        message = messages(engine)["DED-p-1-20261201"]
        assert (message.target, message.method, message.status, message.ordering_key) == (
            "account", "chargeAccount", "PENDING", "")
        assert json.loads(message.payload) == {
            "deductionId": "DED-p-1-20261201", "billId": found.id, "payerId": "p-1",
            "amountFen": 246, "billDate": "2026-12-01", "firstDay": "2026-11-29",
            "lastDay": "2026-11-30", "createdAt": int(found.created_at.timestamp() * 1000),
        }

    def test_only_days_before_the_date(self, engine):
        """Charges of the bill date and later stay unbilled."""
        old = add_charge(engine, "p-1", "o-1", date(2026, 10, 3), 100)
        last = add_charge(engine, "p-1", "o-1", date(2026, 11, 30), 200)
        today = add_charge(engine, "p-1", "o-1", BILL_DATE, 400)
        later = add_charge(engine, "p-1", "o-1", date(2026, 12, 2), 800)
        run(engine)
        found = bills(engine)[("p-1", BILL_DATE)]
        assert found.total_fen == 300
        assert marks(engine) == {old: found.id, last: found.id, today: 0, later: 0}

    def test_many_payers_in_many_chunks(self, engine):
        """Every payer gets its own bill with its own total, whatever chunk it is in."""
        for n in range(7):
            month(engine, f"p-{n}", f"o-{n}", date(2026, 11, 25), 3, 100 + n)
        summary = run(engine)
        found = bills(engine)
        assert {payer: row.total_fen for (payer, _), row in found.items()} == {
            f"p-{n}": 3 * (100 + n) for n in range(7)}
        assert (summary.run.planned, summary.run.chunks, summary.bills) == (4, 4, 7)
        assert claims(engine) == [(k, "done") for k in range(4)]
        check_invariants(engine)


class TestWhoIsBilled:
    def test_zero_total_is_empty_without_message(self, engine):
        """Charges of 0 fen (trials) make an EMPTY bill and no deduction."""
        month(engine, "p-1", "o-1", date(2026, 11, 20), 3, 0)
        run(engine)
        found = bills(engine)[("p-1", BILL_DATE)]
        assert (found.status, found.total_fen, found.charges, found.deduction_id) == (
            "EMPTY", 0, 3, None)
        assert messages(engine) == {}

    def test_no_charges_no_bill(self, engine):
        """A known payer with nothing unbilled gets no bill."""
        set_payer(engine, "p-1")
        add_charge(engine, "p-1", "o-1", BILL_DATE, 300)  # of the date itself
        assert run(engine).bills == 0
        assert bills(engine) == {}

    def test_prepaid_payers_are_skipped(self, engine):
        """A PREPAID payer's charges are never billed, paid or not."""
        set_payer(engine, "pre", kind="PREPAID")
        paid = add_charge(engine, "pre", "o-1", date(2026, 11, 5), 300, entry_id=17)
        unpaid = add_charge(engine, "pre", "o-1", date(2026, 11, 6), 300)
        assert run(engine).bills == 0
        assert marks(engine) == {paid: 0, unpaid: 0}

    def test_a_payer_with_its_own_billing_day(self, engine):
        """A payer's own day wins over [billing] day; it is billed on its date only."""
        set_payer(engine, "mid", billing_day=15)
        month(engine, "mid", "o-1", date(2026, 11, 1), 30, 100)
        month(engine, "std", "o-2", date(2026, 11, 1), 30, 100)
        run(engine)
        assert set(bills(engine)) == {("std", BILL_DATE)}
        run(engine, date(2026, 12, 15))
        found = bills(engine)
        assert set(found) == {("std", BILL_DATE), ("mid", date(2026, 12, 15))}
        assert found[("mid", date(2026, 12, 15))].total_fen == 3000

    def test_payers_spread_over_billing_days_are_summed_by_payer(self, engine):
        """When fewer than half the payers are due, the sums join each charge's payer row
        (the charges of payers billed on other dates are not summed at all); the bills
        are the same to the fen, and so is the next date's, over the same charges."""
        for n in range(3):
            set_payer(engine, f"mid-{n}", billing_day=15)
            month(engine, f"mid-{n}", f"m-{n}", date(2026, 11, 1), 30, 100 + n)
        month(engine, "std", "o-9", date(2026, 11, 1), 30, 100)
        summed = []
        real = ledger_bills.sum_range

        def spy(conn, run_row, due, chunk, lo, hi):
            summed.append(run_row.joined_upto >= hi)
            return real(conn, run_row, due, chunk, lo, hi)

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(ledger_bills, "sum_range", spy)
            run(engine)
            assert summed == [True]  # the run joined payer rows over its whole range
            parts_left = select_all(engine, sa.select(sa.func.count()).select_from(bill_part))
            assert parts_left == [(0,)]
            mid = date(2026, 12, 15)
            run(engine, mid, clock=Clock(datetime(2026, 12, 15, 3, tzinfo=UTC)))
        found = bills(engine)
        assert {key: row.total_fen for key, row in found.items()} == {
            ("std", BILL_DATE): 3000, ("mid-0", mid): 3000, ("mid-1", mid): 3030,
            ("mid-2", mid): 3060}
        assert summed == [True, False]  # three of four payers due on the 15th
        check_invariants(engine)

    def test_the_default_day_comes_from_the_settings(self, engine):
        """With [billing] day = 10 a new payer is billed on the 10th, not the 1st."""
        month(engine, "p-1", "o-1", date(2026, 11, 1), 5, 100)
        settings = BillingSettings(day=10, chunk=2)
        assert run(engine, settings=settings).bills == 0
        assert run(engine, date(2026, 12, 10), settings=settings).bills == 1

    def test_a_day_the_month_lacks_bills_on_its_last_day(self, engine):
        """Billing day 31 bills on 30 April, not in May."""
        set_payer(engine, "p-31", billing_day=31)
        month(engine, "p-31", "o-1", date(2027, 4, 1), 29, 100)
        assert run(engine, date(2027, 4, 29)).bills == 0
        assert run(engine, date(2027, 4, 30)).bills == 1

    def test_new_payers_are_registered_on_the_default_day_only(self, engine):
        """A run of a date new payers are not due on leaves them unregistered (the whole
        index is read only when it matters); the default day's run adds and bills them."""
        add_charge(engine, "new", "o-1", date(2026, 11, 10), 100)
        mid = run(engine, date(2026, 11, 15), clock=Clock(datetime(2026, 11, 15, 3, tzinfo=UTC)))
        assert (mid.registered, mid.bills) == (0, 0)
        assert select_all(engine, sa.select(payer_account.c.payer_id)) == []
        assert (run(engine).registered, bills(engine)[("new", BILL_DATE)].total_fen) == (1, 100)
        check_invariants(engine)

    def test_new_payers_are_registered_with_defaults(self, engine):
        """The run adds a POSTPAID row with the defaults for a payer it has not seen."""
        add_charge(engine, "new", "o-1", date(2026, 11, 30), 1)
        assert run(engine).registered == 1
        (row,) = select_all(engine, sa.select(payer_account))
        assert (row.payer_id, row.kind, row.billing_day, row.balance_fen, row.floor_fen,
                row.threshold_fen, row.service_state, row.arrears_since) == (
            "new", "POSTPAID", None, 0, 0, 0, "OPEN", None)


class TestRerunsAndLateCharges:
    def test_a_rerun_makes_nothing_new(self, engine):
        """Running the date again bills nothing, queues nothing, changes no mark."""
        for n in range(5):
            month(engine, f"p-{n}", f"o-{n}", date(2026, 11, 28), 3, 50)
        run(engine)
        before = (bills(engine), marks(engine), messages(engine))
        again = run(engine, owner="other")
        assert (again.bills, again.messages, again.run.chunks, again.done_before) == (
            0, 0, 0, True)
        assert (bills(engine), marks(engine), messages(engine)) == before

    def test_a_charge_dated_after_a_run_it_registered_its_payer_in_is_billed_later(
            self, engine):
        """A payer first seen by a run of a date it is not due on (a row made by ``payer
        set``), whose first charge (lowest id) is dated on that date: the charge is on its
        next bill, not left below where the next run looks."""
        mid = date(2026, 11, 15)
        set_payer(engine, "p-1")
        first = add_charge(engine, "p-1", "o-1", mid, 70)  # usage of the 15th, rated first
        add_charge(engine, "p-1", "o-1", mid - timedelta(days=1), 100)  # the 14th's day
        assert run(engine, mid, clock=Clock(datetime(2026, 11, 15, 3, tzinfo=UTC))).bills == 0
        assert run(engine).bills == 1
        held = bills(engine)[("p-1", BILL_DATE)]
        assert held.total_fen == 170 and marks(engine)[first] == held.id
        check_invariants(engine)
        assert not [found for found in run_checks(engine, CHECKS, 5) if found.count]

    def test_a_late_charge_goes_on_the_next_bill(self, engine):
        """A charge rated after the run waits for the next bill and is on one bill only."""
        month(engine, "p-1", "o-1", date(2026, 11, 28), 3, 100)
        run(engine)
        late = add_charge(engine, "p-1", "o-1", date(2026, 11, 27), 100)
        assert run(engine, owner="again").bills == 0
        assert marks(engine)[late] == 0
        add_charge(engine, "p-1", "o-1", date(2026, 12, 5), 100)
        run(engine, date(2027, 1, 1))
        found = bills(engine)
        january = found[("p-1", date(2027, 1, 1))]
        assert (found[("p-1", BILL_DATE)].total_fen, january.total_fen) == (300, 200)
        assert (january.first_day, january.last_day) == (date(2026, 11, 27), date(2026, 12, 5))
        assert marks(engine)[late] == january.id
        check_invariants(engine)

    def test_a_done_date_is_final_a_later_payer_waits_for_the_next_date(self, engine):
        """A rerun of a done date bills nothing: a payer whose first charge was rated
        after the run is billed on the next date, with nothing lost."""
        month(engine, "p-1", "o-1", date(2026, 11, 28), 3, 100)
        run(engine)
        late = add_charge(engine, "p-2", "o-2", date(2026, 11, 29), 70)
        again = run(engine, owner="again", clock=Clock(support.RUN_AT + timedelta(hours=1)))
        assert (again.done_before, again.registered, again.bills) == (True, 0, 0)
        assert "billed before" in describe(again)
        assert ("p-2", BILL_DATE) not in bills(engine)
        later = run(engine, date(2027, 1, 1), clock=Clock(datetime(2027, 1, 1, 3, tzinfo=UTC)))
        assert later.bills == 1
        held = bills(engine)[("p-2", date(2027, 1, 1))]
        assert held.total_fen == 70 and marks(engine)[late] == held.id
        check_invariants(engine)


class TestWithTheRatingJob:
    def test_rated_days_are_billed_to_the_fen(self, engine):
        """Days rated by the daily job are billed exactly: 3.00 a day, a cancel counts."""
        facts = rating_support.Facts(engine)
        facts.order("crm-1", activated="2026-11-07T09:00:00", payer="acme")
        facts.order("crm-2", activated="2026-11-08T09:00:00", payer="acme")
        facts.event("crm-2", StateKind.CANCELLED, "2026-11-09T12:00:00")
        book = rating_support.book()
        for n in range(4):  # 7..10 November
            rating_support_rate(engine, book, date(2026, 11, 7) + timedelta(days=n))
        summary = run(engine, date(2026, 11, 11), BillingSettings(day=11, chunk=2))
        found = bills(engine)[("acme", date(2026, 11, 11))]
        assert (found.total_fen, found.charges, found.lines) == (4 * 300 + 2 * 300, 6, 2)
        assert lines(engine, found.id) == [
            ("crm-1", "CRM-BASIC", 4, 1200, date(2026, 11, 7), date(2026, 11, 10)),
            ("crm-2", "CRM-BASIC", 2, 600, date(2026, 11, 8), date(2026, 11, 9)),
        ]
        assert "1 bills (1 owed, 0 empty), 6 charges, 18.00 yuan" in describe(summary)


def rating_support_rate(engine, book, day):
    """Rate one business day with the daily job."""
    from billingcenter.jobs.daily import rate_day_job

    rate_day_job(engine, book, day, rating_support.TZ, 100, "rater",
                 rating_support.Clock(support.RUN_AT))
