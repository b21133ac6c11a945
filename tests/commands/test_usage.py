"""``billingcenter usage load``: through ``cli.main`` on SQLite (and once on MariaDB)."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from billingcenter.cli import main
from billingcenter.commands import usage as usage_command
from billingcenter.ledger.engine import create_engine
from billingcenter.ledger.schema import error_record
from billingcenter.ledger.schema_rating import charge

CONF = Path(__file__).resolve().parents[2] / "conf"
SAMPLE = CONF / "examples" / "usage-sample.csv"
SETTLEMENT = CONF / "rules" / "settlement-inter-network.toml"
NOW = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
CONFIG = """\
[database]
data_dir = data

[roles]
authors = alice
reviewers = bob
publishers = carol
"""
BAD_ROWS = (
    "record_key,occurred_at,call_type,peer_operator,service_type,duration,quantity\n"
    "k1,2026-11-01T08:00:00+08:00,MOC,CT,VOICE,61,\n"
    "k2,2026-11-01T08:00:00+08:00,SMS-MO,CT,SMS,,-1\n"
    "k3,later,MOC,CT,VOICE,61,\n"
    "k4,2026-11-01T08:00:00+08:00,MMS-MO,CMCC,MMS,,1\n"
)


def cli(capsys, *argv):
    """Run ``billingcenter ARGV --config billingcenter.ini``: (exit code, stdout, stderr)."""
    code = main([*argv, "--config", "billingcenter.ini"])
    out, err = capsys.readouterr()
    return code, out, err


def publish_settlement(capsys) -> None:
    """Import, review and publish the shipped settlement rule set."""
    for argv in (("import", str(SETTLEMENT), "--as", "alice"),
                 ("review", "settlement-inter-network", "2026.11.1", "--as", "bob"),
                 ("publish", "settlement-inter-network", "2026.11.1", "--as", "carol")):
        assert cli(capsys, "rules", *argv)[0] == 0


@pytest.fixture
def home(tmp_path, monkeypatch, capsys):
    """A directory with a config, the settlement rule set published, a fixed clock."""
    (tmp_path / "billingcenter.ini").write_text(CONFIG, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(usage_command, "_now", lambda: NOW)
    publish_settlement(capsys)
    return tmp_path


def load(capsys, *argv):
    """``usage load`` with the settlement rule set; the timing line is dropped."""
    code, out, err = cli(capsys, "usage", "load", *argv, "--rule-set",
                         "settlement-inter-network")
    lines = [line for line in out.splitlines() if not line.endswith("records/s")]
    return code, lines, err


class TestLoad:
    def test_the_sample_loads(self, home, capsys):
        """The shipped sample: 14 rows accepted, 315 fen, exit 0."""
        code, out, err = load(capsys, str(SAMPLE))
        assert (code, err) == (0, "")
        assert out == [
            f"{SAMPLE}: 14 read, 14 accepted, 0 duplicates, 0 rejected",
            "amount 315 fen (3.15 yuan); rule set settlement-inter-network; load 1",
        ]

    def test_loading_again_finds_duplicates(self, home, capsys):
        """The same file again: all duplicates, the earlier load named, exit 0."""
        load(capsys, str(SAMPLE))
        code, out, _ = load(capsys, str(SAMPLE))
        assert code == 0
        assert out == [
            f"{SAMPLE}: 14 read, 0 accepted, 14 duplicates, 0 rejected",
            "amount 0 fen (0.00 yuan); rule set settlement-inter-network; load 2",
            "note: the same bytes were loaded before (load 1)",
        ]

    def test_rejected_rows_exit_1(self, home, capsys):
        """Rejected rows are counted by code, kept in the error store, and exit 1."""
        (home / "bad.csv").write_text(BAD_ROWS, encoding="utf-8")
        code, out, err = load(capsys, "bad.csv")
        assert (code, err) == (1, "")
        assert out == [
            "bad.csv: 4 read, 1 accepted, 0 duplicates, 3 rejected "
            "(BAD_TIME 1, NEGATIVE_QUANTITY 1, NO_RULE 1)",
            "amount 12 fen (0.12 yuan); rule set settlement-inter-network; load 1",
            "rejected rows: billingcenter errors list --method usage.load",
        ]
        engine = create_engine(f"sqlite:///{home / 'data' / 'billingcenter.sqlite3'}")
        with engine.connect() as conn:
            keys = conn.execute(sa.select(error_record.c.key).order_by("id")).scalars().all()
            charged = conn.execute(sa.select(charge.c.source_key)).scalars().all()
        engine.dispose()
        assert (keys, charged) == (["k2", "k3", "k4"], ["k1"])

    def test_the_clock_can_be_set(self, home, capsys):
        """--at moves the far-future limit: a row ahead of it is rejected."""
        (home / "f.csv").write_text("record_key,occurred_at,call_type,peer_operator,duration\n"
                                    "k1,2026-11-01T08:00:00+08:00,MOC,CT,61\n", encoding="utf-8")
        code, out, _ = load(capsys, "f.csv", "--at", "2026-10-30T00:00:00+08:00")
        assert (code, out[0]) == (1, "f.csv: 1 read, 0 accepted, 0 duplicates, 1 rejected "
                                     "(FAR_FUTURE 1)")


class TestRefused:
    def test_a_file_without_a_usable_header(self, home, capsys):
        """No required columns: exit 2, said why, nothing stored."""
        (home / "bad.csv").write_text("key,time\nk1,x\n", encoding="utf-8")
        code, out, err = load(capsys, "bad.csv")
        assert (code, out) == (2, [])
        assert err == ("error: bad.csv: the header lacks the required column(s) record_key, "
                       "occurred_at (found: key, time)\n")

    def test_no_such_file(self, home, capsys):
        """A missing file: exit 2."""
        assert load(capsys, "missing.csv")[::2] == (2, "error: missing.csv is not a readable "
                                                       "file\n")

    def test_an_unpublished_rule_set(self, home, capsys):
        """A rule set with no published version: exit 2 before reading the file."""
        code, _, err = cli(capsys, "usage", "load", str(SAMPLE), "--rule-set", "nope")
        assert (code, err) == (2, "error: rule set 'nope' has no published version "
                                  "(billingcenter rules list)\n")

    def test_a_time_without_offset(self, home, capsys):
        """--at needs an offset: argparse refuses with exit 2."""
        with pytest.raises(SystemExit) as caught:
            load(capsys, str(SAMPLE), "--at", "2026-11-01T00:00:00")
        assert caught.value.code == 2

    def test_an_unreachable_database(self, home, capsys):
        """A database that cannot be reached: exit 3."""
        code, _, err = cli(capsys, "usage", "load", str(SAMPLE), "--rule-set", "x",
                           "--database-url", "mysql+pymysql://nobody@127.0.0.1:1/none")
        assert code == 3 and err.startswith("error: database unavailable: OperationalError")


@pytest.mark.mariadb
def test_on_mariadb(tmp_path, monkeypatch, capsys):
    """The sample loads into MariaDB (the file loader's own test database), twice."""
    from billingcenter.ledger import migrate
    from tests.jobs.test_files import FILES_MYSQL_URL
    from tests.support import reset_mysql_database

    reset_mysql_database(FILES_MYSQL_URL)
    migrate.upgrade(FILES_MYSQL_URL)
    shutil.copyfile(SAMPLE, tmp_path / "sample.csv")
    (tmp_path / "billingcenter.ini").write_text(
        CONFIG.replace("data_dir = data", f"url = {FILES_MYSQL_URL}"), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(usage_command, "_now", lambda: NOW)
    publish_settlement(capsys)
    assert load(capsys, "sample.csv")[:2] == (0, [
        "sample.csv: 14 read, 14 accepted, 0 duplicates, 0 rejected",
        "amount 315 fen (3.15 yuan); rule set settlement-inter-network; load 1"])
    assert load(capsys, "sample.csv")[1][0] == (
        "sample.csv: 14 read, 0 accepted, 14 duplicates, 0 rejected")
