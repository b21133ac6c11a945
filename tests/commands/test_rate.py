"""``billingcenter rate``: through ``cli.main`` on SQLite."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from billingcenter.cli import main
from billingcenter.commands import rate as rate_command
from billingcenter.config import load_config
from billingcenter.ledger.engine import create_engine
from billingcenter.ledger.rules import RuleStore
from billingcenter.ledger.schema_rating import job_claim
from billingcenter.model import StateKind
from billingcenter.tap import prepare_schema
from tests.jobs.rating_support import DAILY_RULES, USAGE_RULES, Facts, charges

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


def cli(capsys, *argv):
    """Run ``billingcenter ARGV --config billingcenter.ini``: (exit code, stdout, stderr)."""
    code = main([*argv, "--config", "billingcenter.ini"])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A config, the test rules published, a day of orders and usage, a fixed clock."""
    (tmp_path / "billingcenter.ini").write_text(CONFIG, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(rate_command, "_now", lambda: NOW)
    (tmp_path / "data").mkdir()
    url = f"sqlite:///{tmp_path / 'data' / 'billingcenter.sqlite3'}"
    prepare_schema(url)
    engine = create_engine(url)
    store = RuleStore(engine, load_config(tmp_path / "billingcenter.ini").roles)
    for text in (DAILY_RULES, USAGE_RULES):
        version = store.import_version(text, "alice", NOW).version
        store.review(version.rule_set, version.version, "bob", NOW)
        store.publish(version.rule_set, version.version, "carol", NOW)
    facts = Facts(engine)
    facts.order("crm-1")
    facts.order("crm-2")
    facts.event("crm-2", StateKind.CANCELLED, "2026-11-10T12:00:00")
    facts.order("sms-1", "SMS-NOTIFY", "SMS-PER-USE")
    facts.usage("u1", "sms-1", "2026-11-10T09:00:00", 3, channel="api")
    facts.usage("u2", "sms-1", "2026-11-11T09:00:00", 1, channel="fax")
    yield engine
    engine.dispose()


class TestRate:
    def test_rates_a_day(self, home, capsys):
        """Both jobs run for the day and say what they did."""
        code, out, err = cli(capsys, "rate", "--day", "2026-11-10", "--owner", "me")
        assert (code, err) == (0, "")
        assert out.splitlines() == [
            "2026-11-10 daily: 1 of 1 chunks rated, 2 orders, 2 charges, 6.00 yuan, 0.00 s",
            "2026-11-10 usage: 1 of 1 chunks rated, 1 records, 1 charges, 0.15 yuan, 0.00 s",
        ]
        assert charges(home) == {"crm-1/2026-11-10": 300, "crm-2/2026-11-10": 300, "u1": 15}

    def test_a_range_one_job_and_a_rerun(self, home, capsys):
        """--to covers several days; --only runs one job; a rerun rates nothing."""
        code, out, _ = cli(capsys, "rate", "--day", "2026-11-10", "--to", "2026-11-11",
                           "--only", "daily")
        assert code == 0
        assert [line.split(":")[0] for line in out.splitlines()] == [
            "2026-11-10 daily", "2026-11-11 daily"]
        assert len(charges(home)) == 3  # crm-2 was cancelled on the 10th
        code, out, _ = cli(capsys, "rate", "--day", "2026-11-10", "--only", "daily")
        assert (code, out.strip()) == (0, "2026-11-10 daily: 0 of 1 chunks rated, 0 orders, "
                                          "0 charges, 0.00 yuan, 0.00 s (1 chunks done "
                                          "before or held by another owner)")

    def test_a_late_pause_is_counted_by_the_rerun_and_listed(self, home, capsys, monkeypatch):
        """A PAUSED dated before a rated day: the rerun keeps the charge and counts it;
        --differences lists it (reading only) with the totals."""
        cli(capsys, "rate", "--day", "2026-11-10", "--only", "daily")
        Facts(home).event("crm-1", StateKind.PAUSED, "2026-11-09T20:00:00",
                          recorded=NOW + timedelta(hours=1))
        monkeypatch.setattr(rate_command, "_now", lambda: NOW + timedelta(days=1))
        code, out, _ = cli(capsys, "rate", "--day", "2026-11-10", "--only", "daily")
        assert code == 0
        assert ("1 stored charges differ from the current history: 3.00 yuan too much, "
                "0.00 yuan too little") in out
        assert charges(home)["crm-1/2026-11-10"] == 300
        code, out, _ = cli(capsys, "rate", "--day", "2026-11-10", "--differences")
        assert (code, out.splitlines()) == (0, [
            "crm-1/2026-11-10 payer p-crm-1: charged 300 fen, the current history nothing "
            "(not billed)",
            "1 differences: 3.00 yuan charged too much, 0.00 yuan too little",
        ])
        with home.connect() as conn:
            assert len(conn.execute(job_claim.select()).all()) == 1

    def test_records_without_a_rule_are_listed(self, home, capsys):
        """A record no rule prices is reported; the exit code is still 0."""
        code, out, _ = cli(capsys, "rate", "--day", "2026-11-11", "--only", "usage")
        assert code == 0
        assert "1 records without a rule" in out
        assert "billingcenter errors list --method rate.usage" in out

    @pytest.mark.parametrize("argv, message", [
        (("--day", "2026-11-12"), "2026-11-12 has not closed yet in Asia/Shanghai"),
        (("--day", "2026-11-10", "--to", "2026-11-09"), "--to 2026-11-09 is before --day"),
        (("--day", "2025-01-01", "--to", "2026-11-10"), "at most 366 at once"),
        (("--day", "2026-11-10", "--chunk", "0"), "--chunk must be positive"),
    ])
    def test_bad_days(self, home, capsys, argv, message):
        """A day not closed yet, a backwards or too long range: exit 2, nothing rated."""
        code, out, err = cli(capsys, "rate", *argv)
        assert (code, out) == (2, "")
        assert message in err
        with home.connect() as conn:
            assert conn.execute(job_claim.select()).all() == []

    def test_a_day_that_is_not_a_day(self, home, capsys):
        """A malformed day is a usage error (exit 2) naming the value."""
        with pytest.raises(SystemExit) as exit_:
            main(["rate", "--day", "2026-13-01"])
        assert exit_.value.code == 2
        assert "'2026-13-01' is not a day (YYYY-MM-DD)" in capsys.readouterr().err
