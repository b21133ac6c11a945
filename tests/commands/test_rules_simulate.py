"""``billingcenter rules simulate``: stored days re-rated with a version, nothing written."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from billingcenter.cli import main
from billingcenter.commands import rate as rate_command
from billingcenter.commands import rules as rules_command
from billingcenter.config import load_config
from billingcenter.jobs.daily import rate_day_job
from billingcenter.jobs.simulate import simulate as simulate_days
from billingcenter.jobs.simulate import stored_totals
from billingcenter.jobs.usage import rate_usage_job
from billingcenter.ledger import migrate
from billingcenter.ledger.engine import create_engine
from billingcenter.ledger.rules import RuleStore
from billingcenter.ledger.schema_rating import charge, job_claim
from billingcenter.ledger.tables import metadata
from billingcenter.model import StateKind
from billingcenter.tap import prepare_schema
from tests.jobs.rating_support import (
    DAILY_RULES,
    TZ,
    USAGE_RULES,
    Clock,
    Facts,
    book,
    rows,
)
from tests.support import mysql_test_url, reset_mysql_database

NOW = datetime(2026, 11, 12, 3, 0, tzinfo=UTC)  # 2026-11-12 11:00 in Shanghai
CONFIG = """\
[database]
data_dir = data

[rating]
chunk = 2

[roles]
authors = alice
reviewers = bob
publishers = carol
"""
DAILY_DRAFT = DAILY_RULES.replace('version = "2026.11.1"', 'version = "2026.12.1"').replace(
    'unit_price = "3.00"\n[rule.when]\nproduct_code = "CRM-BASIC"\nplan_code = "CRM-DAILY"',
    'unit_price = "3.50"\n[rule.when]\nproduct_code = "CRM-BASIC"\nplan_code = "CRM-DAILY"')
USAGE_DRAFT = USAGE_RULES.replace('version = "2026.11.1"', 'version = "2026.12.1"').replace(
    '{ upto = "10", price = "0.05" }', '{ upto = "10", price = "0.06" }')


def cli(capsys, *argv):
    """Run ``billingcenter ARGV --config billingcenter.ini``: (exit code, stdout, stderr)."""
    code = main([*argv, "--config", "billingcenter.ini"])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def home(tmp_path, monkeypatch, capsys):
    """Two days of orders and usage, rated by the published sets; drafts of both imported."""
    (tmp_path / "billingcenter.ini").write_text(CONFIG, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(rate_command, "_now", lambda: NOW)
    monkeypatch.setattr(rules_command, "_now", lambda: NOW)
    (tmp_path / "data").mkdir()
    url = f"sqlite:///{tmp_path / 'data' / 'billingcenter.sqlite3'}"
    prepare_schema(url)
    engine = create_engine(url)
    store = RuleStore(engine, load_config(tmp_path / "billingcenter.ini").roles)
    for text in (DAILY_RULES, USAGE_RULES):
        version = store.import_version(text, "alice", NOW).version
        store.review(version.rule_set, version.version, "bob", NOW)
        store.publish(version.rule_set, version.version, "carol", NOW)
    store.import_versions([DAILY_DRAFT, USAGE_DRAFT], "alice", NOW)
    facts = Facts(engine)
    facts.order("crm-1")
    facts.order("crm-2")
    facts.order("crm-3", "CRM-BASIC", "CRM-DAILY", payer="p-crm-1")
    facts.event("crm-2", StateKind.CANCELLED, "2026-11-10T12:00:00")
    facts.order("sms-1", "SMS-NOTIFY", "SMS-PER-USE")
    facts.usage("u1", "sms-1", "2026-11-10T09:00:00", 3, channel="api")
    facts.usage("u2", "sms-1", "2026-11-11T09:00:00", 12, channel="web")
    facts.usage("u3", "sms-1", "2026-11-11T10:00:00", 1, channel="fax")
    assert cli(capsys, "rate", "--day", "2026-11-10", "--to", "2026-11-11")[0] == 0
    yield engine
    engine.dispose()


def simulate(capsys, *argv):
    """Run ``rules simulate ARGV``: (exit code, stdout lines, stderr)."""
    code, out, err = cli(capsys, "rules", "simulate", *argv)
    return code, out.splitlines(), err


class TestSimulate:
    def test_a_daily_draft(self, home, capsys):
        """Each (payer, product): stored vs simulated in fen and yuan, and a total."""
        before = rows(home, charge), rows(home, job_claim)
        code, out, err = simulate(capsys, "test-daily", "2026.12.1",
                                  "--from", "2026-11-10", "--to", "2026-11-11")
        assert (code, err) == (0, "")
        assert out == [
            "test-daily 2026.12.1 (draft) applied to every business day from 2026-11-10 to "
            "2026-11-11 (Asia/Shanghai); stored charges of rule set test-daily or its "
            "products, daily and per-use",
            "PAYER    PRODUCT    STORED FEN  SIMULATED FEN  DIFF FEN  STORED YUAN  "
            "SIMULATED YUAN  DIFF YUAN",
            "p-crm-1  CRM-BASIC        1200           1400      +200        12.00"
            "           14.00      +2.00",
            "p-crm-2  CRM-BASIC         300            350       +50         3.00"
            "            3.50      +0.50",
            "TOTAL                     1500           1750      +250        15.00"
            "           17.50      +2.50",
        ]
        assert (rows(home, charge), rows(home, job_claim)) == before

    def test_the_published_version_itself(self, home, capsys):
        """Simulating what is published reproduces the stored charges exactly."""
        code, out, _ = simulate(capsys, "test-daily", "2026.11.1",
                                "--from", "2026-11-10", "--to", "2026-11-11")
        assert code == 0
        assert [line.split()[-4] for line in out[2:]] == ["+0", "+0", "+0"]
        code, out, _ = simulate(capsys, "test-usage", "2026.11.1",
                                "--from", "2026-11-10", "--to", "2026-11-11")
        assert code == 0
        assert [line.split()[-4] for line in out[2:-1]] == ["+0", "+0"]

    def test_a_usage_draft(self, home, capsys):
        """Per-use records are re-rated (tiers over the days); unpriced ones are counted."""
        code, out, _ = simulate(capsys, "test-usage", "2026.12.1",
                                "--from", "2026-11-10", "--to", "2026-11-11")
        assert code == 0
        # Stored: u1 3 x 0.05 + u2 (10 x 0.05 + 2 x 0.04) = 0.73; the draft's first tier 0.06.
        assert out[2].split() == ["p-sms-1", "SMS-NOTIFY", "73", "86", "+13", "0.73", "0.86",
                                  "+0.13"]
        assert out[-1] == ("1 per-use records no rule of test-usage 2026.12.1 prices "
                           "(not in the simulated totals)")

    def test_one_day(self, home, capsys):
        """Only the days asked for are compared."""
        code, out, _ = simulate(capsys, "test-daily", "2026.12.1",
                                "--from", "2026-11-11", "--to", "2026-11-11")
        assert code == 0
        assert [line.split()[:4] for line in out[2:]] == [
            ["p-crm-1", "CRM-BASIC", "600", "700"], ["TOTAL", "600", "700", "+100"]]

    @pytest.mark.parametrize("argv, message", [
        (("--from", "2026-11-11", "--to", "2026-11-10"), "--to 2026-11-10 is before --from"),
        (("--from", "2025-01-01", "--to", "2026-11-10"), "spans more than 366 days"),
    ])
    def test_bad_days(self, home, capsys, argv, message):
        """A backwards or too long range is a usage error."""
        code, out, err = simulate(capsys, "test-daily", "2026.12.1", *argv)
        assert (code, out) == (2, [])
        assert message in err

    def test_unknown_version(self, home, capsys):
        """A version never imported is refused with exit 2."""
        code, _, err = simulate(capsys, "test-daily", "9", "--from", "2026-11-10",
                                "--to", "2026-11-10")
        assert code == 2
        assert err == ("error: UNKNOWN_RULE_VERSION: no version '9' of rule set 'test-daily' "
                       "was imported\n")


SIM_MYSQL_URL = mysql_test_url("rules_sim", "BILLINGCENTER_TEST_RULES_SIM_MYSQL_URL")


@pytest.fixture(scope="module")
def sim_mysql_engine():
    """The migrated MariaDB database of the simulation tests (its own)."""
    reset_mysql_database(SIM_MYSQL_URL)
    migrate.upgrade(SIM_MYSQL_URL)
    engine = create_engine(SIM_MYSQL_URL, pool_size=4)
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb)])
def ledger_engine(request, tmp_path):
    """An empty migrated ledger on SQLite or MariaDB, ids from 1."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
        migrate.upgrade(url)
        engine = create_engine(url)
        yield engine
        engine.dispose()
        return
    engine = request.getfixturevalue("sim_mysql_engine")
    with engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete())
        for table in metadata.sorted_tables:
            conn.exec_driver_sql(f"ALTER TABLE `{table.name}` AUTO_INCREMENT = 1")
    yield engine


class TestSimulateFunction:
    def test_published_versions_reproduce_the_jobs(self, ledger_engine):
        """Trials, account counts, pauses and tiers: the jobs' charges, pair by pair."""
        engine = ledger_engine
        facts = Facts(engine)
        facts.order("crm-1", "CRM-BASIC", "CRM-TRIAL-7D", activated="2026-11-05T09:00:00")
        facts.order("crm-2")
        facts.event("crm-2", StateKind.PAUSED, "2026-11-10T23:59:00")
        facts.event("crm-2", StateKind.RESUMED, "2026-11-12T00:01:00")
        facts.order("pc2-1", "PC2", "PC2-DAILY-ACCOUNTS", accounts=3)
        facts.accounts("p-pc2-1", "PC2", 5, "2026-11-10T08:00:00")
        facts.accounts("p-pc2-1", "PC2", 2, "2026-11-11T08:00:00")
        facts.order("sms-1", "SMS-NOTIFY", "SMS-TRIAL-5")
        facts.usage("t0", "sms-1", "2026-11-09T09:00:00", 2, channel="api")
        facts.usage("t1", "sms-1", "2026-11-10T09:00:00", 2, channel="api")
        facts.usage("t2", "sms-1", "2026-11-11T09:00:00", 4, channel="api")
        facts.usage("t3", "sms-1", "2026-11-12T09:00:00", 3, channel="api")
        clock = Clock()
        days = [date(2026, 11, d) for d in (9, 10, 11, 12, 13, 14, 15)]
        published = book()
        for day in days:
            rate_day_job(engine, published, day, TZ, 2, "me", clock)
            rate_usage_job(engine, published, day, TZ, 2, "me", clock)
        before = rows(engine, charge)
        for rule_set in published.versions:
            found = simulate_days(engine, rule_set, days, TZ, 2)
            stored = stored_totals(engine, rule_set, days[0], days[-1])
            assert found.fen == stored
            assert found.unpriced == 0
        assert stored_totals(engine, published.versions[0], days[0], days[-1]) == {
            ("p-crm-1", "CRM-BASIC"): 1200,  # trial to 11-11, charged 11-12 .. 11-15
            ("p-crm-2", "CRM-BASIC"): 1800,  # 9, 10, 12 .. 15: paused all of the 11th
            ("p-pc2-1", "PC2"): 735,  # max accounts 3, 5, 5, then 2 x 4 days = 21 x 0.35
        }
        assert stored_totals(engine, published.versions[1], days[0], days[-1]) == {
            ("p-sms-1", "SMS-NOTIFY"): 30,  # 2 + 2 + 1 free, then 3 + 3 units x 0.05
        }
        assert rows(engine, charge) == before
