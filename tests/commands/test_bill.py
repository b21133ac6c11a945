"""``billingcenter bill``, ``bill list`` and ``bill show``: through ``cli.main`` on SQLite."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa

from billingcenter.cli import main
from billingcenter.commands import bill as bill_command
from billingcenter.ledger.bills import insert_run
from billingcenter.ledger.engine import create_engine
from billingcenter.ledger.schema_billing import bill_run
from billingcenter.tap import prepare_schema
from tests.jobs.billing_support import add_charge, bills, check_invariants, month, select_all

NOW = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)  # 2026-12-01 11:00 in Shanghai
CONFIG = """\
[database]
data_dir = data

[billing]
chunk = 2
workers = 1
"""


def cli(capsys, *argv):
    """Run ``billingcenter ARGV --config billingcenter.ini``: (exit code, stdout, stderr)."""
    code = main([*argv, "--config", "billingcenter.ini"])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A config, three payers' November charges (one all free), a fixed clock."""
    (tmp_path / "billingcenter.ini").write_text(CONFIG, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(bill_command, "_now", lambda: NOW)
    (tmp_path / "data").mkdir()
    url = f"sqlite:///{tmp_path / 'data' / 'billingcenter.sqlite3'}"
    prepare_schema(url)
    engine = create_engine(url)
    month(engine, "acme", "o-1", date(2026, 11, 29), 2, 300)
    add_charge(engine, "acme", "o-2", date(2026, 11, 30), 45, "SMS-NOTIFY", "usage", key="op-9")
    month(engine, "beta", "o-3", date(2026, 11, 30), 1, 1234)
    month(engine, "free", "o-4", date(2026, 11, 30), 1, 0)
    yield engine
    engine.dispose()


class TestBillRun:
    def test_bills_a_date_and_says_what_it_did(self, home, capsys):
        """The run prints one summary line; a rerun bills nothing."""
        code, out, err = cli(capsys, "bill", "--date", "2026-12-01", "--owner", "me")
        assert (code, err) == (0, "")
        assert out.startswith("bill 2026-12-01: 2 of 2 chunks billed, 3 payers due, 3 bills "
                              "(2 owed, 1 empty), 5 charges, 18.79 yuan, 2 deductions queued")
        assert out.rstrip().endswith("(3 payers registered; run done)")
        code, out, _ = cli(capsys, "bill", "--date", "2026-12-01")
        assert (code, out) == (0, "bill 2026-12-01: billed before (the run of this date is "
                                  "done); nothing to do\n")
        check_invariants(home)

    def test_two_workers(self, home, capsys):
        """--workers 2 shares the chunks between two threads, each payer billed once."""
        code, out, _ = cli(capsys, "bill", "--date", "2026-12-01", "--workers", "2")
        assert code == 0 and "3 bills" in out
        assert "2 of 2 chunks billed" in out  # none finished twice
        # whether or not the second thread came after the first had finished the run
        assert "run done" in out and "still being summed" not in out
        assert {payer: row.total_fen for (payer, _), row in bills(home).items()} == {
            "acme": 645, "beta": 1234, "free": 0}

    @pytest.mark.parametrize(("argv", "message"), [
        (["bill"], "give --date"),
        (["bill", "--date", "2026-12-02"], "2026-12-02 has not started yet in Asia/Shanghai"),
        (["bill", "--date", "2026-12-01", "--chunk", "0"], "--chunk must be positive"),
        (["bill", "--date", "2026-12-01", "--workers", "0"], "--workers must be 1..32"),
        (["bill", "--date", "2026-12-01", "--workers", "33"], "--workers must be 1..32"),
        (["bill", "--date", "2026-12-01", "--sum-range", "0"], "--sum-range must be positive"),
        (["bill", "list", "--limit", "0"], "--limit must be positive"),
    ])
    def test_bad_usage(self, home, capsys, argv, message):
        """Bad arguments are refused with exit 2 and a clear message; nothing is billed."""
        code, out, err = cli(capsys, *argv)
        assert code == 2 and message in err and out == ""
        assert bills(home) == {}

    def test_another_dates_unfinished_run_is_exit_4(self, home, capsys):
        """While the run of another date is unfinished (it crashed), the date is refused
        with exit 4 naming it; nothing is billed or begun.  Bill that date, then this."""
        with home.begin() as conn:
            insert_run(conn, date(2026, 11, 15), 1, "crashed", NOW)
        code, out, err = cli(capsys, "bill", "--date", "2026-12-01")
        assert (code, out) == (4, "")
        assert err == ("error: the bill run of 2026-11-15 is not finished: bill 2026-11-15 "
                       "again to finish it before billing 2026-12-01\n")
        assert bills(home) == {}
        runs = select_all(home, sa.select(bill_run.c.bill_date, bill_run.c.status))
        assert runs == [(date(2026, 11, 15), "RUNNING")]
        assert cli(capsys, "bill", "--date", "2026-11-15")[0] == 0
        assert cli(capsys, "bill", "--date", "2026-12-01")[0] == 0
        assert len(bills(home)) == 3

    def test_a_bad_date(self, home, capsys):
        """A date that is not YYYY-MM-DD is refused by the parser (exit 2)."""
        with pytest.raises(SystemExit) as stopped:
            main(["bill", "--date", "1 Dec", "--config", "billingcenter.ini"])
        assert stopped.value.code == 2
        assert "'1 Dec' is not a day (YYYY-MM-DD)" in capsys.readouterr().err

    def test_an_unreachable_database(self, home, capsys):
        """A database that cannot be reached is exit 3."""
        code, _, err = cli(capsys, "bill", "--date", "2026-12-01", "--database-url",
                           "mysql+pymysql://nobody@127.0.0.1:1/none")
        assert code == 3 and err.startswith("error: database unavailable")


class TestBillListAndShow:
    def test_list_with_filters(self, home, capsys):
        """bill list prints the bills, filtered by payer, date and status."""
        cli(capsys, "bill", "--date", "2026-12-01")
        code, out, _ = cli(capsys, "bill", "list")
        rows = out.splitlines()
        assert code == 0 and rows[-1] == "3 bills" and len(rows) == 5
        assert rows[1].split() == ["1", "2026-12-01", "OWED", "6.45", "2", "3", "2026-11-29",
                                   "2026-11-30", "acme"]
        _, out, _ = cli(capsys, "bill", "list", "--status", "EMPTY")
        assert out.splitlines()[1].split()[-1] == "free" and "1 bills" in out
        _, out, _ = cli(capsys, "bill", "list", "--payer", "beta", "--date", "2026-12-01")
        assert out.splitlines()[1].split()[3] == "12.34"
        _, out, _ = cli(capsys, "bill", "list", "--date", "2026-11-01")
        assert out.splitlines()[-1] == "0 bills"

    def test_show_explains_each_line_by_its_charges(self, home, capsys):
        """bill show prints the lines; --charges lists the charges behind each."""
        cli(capsys, "bill", "--date", "2026-12-01")
        code, out, _ = cli(capsys, "bill", "show", "1")
        assert code == 0
        assert out.splitlines()[:3] == [
            "bill 1: payer acme, date 2026-12-01, OWED",
            "  total 6.45 yuan (645 fen), 2 lines, 3 charges of days 2026-11-29 .. 2026-11-30",
            out.splitlines()[2],
        ]
        assert "deduction DED-acme-20261201" in out.splitlines()[2]
        assert [line.split() for line in out.splitlines()[4:]] == [
            ["o-1", "CRM-BASIC", "2", "2026-11-29", "2026-11-30", "6.00"],
            ["o-2", "SMS-NOTIFY", "1", "2026-11-30", "2026-11-30", "0.45"],
        ]
        _, out, _ = cli(capsys, "bill", "show", "1", "--charges")
        shown = out.splitlines()[4:]
        assert len(shown) == 5
        assert shown[1].split()[:4] == ["2026-11-29", "3.00", "daily", "o-1/2026-11-29:"]
        assert "by test-daily 2026.11.1 rule crm-basic-rule" in shown[1]
        assert shown[4].split()[:4] == ["2026-11-30", "0.45", "usage", "op-9:"]

    def test_show_an_unknown_bill(self, home, capsys):
        """An unknown bill id is exit 1 with a message."""
        code, out, err = cli(capsys, "bill", "show", "42")
        assert (code, out) == (1, "")
        assert err == "error: no bill 42 (billingcenter bill list)\n"
