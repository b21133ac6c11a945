"""The phases of a bill run (open, mark, finish) seen between them, on SQLite and MariaDB:
payers and charges arriving mid-run, charges taken meanwhile, ranges held by others."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from billingcenter.jobs.bill_marks import MARK_JOB
from billingcenter.jobs.billing import describe, run_bills
from billingcenter.ledger.charges import insert_claim
from billingcenter.ledger.checks import run_checks
from billingcenter.ledger.invariants import CHECKS
from billingcenter.ledger.schema_billing import bill_part
from billingcenter.ledger.schema_rating import charge, job_claim
from tests.jobs import billing_support as support
from tests.jobs.billing_support import (
    BILL_DATE,
    SETTINGS,
    Clock,
    add_charge,
    bills,
    building,
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


class TestBetweenThePhases:
    def test_a_payer_registered_after_the_marks_is_billed_by_a_rerun(self, engine):
        """The rerun opens its bill and passes the range again for that bill only: the
        bills made before keep their totals, nothing is counted twice."""
        for n in range(3):
            month(engine, f"p-{n}", f"o-{n}", NOV_28, 3, 100 + n)

        def crash():
            raise Crash()

        with pytest.raises(Crash):
            run_bills(engine, BILL_DATE, SETTINGS, "me", Clock(), stop=asked_at(2, crash))
        assert building(engine) == ["p-0", "p-1", "p-2"]
        assert breaches(engine) == {}  # a run in progress is no breach
        month(engine, "late", "o-9", NOV_28, 2, 70)
        again = run_bills(engine, BILL_DATE, SETTINGS, "me", Clock())
        assert (again.registered, again.opened, again.bills) == (1, 1, 4)
        assert (again.marks.passes, again.marks.charges) == (1, 2)
        assert totals(engine) == {"p-0": 300, "p-1": 303, "p-2": 306, "late": 140}
        assert building(engine) == []
        assert select_all(engine, sa.select(sa.func.count()).select_from(bill_part)) == [(0,)]
        check_invariants(engine)
        assert breaches(engine) == {}

    def test_a_payer_registered_after_the_run_is_billed_by_a_rerun(self, engine):
        """After a finished run, a new payer's bill is opened, marked and finished."""
        month(engine, "p-0", "o-0", NOV_28, 3, 100)
        run_bills(engine, BILL_DATE, SETTINGS, "me", Clock())
        month(engine, "late", "o-9", NOV_28, 2, 70)
        later = Clock(support.RUN_AT + timedelta(hours=1))
        again = run_bills(engine, BILL_DATE, SETTINGS, "other", later)
        assert (again.opened, again.marks.passes, again.bills, again.run.chunks) == (1, 1, 1, 1)
        assert totals(engine) == {"p-0": 300, "late": 140}
        check_invariants(engine)

    def test_a_charge_rated_after_its_range_waits_for_the_next_bill(self, engine):
        """A charge written between the marks and the finish is on no bill of this date."""
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

    def test_a_bill_whose_charges_were_taken_meanwhile_is_dropped(self, engine):
        """Charges paid from a balance between the open and the marks leave the bill
        without charges: it is deleted, not made EMPTY."""
        month(engine, "p-0", "o-0", NOV_28, 3, 100)
        month(engine, "p-1", "o-1", NOV_28, 3, 100)

        def take():
            with engine.begin() as conn:
                conn.execute(sa.update(charge).where(charge.c.payer_id == "p-0")
                             .values(entry_id=charge.c.id))

        summary = run_bills(engine, BILL_DATE, SETTINGS, "me", Clock(), stop=asked_at(1, take))
        assert (summary.opened, summary.bills) == (2, 1)
        assert totals(engine) == {"p-1": 300}
        assert building(engine) == []
        check_invariants(engine)


def breaches(engine):
    """What ``billingcenter check`` finds: check kind -> count."""
    return {found.kind: found.count for found in run_checks(engine, CHECKS, 5) if found.count}


class TestRangesHeldByOthers:
    def hold(self, engine, owner="ghost"):
        """Another owner holds the range of charge ids 0 (claimed now, never finished)."""
        with engine.begin() as conn:
            insert_claim(conn, MARK_JOB, BILL_DATE, 0, 1_000_000, owner, support.RUN_AT)

    def test_waits_then_takes_a_stale_range_over(self, engine):
        """The run waits for the held range, takes it over once stale, and finishes."""
        month(engine, "p-0", "o-0", NOV_28, 3, 100)
        self.hold(engine)
        clock = Clock()
        clock.step = timedelta(milliseconds=20)
        summary = run_bills(engine, BILL_DATE, SETTINGS, "me", clock,
                            stale_after=timedelta(milliseconds=400))
        assert (summary.marks.complete, summary.marks.passes, summary.bills) == (True, 1, 1)
        assert totals(engine) == {"p-0": 300}
        check_invariants(engine)

    def test_stops_while_waiting_without_finishing(self, engine):
        """Asked to stop while another owner marks, the run finishes no bill; a rerun by
        the same owner (restarted) does."""
        month(engine, "p-0", "o-0", NOV_28, 3, 100)
        self.hold(engine)
        asked = []

        def stop():  # not before the held range (it is skipped), then while waiting
            asked.append(1)
            return len(asked) > 1

        summary = run_bills(engine, BILL_DATE, SETTINGS, "me", Clock(), stop=stop)
        assert (summary.marks.complete, summary.bills, summary.run.chunks) == (False, 0, 0)
        assert "stopped before the end" in describe(summary)
        assert building(engine) == ["p-0"]
        again = run_bills(engine, BILL_DATE, SETTINGS, "ghost", Clock())
        assert (again.marks.passes, again.bills) == (1, 1)
        check_invariants(engine)
        (claim,) = select_all(engine, sa.select(job_claim.c.status, job_claim.c.last_id).where(
            job_claim.c.job == MARK_JOB))
        assert claim.status == "done" and claim.last_id >= 1
