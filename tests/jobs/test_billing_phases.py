"""The phases of a bill run (begin, sum, finish) seen between them, on SQLite and
MariaDB: payers and charges arriving mid-run, charges taken meanwhile, another date's
unfinished run, ranges held by others."""

from __future__ import annotations

import threading
import time
from datetime import date, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from billingcenter.errors import InvalidState
from billingcenter.jobs.bill_sums import SUM_JOB
from billingcenter.jobs.billing import BillRunBusy, describe, run_bills
from billingcenter.ledger.charges import charge_row, insert_charges, insert_claim
from billingcenter.ledger.checks import run_checks
from billingcenter.ledger.invariants import CHECKS
from billingcenter.ledger.payments import AccountStore, PayerSettings
from billingcenter.ledger.schema_billing import bill_part, bill_run, payer_account
from billingcenter.ledger.schema_rating import charge, job_claim
from billingcenter.rating.model import Charge, ChargeKind
from tests.jobs import billing_support as support
from tests.jobs.billing_support import (
    BILL_DATE,
    SETTINGS,
    Clock,
    add_charge,
    bills,
    check_invariants,
    marks,
    month,
    select_all,
)

billing_sqlite_template = support.billing_sqlite_template
billing_mysql_engine = support.billing_mysql_engine
engine = support.engine

NOV_28 = date(2026, 11, 28)


class Crash(Exception):
    """Stands for the process dying."""


def totals(engine):
    """payer -> bill total of BILL_DATE."""
    return {payer: row.total_fen for (payer, day), row in bills(engine).items()
            if day == BILL_DATE}


def asked_at(n, then):
    """A stop signal that calls ``then`` at its ``n``-th asking (1: before the range of
    charge ids of these tests; 2: before the first chunk of payers), never stopping."""
    asked = []

    def stop():
        asked.append(1)
        if len(asked) == n:
            then()
        return False

    return stop


def run_row(engine, bill_date=BILL_DATE):
    """(status, upto_id) of the date's bill_run row."""
    return select_all(engine, sa.select(bill_run.c.status, bill_run.c.upto_id)
                      .where(bill_run.c.bill_date == bill_date))[0]


class TestBetweenThePhases:
    def test_a_crashed_run_resumes_with_its_bound(self, engine):
        """A run that died after its sums is finished by a rerun with the bound it began
        with: a payer whose charges came after the crash waits for the next date."""
        for n in range(3):
            month(engine, f"p-{n}", f"o-{n}", NOV_28, 3, 100 + n)

        def crash():
            raise Crash()

        with pytest.raises(Crash):
            run_bills(engine, BILL_DATE, SETTINGS, "me", Clock(), stop=asked_at(2, crash))
        status, bound = run_row(engine)
        assert (status, bills(engine)) == ("RUNNING", {})
        assert breaches(engine) == {}  # a run in progress is no breach
        month(engine, "late", "o-9", NOV_28, 2, 70)
        again = run_bills(engine, BILL_DATE, SETTINGS, "me", Clock())
        assert (again.registered, again.bills, again.closed) == (0, 3, True)
        assert totals(engine) == {"p-0": 300, "p-1": 303, "p-2": 306}
        assert run_row(engine) == ("DONE", bound)
        assert select_all(engine, sa.select(sa.func.count()).select_from(bill_part)) == [(0,)]
        check_invariants(engine)
        assert breaches(engine) == {}
        run_bills(engine, date(2027, 1, 1), SETTINGS, "me", Clock())
        assert bills(engine)[("late", date(2027, 1, 1))].total_fen == 140
        check_invariants(engine)
        assert breaches(engine) == {}

    def test_a_charge_rated_after_its_range_waits_for_the_next_bill(self, engine):
        """A charge written between the sums and the finish is on no bill of this date."""
        month(engine, "p-0", "o-0", NOV_28, 3, 100)
        late = []
        stop = asked_at(2, lambda: late.append(
            add_charge(engine, "p-0", "o-0", NOV_28 - timedelta(days=1), 100)))
        run_bills(engine, BILL_DATE, SETTINGS, "me", Clock(), stop=stop)
        assert totals(engine) == {"p-0": 300}
        assert marks(engine)[late[0]] == 0
        check_invariants(engine)
        run_bills(engine, date(2027, 1, 1), SETTINGS, "me", Clock())
        assert bills(engine)[("p-0", date(2027, 1, 1))].total_fen == 100
        check_invariants(engine)
        assert breaches(engine) == {}

    def test_charges_paid_before_the_sums_make_no_bill(self, engine):
        """Charges paid from a balance between the begin and the sums leave the payer
        without a bill (not an EMPTY one)."""
        month(engine, "p-0", "o-0", NOV_28, 3, 100)
        month(engine, "p-1", "o-1", NOV_28, 3, 100)

        def take():
            with engine.begin() as conn:
                conn.execute(sa.update(charge).where(charge.c.payer_id == "p-0")
                             .values(entry_id=charge.c.id))

        summary = run_bills(engine, BILL_DATE, SETTINGS, "me", Clock(), stop=asked_at(1, take))
        assert summary.bills == 1
        assert totals(engine) == {"p-1": 300}
        check_invariants(engine)

    def test_another_dates_unfinished_run_comes_first(self, engine):
        """While one date's run is unfinished, another date is refused (it would sum
        charges the first is about to bill); once the first is done, it runs."""
        month(engine, "p-0", "o-0", NOV_28, 3, 100)

        def crash():
            raise Crash()

        with pytest.raises(Crash):
            run_bills(engine, BILL_DATE, SETTINGS, "me", Clock(), stop=asked_at(2, crash))
        later = date(2027, 1, 1)
        with pytest.raises(BillRunBusy, match="2026-12-01 is not finished"):
            run_bills(engine, later, SETTINGS, "me", Clock())
        assert select_all(engine, sa.select(sa.func.count()).select_from(bill_run)) == [(1,)]
        assert run_bills(engine, BILL_DATE, SETTINGS, "me", Clock()).bills == 1
        assert run_bills(engine, later, SETTINGS, "me", Clock()).bills == 0
        assert totals(engine) == {"p-0": 300}
        check_invariants(engine)


class TestKindChanges:
    def test_no_change_of_kind_while_a_run_is_unfinished(self, engine):
        """A prepaid payer turned postpaid mid-run could get charges its balance paid on a
        bill: the change is refused (typed, nothing changed) until the run is done."""
        month(engine, "p-0", "o-0", NOV_28, 3, 100)

        def crash():
            raise Crash()

        with pytest.raises(Crash):
            run_bills(engine, BILL_DATE, SETTINGS, "me", Clock(), stop=asked_at(2, crash))
        store = AccountStore(engine)
        with pytest.raises(InvalidState, match="2026-12-01 is not finished"):
            store.set_payer("p-0", PayerSettings(kind="PREPAID"), support.RUN_AT)
        kinds = sa.select(payer_account.c.kind).where(payer_account.c.payer_id == "p-0")
        assert select_all(engine, kinds) == [("POSTPAID",)]
        store.set_payer("p-0", PayerSettings(billing_day=1), support.RUN_AT)  # not the kind
        assert run_bills(engine, BILL_DATE, SETTINGS, "me", Clock()).bills == 1
        assert store.set_payer("p-0", PayerSettings(kind="PREPAID"), support.RUN_AT).kind == (
            "PREPAID")
        check_invariants(engine)


def breaches(engine):
    """What ``billingcenter check`` finds: check kind -> count."""
    return {found.kind: found.count for found in run_checks(engine, CHECKS, 5) if found.count}


class TestRangesHeldByOthers:
    def hold(self, engine, owner="ghost"):
        """Another owner holds the range of charge ids 0 (claimed now, never finished)."""
        with engine.begin() as conn:
            insert_claim(conn, SUM_JOB, BILL_DATE, 0, 1_000_000, owner, support.RUN_AT)

    def test_waits_then_takes_a_stale_range_over(self, engine):
        """The run waits for the held range, takes it over once stale, and finishes."""
        month(engine, "p-0", "o-0", NOV_28, 3, 100)
        self.hold(engine)
        clock = Clock()
        clock.step = timedelta(milliseconds=20)
        summary = run_bills(engine, BILL_DATE, SETTINGS, "me", clock,
                            stale_after=timedelta(milliseconds=400))
        assert (summary.sums.complete, summary.sums.passes, summary.bills) == (True, 1, 1)
        assert totals(engine) == {"p-0": 300}
        check_invariants(engine)

    def test_stops_while_waiting_without_finishing(self, engine):
        """Asked to stop while another owner sums, the run writes no bill; a rerun by
        the same owner (restarted) does."""
        month(engine, "p-0", "o-0", NOV_28, 3, 100)
        self.hold(engine)
        asked = []

        def stop():  # not before the held range (it is skipped), then while waiting
            asked.append(1)
            return len(asked) > 1

        summary = run_bills(engine, BILL_DATE, SETTINGS, "me", Clock(), stop=stop)
        assert (summary.sums.complete, summary.bills, summary.run.chunks) == (False, 0, 0)
        assert "stopped before the end" in describe(summary)
        assert (bills(engine), run_row(engine)[0]) == ({}, "RUNNING")
        again = run_bills(engine, BILL_DATE, SETTINGS, "ghost", Clock())
        assert (again.sums.passes, again.bills) == (1, 1)
        check_invariants(engine)
        (claim,) = select_all(engine, sa.select(job_claim.c.status, job_claim.c.last_id).where(
            job_claim.c.job == SUM_JOB))
        assert claim.status == "done" and claim.last_id >= 1


@pytest.fixture(params=[pytest.param("mariadb", marks=pytest.mark.mariadb)])
def mariadb(request, tmp_path):
    """The empty MariaDB ledger alone (the fence matters where writers run at once)."""
    yield from support.empty_ledger(request, tmp_path, "billing_sqlite_template",
                                    "billing_mysql_engine")


class TestTheFence:
    def test_a_run_waits_for_charges_in_flight_and_bills_them(self, mariadb):
        """A rating transaction that holds the fence when a run begins commits first; its
        charge, with an id below the run's bound, is on the bill (not skipped by a bound
        read around it)."""
        month(mariadb, "p-0", "o-0", NOV_28, 2, 100)
        rating = mariadb.connect()
        began = threading.Event()
        result = {}
        try:
            tx = rating.begin()
            insert_charges(rating, [charge_row(_charge("p-0", "o-late"), support.RUN_AT, "r")])

            def bill_it():
                began.set()
                try:
                    result["run"] = run_bills(mariadb, BILL_DATE, SETTINGS, "me", Clock())
                except Exception as exc:  # reported by the asserts below
                    result["error"] = exc

            thread = threading.Thread(target=bill_it)
            thread.start()
            began.wait()
            time.sleep(0.5)
            assert thread.is_alive(), result  # waiting on the fence
            assert select_all(mariadb, sa.select(sa.func.count()).select_from(bill_run)) == [(0,)]
            tx.commit()
        finally:
            rating.close()
        thread.join(30)
        assert result["run"].bills == 1
        assert totals(mariadb) == {"p-0": 200 + 55}
        check_invariants(mariadb)


def _charge(payer, order):
    """A rated usage charge of 0.55 yuan on NOV_28."""
    return Charge(ChargeKind.USAGE, f"{order}/op-1", order, payer, "CRM-BASIC", NOV_28,
                  "test-usage", "2026.11.1", "crm-usage", Decimal(1), Decimal("0.55"), 55,
                  {"mode": "usage"})
