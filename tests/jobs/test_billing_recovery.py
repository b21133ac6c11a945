"""Bill runs that crash, are killed, or run twice at once: every payer billed once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import date, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from billingcenter.jobs.billing import run_bills
from billingcenter.jobs.claims import retrying
from billingcenter.ledger import bills as ledger_bills
from billingcenter.ledger.bills import DueRule, finish_chunk
from billingcenter.ledger.engine import create_engine
from billingcenter.ledger.schema_billing import bill, bill_run
from billingcenter.ledger.schema_rating import charge
from tests.jobs import billing_support as support
from tests.jobs.billing_support import (
    BILL_DATE,
    SETTINGS,
    Clock,
    bills,
    check_invariants,
    claims,
    month,
)
from tests.support import url_of

billing_sqlite_template = support.billing_sqlite_template
billing_mysql_engine = support.billing_mysql_engine
engine = support.engine

REPO = Path(__file__).resolve().parents[2]
PAYERS = 9


def payers(engine, count=PAYERS, first=date(2026, 11, 28)):
    """``count`` payers with three days of charges each, p-0 paying 100 a day, p-1 101..."""
    for n in range(count):
        month(engine, f"p-{n}", f"o-{n}", first, 3, 100 + n)


def expected(count=PAYERS):
    """payer -> the total its bill must have."""
    return {f"p-{n}": 3 * (100 + n) for n in range(count)}


def totals(engine, bill_date=BILL_DATE):
    """payer -> bill total of the date."""
    return {payer: row.total_fen for (payer, day), row in bills(engine).items()
            if day == bill_date}


class Crash(Exception):
    """Stands for the process dying."""


class TestCrashes:
    def test_a_crash_between_chunks_then_a_rerun(self, engine):
        """Chunks done before the crash stay; the rerun bills the rest, nothing twice."""
        payers(engine)
        asked = []

        def stop():  # asked before the one range of charge ids, then before each chunk
            asked.append(1)
            if len(asked) == 4:
                raise Crash()
            return False

        with pytest.raises(Crash):
            run_bills(engine, BILL_DATE, SETTINGS, "me", Clock(), stop=stop)
        assert len(totals(engine)) == 4  # two chunks of two payers
        assert support.select_all(engine, sa.select(bill_run.c.status)) == [("RUNNING",)]
        again = run_bills(engine, BILL_DATE, SETTINGS, "other", Clock())
        assert (again.bills, again.run.skipped) == (5, 2)
        assert totals(engine) == expected()
        assert claims(engine) == [(k, "done") for k in range(5)]
        check_invariants(engine)

    def test_a_crash_inside_a_chunk_undoes_the_chunk(self, engine, monkeypatch):
        """A failure before the chunk commits leaves no bill, bound or message of it; the
        claim is taken back at once by the same owner, by another after stale_after."""
        payers(engine)
        real = ledger_bills._queue_deductions
        calls = []

        def failing(conn, made_now, now):
            calls.append(1)
            if len(calls) == 2:
                raise Crash()
            return real(conn, made_now, now)

        monkeypatch.setattr(ledger_bills, "_queue_deductions", failing)
        with pytest.raises(Crash):
            run_bills(engine, BILL_DATE, SETTINGS, "me", Clock())
        monkeypatch.setattr(ledger_bills, "_queue_deductions", real)
        assert len(totals(engine)) == 2
        assert claims(engine) == [(0, "done"), (1, "running")]
        held = run_bills(engine, BILL_DATE, SETTINGS, "other", Clock())
        assert held.run.skipped == 2 and ("p-2" not in totals(engine))  # chunk 1 still held
        assert len(totals(engine)) == 7
        later = Clock(support.RUN_AT + timedelta(minutes=11))
        taken = run_bills(engine, BILL_DATE, SETTINGS, "other", later)
        assert (taken.bills, taken.run.chunks) == (2, 1)
        assert totals(engine) == expected()
        check_invariants(engine)

    def test_the_same_owner_takes_its_chunk_back_at_once(self, engine, monkeypatch):
        """After a restart under the same owner name the running chunk is redone now."""
        payers(engine, 2)
        monkeypatch.setattr(ledger_bills, "_queue_deductions",
                            lambda *a: (_ for _ in ()).throw(Crash()))
        with pytest.raises(Crash):
            run_bills(engine, BILL_DATE, SETTINGS, "me", Clock())
        monkeypatch.undo()
        assert run_bills(engine, BILL_DATE, SETTINGS, "me", Clock()).bills == 2
        check_invariants(engine)


class TestConcurrentRuns:
    def test_two_runs_at_once(self, engine):
        """Two owners with their own engines share a run: each payer billed exactly once."""
        payers(engine, 24)
        barrier = threading.Barrier(2)
        results = {}

        def one(owner):
            own = create_engine(url_of(engine), pool_size=2)
            try:
                barrier.wait()
                results[owner] = run_bills(own, BILL_DATE, SETTINGS, owner, Clock())
            finally:
                own.dispose()

        threads = [threading.Thread(target=one, args=(name,)) for name in ("a", "b")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert totals(engine) == expected(24)
        assert sum(r.bills for r in results.values()) == 24
        assert sum(r.total_fen for r in results.values()) == sum(expected(24).values())
        assert claims(engine) == [(k, "done") for k in range(12)]
        check_invariants(engine)

    def test_one_chunk_billed_twice_at_once_without_claims(self, engine):
        """Even with the claims bypassed, two transactions finishing one chunk bill it once
        (on MariaDB one may meet a deadlock; run again, it finds the bills made)."""
        payers(engine, 4)
        due = DueRule(BILL_DATE, 1)
        with engine.begin() as conn:
            ledger_bills.insert_run(conn, BILL_DATE, 1000, "run", support.RUN_AT)
            run = ledger_bills.find_run(conn, BILL_DATE)
            ledger_bills.register_payers(conn, run, due, support.RUN_AT)
            run = ledger_bills.plan_run(conn, run, due)
            ledger_bills.sum_range(conn, run, due, 0, run.start_id, run.upto_id)
        barrier = threading.Barrier(2)
        made = {}

        def one(run_id):
            own = create_engine(url_of(engine), pool_size=1)
            try:
                barrier.wait()

                def work():
                    with own.begin() as conn:
                        return finish_chunk(conn, run, due, 0, 100, support.RUN_AT)

                made[run_id] = retrying(work)  # as the job does: a deadlock is run again
            finally:
                own.dispose()

        threads = [threading.Thread(target=one, args=(name,)) for name in ("r1", "r2")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(m.bills for m in made.values()) == [0, 4]
        assert totals(engine) == expected(4)
        with engine.begin() as conn:
            ledger_bills.close_run(conn, run, support.RUN_AT)
        check_invariants(engine)


class TestKilledProcess:
    def test_a_killed_bill_command_then_a_rerun(self, tmp_path):
        """SIGKILL in the middle of ``billingcenter bill``; the rerun bills the rest once."""
        url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
        from billingcenter.ledger import migrate

        migrate.upgrade(url)
        engine = create_engine(url)
        count, bill_date = 2000, date(2026, 11, 1)
        rows = [{"kind": "daily", "source_key": f"o-{n}/2026-10-30", "order_id": f"o-{n}",
                 "payer_id": f"p-{n:04d}", "product_code": "CRM-BASIC", "day": date(2026, 10, 30),
                 "rule_set": "r", "rule_set_version": "1", "rule_id": "r", "units": 1,
                 "unit_price": 1, "amount_fen": 100 + n, "explanation": "{}",
                 "rated_at": support.RUN_AT, "run_id": "rating"} for n in range(count)]
        with engine.begin() as conn:
            conn.execute(charge.insert(), rows)
        command = [sys.executable, "-c",
                   "import sys; from billingcenter.cli import main; sys.exit(main(sys.argv[1:]))",
                   "bill", "--date", bill_date.isoformat(), "--chunk", "1",
                   "--database-url", url, "--owner", "doomed"]
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        child = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        with engine.connect() as conn:
            while child.poll() is None and time.monotonic() < deadline:
                conn.begin()  # BEGIN IMMEDIATE: the child waits at its next chunk
                at_kill = conn.execute(sa.select(sa.func.count()).select_from(bill)).scalar_one()
                if at_kill:
                    child.send_signal(signal.SIGKILL)
                    child.wait()
                conn.rollback()
                time.sleep(0.005)
        assert 0 < at_kill < count  # killed in the middle
        rerun = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, env=env,
                               check=False)
        assert rerun.returncode == 0, rerun.stderr
        assert totals(engine, bill_date) == {f"p-{n:04d}": 100 + n for n in range(count)}
        check_invariants(engine)
        engine.dispose()
