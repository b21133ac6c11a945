"""``billingcenter payer set|show|list|check``: through ``cli.main`` on SQLite."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from billingcenter.cli import main
from billingcenter.commands import payer as payer_command
from billingcenter.config import load_config
from billingcenter.ledger.bills import insert_run
from billingcenter.ledger.control import ServicePolicy
from billingcenter.ledger.engine import create_engine
from billingcenter.ledger.payments import AccountStore
from billingcenter.tap import database_url, prepare_schema
from tests.ledger.accounts_support import NOW, add_bill, add_orders, deduction_id, notice

CONFIG = """\
[database]
data_dir = data

[arrears]
grace = 3600
"""


def cli(capsys, *argv):
    code = main([*argv, "--config", "billingcenter.ini"])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def engine(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "billingcenter.ini").write_text(CONFIG)
    monkeypatch.setattr(payer_command, "_now", lambda: NOW)
    url = database_url(load_config(tmp_path / "billingcenter.ini"))
    prepare_schema(url)
    engine = create_engine(url)
    add_orders(engine)
    yield engine
    engine.dispose()


def test_set_show_list(engine, capsys):
    """set creates and changes the account; show and list print it."""
    code, out, _ = cli(capsys, "payer", "set", "p1", "--prepaid", "--floor", "-100",
                       "--threshold", "50", "--billing-day", "5")
    assert code == 0
    assert out.split() == ["p1", "PREPAID", "STOPPED", "balance", "0", "fen", "floor", "-100",
                           "threshold", "50", "billing", "day", "5"]
    AccountStore(engine).pay_callback(notice("t1", "", 300, payer="p1"), NOW)
    code, out, _ = cli(capsys, "payer", "show", "p1")
    assert code == 0
    assert "PREPAID  OPEN  balance 300 fen" in out
    assert "topup:t1  TOPUP  300  300" in out
    assert "o1  CRM-BASIC  REOPEN  SETTLED" in out
    code, out, _ = cli(capsys, "payer", "list", "--state", "OPEN")
    assert (code, out.split()[0]) == (0, "p1")
    code, out, _ = cli(capsys, "payer", "list", "--state", "STOPPED")
    assert (code, out) == (0, "")


def test_bad_settings_and_unknown_payer(engine, capsys):
    """A threshold below the floor is refused (2); an unknown payer shows nothing (1)."""
    code, _, err = cli(capsys, "payer", "set", "p1", "--floor", "10", "--threshold", "5")
    assert code == 2 and "threshold" in err
    code, _, err = cli(capsys, "payer", "show", "nobody")
    assert code == 1 and "nobody" in err


def test_a_change_of_kind_waits_for_an_unfinished_bill_run(engine, capsys):
    """``payer set --prepaid`` while a bill run is unfinished: exit 4, a message naming
    the run, the payer unchanged; a change of anything else goes through."""
    cli(capsys, "payer", "set", "p1")
    with engine.begin() as conn:
        insert_run(conn, date(2026, 12, 1), 1, "crashed", NOW)
    code, out, err = cli(capsys, "payer", "set", "p1", "--prepaid")
    assert (code, out) == (4, "")
    assert err.startswith("error: the bill run of 2026-12-01 is not finished")
    assert AccountStore(engine).payer("p1").kind == "POSTPAID"
    assert cli(capsys, "payer", "set", "p1", "--billing-day", "5")[0] == 0


def test_check_stops_after_the_grace(engine, capsys):
    """payer check applies [arrears] grace from the config file."""
    add_bill(engine, "p1", date(2026, 11, 1), 700)
    AccountStore(engine, ServicePolicy(grace=timedelta(hours=1))).pay_callback(
        notice("f1", deduction_id("p1", date(2026, 11, 1)), 700, "FAILED"), NOW)
    code, out, _ = cli(capsys, "payer", "check")
    assert (code, out.split()[:5]) == (0, ["0", "payers", "reviewed:", "0", "stopped,"])
    code, out, _ = cli(capsys, "payer", "check", "--at", "2026-12-01T03:00:00Z")
    assert "1 stopped" in out and "2 notices queued" in out
    code, out, _ = cli(capsys, "payer", "list", "--arrears")
    assert "p1  POSTPAID  STOPPED" in out
