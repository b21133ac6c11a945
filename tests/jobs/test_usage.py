"""The per-use rating job on SQLite and MariaDB: exact charges, trials, NO_RULE, late records."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa

from billingcenter.jobs.usage import ERROR_METHOD, rate_usage_job
from billingcenter.ledger.schema import error_record
from billingcenter.ledger.schema_rating import charge, job_claim
from billingcenter.rating.usage import rate_usage
from tests.jobs import rating_support as support
from tests.jobs.rating_support import (
    DAILY_RULES,
    DAY,
    TZ,
    USAGE_RULES,
    Clock,
    Facts,
    book,
    charges,
    claims,
    rows,
)

# The shared fixtures: SQLite and MariaDB databases of the rating-job tests.
rating_sqlite_template = support.rating_sqlite_template
rating_mysql_engine = support.rating_mysql_engine
engine = support.engine

FAX_RULES = """
[rule_set]
name = "test-fax"
version = "2026.11.1"
author = "alice"
description = "fax"
effective_from = 2026-11-01T00:00:00+08:00
products = ["FAX"]

[[rule]]
id = "fax"
description = "fax per page"
mode = "per_use"
unit_price = "0.30"
[rule.when]
product_code = "FAX"
"""


def scenario(facts: Facts) -> dict[str, int]:
    """Records of the day (and around it); the charges (fen) the day must produce."""
    facts.order("sms-1", "SMS-NOTIFY", "SMS-PER-USE")
    facts.order("sms-trial", "SMS-NOTIFY", "SMS-TRIAL-5")
    facts.order("voice-1", "VOICE", "VOICE-60S")
    facts.order("fax-1", "FAX", "FAX")
    facts.usage("u-prev", "sms-1", "2026-11-09T23:59:59", 1, channel="api")
    facts.usage("u1", "sms-1", "2026-11-10T09:00:00", 3, channel="api")
    facts.usage("u2", "sms-1", "2026-11-10T10:00:00", 12, channel="web")
    facts.usage("u3", "sms-1", "2026-11-10T11:00:00", 1, channel="fax")
    facts.usage("t0", "sms-trial", "2026-11-09T12:00:00", 2, channel="api")
    facts.usage("t1", "sms-trial", "2026-11-10T08:00:00", 2, channel="api")
    facts.usage("t2", "sms-trial", "2026-11-10T09:00:00", 4, channel="api")
    facts.usage("t10", "sms-trial", "2026-11-10T09:00:00", 1, channel="api")
    facts.usage("v1", "voice-1", "2026-11-10T12:00:00", 1, "VOICE", "CALL", duration="61")
    facts.usage("v2", "voice-1", "2026-11-10T12:30:00", 1, "VOICE", "CALL", duration="long")
    facts.usage("f1", "fax-1", "2026-11-10T13:00:00", 2, "FAX", "PAGE")
    facts.usage("u-next", "sms-1", "2026-11-11T00:00:00", 1, channel="api")
    return {
        "u1": 15,  # 3 x 0.05
        "u2": 58,  # graduated: 10 x 0.05 + 2 x 0.04
        "t1": 0,  # 2 units before it (the day before): both of its 2 units are free
        "t10": 0,  # same time as t2, smaller op_id: before it; the 5th free unit
        "t2": 20,  # no free unit left: 4 x 0.05
        "v1": 22,  # 61 s = 2 started minutes x 0.10 + 0.02 connect fee
    }


def run(engine, rules=None, clock=None, owner="owner-a", chunk=3, **options):
    """Rate DAY's usage with the test rules."""
    return rate_usage_job(engine, rules or book(), DAY, TZ, chunk, owner, clock or Clock(),
                          **options)


def open_errors(engine) -> dict[str, str]:
    """key -> code of the open rating errors."""
    query = sa.select(error_record.c.key, error_record.c.code).where(
        error_record.c.method == ERROR_METHOD, error_record.c.recycled_at.is_(None))
    with engine.connect() as conn:
        return dict(conn.execute(query).all())


class TestRateUsageJob:
    def test_exact_charges_of_a_day(self, engine):
        """Every record of the day a rule prices is charged once, to the fen, trials counted."""
        expected = scenario(Facts(engine))
        summary = run(engine)
        assert charges(engine, "usage") == expected
        assert (summary.seen, summary.charges, summary.amount_fen, summary.errors) == (
            9, 6, 115, 3)

    def test_records_no_rule_prices_are_kept_as_errors(self, engine):
        """No matching rule, no rule set, an unusable record: NO_RULE, unrated, with why."""
        scenario(Facts(engine))
        run(engine)
        assert open_errors(engine) == dict.fromkeys(["u3", "v2", "f1"], "NO_RULE")
        with engine.connect() as conn:
            reasons = dict(conn.execute(sa.select(error_record.c.key, error_record.c.reason)).all())
            payload = conn.execute(sa.select(error_record.c.payload).where(
                error_record.c.key == "f1")).scalar_one()
        assert "no published rule set prices product 'FAX'" in reasons["f1"]
        assert "duration" in reasons["v2"]
        assert json.loads(payload)["quantity"] == 2

    def test_a_charge_explains_itself(self, engine):
        """The stored row names the rule, units, unit price; the payer is the order's."""
        facts = Facts(engine)
        facts.order("voice-1", "VOICE", "VOICE-60S", payer="boss")
        facts.usage("v1", "voice-1", "2026-11-10T12:00:00", 1, "VOICE", "CALL", duration="61")
        run(engine)
        (row,) = rows(engine, charge)
        stored = dict(zip(charge.c.keys(), row, strict=True))
        assert (stored["kind"], stored["source_key"], stored["payer_id"], stored["day"]) == (
            "usage", "v1", "boss", DAY)
        assert (stored["rule_id"], stored["units"], stored["amount_fen"]) == ("voice-60s", 2, 22)
        assert json.loads(stored["explanation"])["seconds"] == "61"

    def test_a_rerun_charges_nothing_and_keeps_one_error_per_record(self, engine):
        """A rerun tries the failed records again, writes no charge and no second error."""
        scenario(Facts(engine))
        clock = Clock()
        run(engine, clock=clock)
        before = rows(engine, charge)
        again = run(engine, clock=clock, owner="owner-b")
        assert (again.charges, again.errors) == (0, 3)
        assert rows(engine, charge) == before
        assert len(rows(engine, error_record)) == 3

    def test_fixed_rules_rate_what_was_left(self, engine):
        """After rules for FAX and the fax channel are published, a rerun rates those."""
        expected = scenario(Facts(engine))
        clock = Clock()
        run(engine, clock=clock)
        fixed = book(DAILY_RULES, USAGE_RULES.replace('["api", "web"]', '["api", "web", "fax"]'),
                     FAX_RULES)
        clock.advance(timedelta(hours=1))
        again = run(engine, fixed, clock=clock)
        assert (again.charges, again.amount_fen, again.errors) == (2, 65, 1)
        assert charges(engine, "usage") == {**expected, "u3": 5, "f1": 60}
        assert open_errors(engine) == {"v2": "NO_RULE"}
        with engine.connect() as conn:
            closed = conn.execute(sa.select(error_record.c.key).where(
                error_record.c.recycled_at.is_not(None))).scalars().all()
        assert sorted(closed) == ["f1", "u3"]

    def test_a_late_record_is_rated_by_the_next_run(self, engine):
        """A record of the day stored after the run is rated by the next run, alone."""
        facts = Facts(engine)
        expected = scenario(facts)
        run(engine)
        facts.usage("late", "sms-1", "2026-11-10T20:00:00", 2, channel="api")
        again = run(engine)
        assert (again.charges, again.amount_fen) == (1, 10)
        assert charges(engine, "usage") == {**expected, "late": 10}

    def test_a_late_trial_record_takes_its_place_without_rerating_others(self, engine):
        """A late record earlier than rated ones counts the units before it; nothing else moves."""
        facts = Facts(engine)
        expected = scenario(facts)
        run(engine)
        facts.usage("t-early", "sms-trial", "2026-11-10T07:00:00", 4, channel="api")
        again = run(engine)
        # 2 units before it: 3 of its 4 are free, 1 x 0.05.
        assert (again.charges, again.amount_fen) == (1, 5)
        assert charges(engine, "usage") == {**expected, "t-early": 5}

    def test_a_version_in_force_from_midday_prices_the_afternoon(self, engine):
        """Each record is priced by the version in force when it occurred."""
        facts = Facts(engine)
        facts.order("voice-1", "VOICE", "VOICE-60S")
        facts.usage("morning", "voice-1", "2026-11-10T11:59:59", 1, "VOICE", "CALL",
                    duration="60")
        facts.usage("afternoon", "voice-1", "2026-11-10T12:00:00", 1, "VOICE", "CALL",
                    duration="60")
        noon = (USAGE_RULES.replace('version = "2026.11.1"', 'version = "2026.11.2"')
                .replace("2026-11-01T00:00:00+08:00", "2026-11-10T12:00:00+08:00")
                .replace('unit_price = "0.10"', 'unit_price = "0.20"'))
        run(engine, book(DAILY_RULES, USAGE_RULES, noon))
        assert charges(engine, "usage") == {"morning": 12, "afternoon": 22}

    def test_trial_units_are_counted_across_chunks(self, engine):
        """Records of one order spread over chunks of one record each still count in order."""
        expected = scenario(Facts(engine))
        summary = run(engine, chunk=1)
        assert summary.chunks == 9
        assert charges(engine, "usage") == expected


class TestSharingAndCrashes:
    def test_two_owners_at_once_charge_each_record_once(self, engine):
        """Two threads share the day's records without a double charge."""
        facts = Facts(engine)
        facts.order("sms-1", "SMS-NOTIFY", "SMS-PER-USE")
        for i in range(40):
            facts.usage(f"op-{i:02}", "sms-1", f"2026-11-10T{i % 24:02}:00:00", 1, channel="api")
        clock, results, failures = Clock(), [], []

        def owner(name):
            try:
                results.append(run(engine, clock=clock, owner=name, chunk=3))
            except BaseException as exc:  # pragma: no cover - reported below
                failures.append(exc)

        threads = [threading.Thread(target=owner, args=(f"owner-{n}",)) for n in "ab"]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == []
        assert len(charges(engine, "usage")) == 40
        assert sum(r.charges for r in results) == 40
        assert sum(r.amount_fen for r in results) == 200

    def test_a_crash_mid_run_then_a_rerun_finishes_the_rest(self, engine):
        """Failing in the second chunk; the same owner's rerun rates the rest, once."""
        expected = scenario(Facts(engine))
        calls = []

        def failing(facts, tz, rule_set):
            calls.append(facts.op_id)
            if len(calls) == 4:
                raise RuntimeError("power cut")
            return rate_usage(facts, tz, rule_set)

        with pytest.raises(RuntimeError, match="power cut"):
            run(engine, rate=failing)
        assert [c[2] for c in claims(engine)] == ["done", "running"]
        again = run(engine)
        assert again.chunks == 3
        assert charges(engine, "usage") == expected

    def test_a_stale_claim_of_another_owner_is_taken_over(self, engine):
        """Another owner takes a crashed chunk once it is older than ``stale_after``."""
        expected = scenario(Facts(engine))

        def failing(facts, tz, rule_set):
            raise RuntimeError("crash")

        clock = Clock()
        with pytest.raises(RuntimeError):
            run(engine, clock=clock, rate=failing)
        clock.advance(timedelta(minutes=11))
        run(engine, clock=clock, owner="owner-b", stale_after=timedelta(minutes=10))
        assert charges(engine, "usage") == expected
        with engine.connect() as conn:
            owners = set(conn.execute(sa.select(job_claim.c.owner)).scalars())
        assert owners == {"owner-b"}
