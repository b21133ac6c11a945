"""``billingcenter check``: through ``cli.main`` on SQLite and MariaDB; exit codes."""

from __future__ import annotations

import json

import pytest

from billingcenter.cli import main
from billingcenter.ledger.invariants import KINDS
from billingcenter.ledger.schema_billing import balance_entry, bill
from tests.ledger import billing_rows
from tests.ledger.billing_rows import Rows, clean_ledger

engine = billing_rows.engine
report_mysql_engine = billing_rows.report_mysql_engine
report_sqlite_template = billing_rows.report_sqlite_template


@pytest.fixture
def home(engine, tmp_path, monkeypatch):
    """A config file, the clean ledger, and the database URL the command is given."""
    (tmp_path / "billingcenter.ini").write_text("[database]\ndata_dir = data\n",
                                                encoding="utf-8")
    (tmp_path / "data").mkdir()
    monkeypatch.chdir(tmp_path)
    clean_ledger(Rows(engine))
    return engine.url.render_as_string(hide_password=False)


def check(capsys, url, *argv):
    """Run ``billingcenter check ARGV``: (exit code, stdout, stderr)."""
    code = main(["check", *argv, "--config", "billingcenter.ini", "--database-url", url])
    out, err = capsys.readouterr()
    return code, out, err


class TestCheck:
    def test_a_clean_ledger(self, home, capsys):
        """Exit 0 and one line saying so."""
        assert check(capsys, home) == (0, f"{len(KINDS)} checks: clean\n", "")

    def test_a_clean_ledger_as_json(self, home, capsys):
        """JSON: clean, every kind checked, no breaches."""
        code, out, _ = check(capsys, home, "--format", "json")
        assert (code, json.loads(out)) == (0, {"clean": True, "checked": list(KINDS),
                                               "breaches": []})

    def test_breaches_are_printed_with_exit_1(self, engine, home, capsys):
        """Each breach: ids, expected and found, under its kind; a summary line."""
        rows = Rows(engine)
        rows.set(balance_entry, 3, balance_after_fen=499)
        rows.set(bill, 1, charges=4)
        code, out, err = check(capsys, home)
        assert (code, err) == (1, "")
        assert out == (
            "bill_lines: 1 breaches (a bill's total, counts and days equal those of its lines)\n"
            "  bill 1: expected total 615 fen, 2 lines, 3 charges, days 2026-10-30 to "
            "2026-10-31; found total 615 fen, 2 lines, 4 charges, days 2026-10-30 to "
            "2026-10-31\n"
            "balance_chain: 2 breaches (an entry's balance after is the one before plus its "
            "amount)\n"
            "  entry 3, payer p-3: expected 500 fen; found 499 fen\n"
            "  entry 4, payer p-3: expected 479 fen; found 480 fen\n"
            f"{len(KINDS)} checks: 3 breaches of 2 kinds\n")

    def test_limit_and_json(self, engine, home, capsys):
        """--limit shows N per kind and keeps the count; JSON names the ids."""
        Rows(engine).set(balance_entry, 3, balance_after_fen=499)
        code, out, _ = check(capsys, home, "--limit", "1", "--format", "json")
        assert (code, json.loads(out)["breaches"]) == (1, [{
            "kind": "balance_chain",
            "description": "an entry's balance after is the one before plus its amount",
            "count": 2,
            "shown": [{"ids": {"entry": 3, "payer": "p-3"}, "expected": "500 fen",
                       "found": "499 fen"}],
        }])
        code, out, _ = check(capsys, home, "--limit", "1")
        assert out.splitlines()[0] == ("balance_chain: 2 breaches, 1 shown (an entry's "
                                       "balance after is the one before plus its amount)")

    def test_only_some_kinds(self, engine, home, capsys):
        """--kind runs only the kinds named: a breach of another kind is not looked for."""
        Rows(engine).set(balance_entry, 3, balance_after_fen=499)
        assert check(capsys, home, "--kind", "bill_lines", "--kind", "balance_sum") == (
            0, "2 checks: clean\n", "")

    @pytest.mark.parametrize("argv, message", [
        (("--kind", "nonsense"), f"error: unknown kind 'nonsense'; known: {', '.join(KINDS)}\n"),
        (("--limit", "0"), "error: --limit must be at least 1\n"),
    ])
    def test_bad_usage(self, home, capsys, argv, message):
        """Exit 2 with the reason; an unknown kind is named with the list."""
        assert check(capsys, home, *argv) == (2, "", message)


def test_unreachable_database(tmp_path, monkeypatch, capsys):
    """A database that cannot be reached: exit 3."""
    monkeypatch.chdir(tmp_path)
    code = main(["check", "--database-url", "mysql+pymysql://nobody@127.0.0.1:1/none"])
    out, err = capsys.readouterr()
    assert (code, out) == (3, "")
    assert err.startswith("error: database unavailable")
