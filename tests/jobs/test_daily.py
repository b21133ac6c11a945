"""The daily rating job on SQLite and MariaDB: exact charges, reruns, sharing, crashes."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from billingcenter.jobs.claims import chunk_number
from billingcenter.jobs.daily import day_histories, rate_day_job
from billingcenter.jobs.day_window import DayPrices
from billingcenter.ledger.schema_rating import charge, job_claim
from billingcenter.model import StateKind
from billingcenter.rating.daily import rate_day
from tests.jobs import rating_support as support
from tests.jobs.rating_support import (
    DAILY_RULES,
    DAY,
    START,
    TZ,
    Clock,
    Facts,
    book,
    charges,
    claims,
    rows,
)
from tests.support import url_of

KEY = f"/{DAY.isoformat()}"

# The shared fixtures: SQLite and MariaDB databases of the rating-job tests.
rating_sqlite_template = support.rating_sqlite_template
rating_mysql_engine = support.rating_mysql_engine
engine = support.engine


def scenario(facts: Facts) -> dict[str, int]:
    """A day of realistic orders; the charges (fen) the day must produce."""
    facts.order("crm-1")
    facts.order("crm-pauses")
    facts.event("crm-pauses", StateKind.PAUSED, "2026-11-10T10:00:00")
    facts.event("crm-pauses", StateKind.RESUMED, "2026-11-10T11:00:00")
    facts.event("crm-pauses", StateKind.PAUSED, "2026-11-10T15:00:00")
    facts.event("crm-pauses", StateKind.RESUMED, "2026-11-10T16:00:00")
    facts.order("crm-2359")
    facts.event("crm-2359", StateKind.PAUSED, "2026-11-09T23:59:00")
    facts.event("crm-2359", StateKind.RESUMED, "2026-11-10T00:01:00")
    facts.order("crm-paused-before")
    facts.event("crm-paused-before", StateKind.PAUSED, "2026-11-08T12:00:00")
    facts.order("crm-cancel", payer="p-same")
    facts.event("crm-cancel", StateKind.CANCELLED, "2026-11-10T09:00:00")
    facts.order("crm-reorder", plan="CRM-TRIAL-7D", payer="p-same",
                activated="2026-11-10T10:00:00")
    facts.order("crm-cancelled-before")
    facts.event("crm-cancelled-before", StateKind.CANCELLED, "2026-11-09T23:59:59")
    facts.order("crm-tomorrow", activated="2026-11-11T00:00:00")
    facts.order("pc2-a", "PC2", "PC2-DAILY-ACCOUNTS", payer="pa", accounts=3)
    facts.accounts("pa", "PC2", 5, "2026-11-08T08:00:00")
    facts.accounts("pa", "PC2", 8, "2026-11-10T12:00:00")
    facts.accounts("pa", "PC2", 2, "2026-11-10T18:00:00")
    facts.order("pc2-b", "PC2", "PC2-DAILY-ACCOUNTS", payer="pb", accounts=4)
    facts.accounts("pb", "PC2", 6, "2026-11-11T08:00:00")
    facts.order("pc2-trial", "PC2", "PC2-DAILY-ACCOUNTS", payer="pc", accounts=2,
                activated="2026-11-05T08:00:00")
    facts.order("sms-1", "SMS-NOTIFY", "SMS-PER-USE")
    return {
        "crm-1" + KEY: 300,
        "crm-pauses" + KEY: 300,  # two pauses in the day: one day
        "crm-2359" + KEY: 300,  # paused 23:59 the day before, resumed 00:01
        "crm-cancel" + KEY: 300,  # cancelled at 09:00: it was active that morning
        "crm-reorder" + KEY: 0,  # the new order of the same payer: its own trial day 1
        "pc2-a" + KEY: 280,  # max(5 carried in, 8, 2) x 0.35
        "pc2-b" + KEY: 140,  # 4 accounts; tomorrow's change does not count
        "pc2-trial" + KEY: 0,  # day 6 of a 7-day trial
    }


def run(engine, clock=None, owner="owner-a", chunk=3, **options):
    """Rate DAY with the test rules."""
    return rate_day_job(engine, book(), DAY, TZ, chunk, owner, clock or Clock(), **options)


class TestRateDayJob:
    def test_exact_charges_of_a_realistic_day(self, engine):
        """Every order active that day is charged once, to the fen; the others are not."""
        expected = scenario(Facts(engine))
        summary = run(engine)
        assert charges(engine) == expected
        assert (summary.charges, summary.amount_fen) == (8, 1620)
        # Paused or cancelled for good before the day, or activated after it: not read.
        assert summary.seen == 8
        assert summary.chunks == summary.planned == 4 and summary.skipped == 0

    def test_a_charge_explains_itself(self, engine):
        """The stored row names the rule set, version, rule, units, unit price and why."""
        Facts(engine).order("pc2-a", "PC2", "PC2-DAILY-ACCOUNTS", payer="pa", accounts=3)
        summary = run(engine)
        (row,) = rows(engine, charge)
        stored = dict(zip(charge.c.keys(), row, strict=True))
        assert (stored["kind"], stored["source_key"], stored["order_id"], stored["payer_id"],
                stored["product_code"], stored["day"]) == (
            "daily", "pc2-a" + KEY, "pc2-a", "pa", "PC2", DAY)
        assert (stored["rule_set"], stored["rule_set_version"], stored["rule_id"]) == (
            "test-daily", "2026.11.1", "pc2-accounts")
        assert (stored["units"], stored["unit_price"], stored["amount_fen"]) == (
            3, Decimal("0.35"), 105)
        assert '"accounts_max":"3"' in stored["explanation"]
        assert stored["run_id"] == summary.run_id

    def test_a_rerun_changes_nothing(self, engine):
        """Rerunning a finished day rates no chunk and writes no row."""
        scenario(Facts(engine))
        run(engine)
        before = rows(engine, charge), rows(engine, job_claim)
        again = run(engine, owner="owner-b")
        assert (again.chunks, again.skipped, again.charges) == (0, 4, 0)
        assert (rows(engine, charge), rows(engine, job_claim)) == before

    def test_rating_twice_by_hand_still_charges_once(self, engine):
        """Even a chunk rated again (claims forgotten) adds no charge: keys are unique."""
        expected = scenario(Facts(engine))
        run(engine)
        with engine.begin() as conn:
            conn.execute(job_claim.delete())
        again = run(engine)
        assert (again.chunks, again.charges, again.amount_fen) == (4, 0, 0)
        assert charges(engine) == expected

    def test_the_first_run_fixes_the_chunk_size(self, engine):
        """A later run with another chunk size splits the day as the first did."""
        scenario(Facts(engine))
        first = run(engine, chunk=4)
        again = run(engine, chunk=2)
        assert (first.chunk_size, again.chunk_size) == (4, 4)
        assert again.chunks == 0

    def test_an_order_installed_late_is_rated_by_the_next_run(self, engine):
        """An order of the day that arrives after the run is charged by a rerun, alone."""
        facts = Facts(engine)
        expected = scenario(facts)
        run(engine)
        facts.order("crm-late", activated="2026-11-10T20:00:00")
        again = run(engine)
        assert (again.chunks, again.charges, again.amount_fen) == (1, 1, 300)
        assert charges(engine) == {**expected, "crm-late" + KEY: 300}

    def test_the_version_in_force_at_the_start_of_the_day_prices_it(self, engine):
        """A version effective from noon prices the next day, not this one."""
        Facts(engine).order("crm-1")
        noon = (DAILY_RULES.replace('version = "2026.11.1"', 'version = "2026.11.2"')
                .replace("2026-11-01T00:00:00", "2026-11-10T12:00:00")
                .replace('unit_price = "3.00"', 'unit_price = "4.00"'))
        rules = book(DAILY_RULES, noon)
        rate_day_job(engine, rules, DAY, TZ, 3, "owner-a", Clock())
        rate_day_job(engine, rules, DAY + timedelta(days=1), TZ, 3, "owner-a", Clock())
        assert charges(engine) == {"crm-1" + KEY: 300, "crm-1/2026-11-11": 400}

    def test_products_without_a_daily_rule_are_not_read(self, engine):
        """With no daily rule set in force nothing is planned."""
        scenario(Facts(engine))
        summary = rate_day_job(engine, book(DAILY_RULES.replace("2026-11-01", "2026-12-01")),
                               DAY, TZ, 3, "owner-a", Clock())
        assert (summary.planned, summary.charges) == (0, 0)
        assert charges(engine) == {}


class TestSharingARun:
    def test_two_owners_at_once_charge_each_order_once(self, engine):
        """Two threads with their own owner names share the day without a double charge."""
        facts = Facts(engine)
        for i in range(60):
            facts.order(f"o-{i:02}", activated=f"2026-11-{1 + i % 10:02}T08:00:00")
        clock, results, failures = Clock(), [], []

        def owner(name):
            try:
                results.append(run(engine, clock, owner=name, chunk=4))
            except BaseException as exc:  # pragma: no cover - reported below
                failures.append(exc)

        threads = [threading.Thread(target=owner, args=(f"owner-{n}",)) for n in "ab"]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == []
        assert len(charges(engine)) == 60
        assert sum(r.charges for r in results) == 60
        assert sum(r.chunks for r in results) == 15
        assert {status for _, _, status, _ in claims(engine)} == {"done"}

    def test_a_claim_taken_over_rolls_the_chunk_back(self, engine):
        """An owner whose claim was taken meanwhile writes nothing for that chunk."""
        facts = Facts(engine)
        for i in range(3):
            facts.order(f"o-{i}")

        def stealing_rate(history, day, tz, rule_set):
            with engine.begin() as conn:
                conn.execute(job_claim.update().values(owner="thief"))
            return rate_day(history, day, tz, rule_set)

        summary = run(engine, chunk=10, rate=stealing_rate)
        assert (summary.lost, summary.chunks, summary.charges) == (1, 0, 0)
        assert charges(engine) == {}
        assert claims(engine) == [("daily", 0, "running", "thief")]


class TestCrashes:
    def test_a_crash_mid_run_then_a_rerun_finishes_the_rest(self, engine):
        """Failing in the third chunk leaves two chunks done; the same owner finishes."""
        expected = scenario(Facts(engine))
        calls = []

        def failing_rate(history, day, tz, rule_set):
            calls.append(history.order.order_id)
            if len(calls) == 6:
                raise RuntimeError("power cut")
            return rate_day(history, day, tz, rule_set)

        with pytest.raises(RuntimeError, match="power cut"):
            run(engine, rate=failing_rate)
        assert [c[2] for c in claims(engine)] == ["done", "done", "running"]
        done = charges(engine)
        assert len(done) == 5 and done.items() <= expected.items()
        again = run(engine)
        assert (again.chunks, again.skipped) == (2, 2)
        assert charges(engine) == expected

    def test_another_owner_waits_until_the_claim_is_stale(self, engine):
        """A running chunk of another owner is left alone until ``stale_after`` passed."""
        expected = scenario(Facts(engine))

        def failing_rate(history, day, tz, rule_set):
            raise RuntimeError("crash")

        clock = Clock()
        with pytest.raises(RuntimeError):
            run(engine, clock, rate=failing_rate)
        early = run(engine, clock, owner="owner-b", stale_after=timedelta(minutes=10))
        assert early.skipped == 1 and "crm-1" + KEY not in charges(engine)
        clock.advance(timedelta(minutes=11))
        late = run(engine, clock, owner="owner-b", stale_after=timedelta(minutes=10))
        assert (late.chunks, late.skipped) == (1, 3)
        assert charges(engine) == expected

    def test_a_killed_process_then_a_rerun_charges_everything_once(self, engine, tmp_path):
        """A process killed (os._exit) in its third chunk; a rerun completes the day."""
        expected = scenario(Facts(engine))
        script = tmp_path / "killed.py"
        script.write_text(KILLED_RUN, encoding="utf-8")
        repo = Path(__file__).resolve().parents[2]
        done = subprocess.run([sys.executable, str(script), url_of(engine), str(repo)],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 9, done.stderr
        assert [c[2] for c in claims(engine)] == ["done", "done", "running"]
        again = run(engine, owner="killed")
        assert (again.chunks, again.charges) == (2, 3)
        assert charges(engine) == expected


KILLED_RUN = """
import os, sys
sys.path.insert(0, sys.argv[2])
from billingcenter.jobs.daily import rate_day_job
from billingcenter.ledger.engine import create_engine
from billingcenter.rating.daily import rate_day
from tests.jobs.rating_support import DAY, TZ, Clock, book

calls = []

def dying(history, day, tz, rule_set):
    calls.append(1)
    if len(calls) == 6:
        os._exit(9)
    return rate_day(history, day, tz, rule_set)

rate_day_job(create_engine(sys.argv[1]), book(), DAY, TZ, 3, "killed", Clock(), rate=dying)
"""


class TestDayHistories:
    def test_what_the_job_would_rate_without_writing(self, engine):
        """The histories of the day's candidate orders, their rule set; nothing stored."""
        scenario(Facts(engine))
        found = [pair for part in day_histories(engine, book(), DAY, TZ, 3) for pair in part]
        assert sorted(h.order.order_id for h, _ in found) == [
            "crm-1", "crm-2359", "crm-cancel", "crm-pauses", "crm-reorder", "pc2-a", "pc2-b",
            "pc2-trial"]
        history = next(h for h, _ in found if h.order.order_id == "pc2-a")
        assert sorted(a.count for a in history.accounts) == [2, 5, 8]
        assert {rule_set.name for _, rule_set in found} == {"test-daily"}
        assert charges(engine) == {} and claims(engine) == []


class TestPlanning:
    def test_day_prices_pick_products_with_daily_rules(self):
        """Only products whose rule set in force has a daily rule are rated."""
        prices = DayPrices.of(book(), START)
        assert sorted(prices.rule_sets) == ["CRM-BASIC", "PC2"]
        assert prices.accounts_products == {"PC2"}

    def test_chunk_numbers(self, engine):
        """Ids 1..size are chunk 0, size+1..2*size chunk 1 (integer division everywhere)."""
        from billingcenter.ledger.coltypes import is_mysql

        ids = sa.union_all(
            *(sa.select(sa.literal(i, sa.Integer).label("id")) for i in (1, 3, 4, 6, 7))
        ).subquery("ids")
        number = chunk_number(ids.c.id, 3, is_mysql(engine.dialect))
        with engine.connect() as conn:
            found = conn.execute(sa.select(ids.c.id, number).order_by(ids.c.id)).all()
        assert [tuple(r) for r in found] == [(1, 0), (3, 0), (4, 1), (6, 1), (7, 2)]
