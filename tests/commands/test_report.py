"""``billingcenter report``: through ``cli.main``, the same output on SQLite and MariaDB."""

from __future__ import annotations

import json

import pytest

from billingcenter.cli import main
from billingcenter.commands.report import yuan
from tests.ledger import billing_rows
from tests.ledger.billing_rows import Rows

engine = billing_rows.engine
report_mysql_engine = billing_rows.report_mysql_engine
report_sqlite_template = billing_rows.report_sqlite_template


def charges(rows: Rows) -> None:
    """Seven charges over three months: billed, open and prepaid ones.

    Rated at 2026-12-01 UTC, all of them: the month is the business day's.  p-1's bill
    of 2026-11-02 (bound 1) holds charge 1; charges 2 and 3, of a day before the bill
    date but rated after its run (ids above the bound), wait.  p-2's bill of 2026-12-01
    (bound 5) holds charge 4; charge 5, within the bound but of the bill date, waits.
    """
    c1 = rows.charge("p-1", "o-1", "CRM", "2026-10-31", 123450)
    rows.bill("p-1", "2026-11-02", [c1])
    rows.charge("p-1", "o-1", "CRM", "2026-11-01", 300)
    rows.charge("p-1", "o-2", "SMS", "2026-11-01", 5, "rs-b")
    c4 = rows.charge("p-2", "o-3", "CRM", "2026-11-30", 300)
    rows.charge("p-2", "o-3", "CRM", "2026-12-01", 300)
    rows.bill("p-2", "2026-12-01", [c4])
    rows.charge("p-3", "o-4", "SMS", "2026-11-15", 20, "rs-b", entry_id=1)
    rows.charge("p-3", "o-4", "SMS", "2026-11-16", 0, "rs-b", entry_id=2)
    assert billing_rows.bill_of(rows.engine) == {1: 1, 4: 2}


@pytest.fixture
def home(engine, tmp_path, monkeypatch):
    """A config file, the charges, and the database URL the commands are given."""
    (tmp_path / "billingcenter.ini").write_text("[database]\ndata_dir = data\n",
                                                encoding="utf-8")
    (tmp_path / "data").mkdir()
    monkeypatch.chdir(tmp_path)
    charges(Rows(engine))
    return engine.url.render_as_string(hide_password=False)


def report(capsys, url, *argv):
    """Run ``billingcenter report ARGV``: (exit code, stdout, stderr)."""
    code = main(["report", *argv, "--config", "billingcenter.ini", "--database-url", url])
    out, err = capsys.readouterr()
    return code, out, err


class TestFormats:
    def test_table_by_month(self, home, capsys):
        """Months of business days, aligned, amounts right-aligned, a TOTAL line."""
        assert report(capsys, home, "--by", "month") == (0, (
            "MONTH    CHARGES  AMOUNT_FEN  AMOUNT_YUAN\n"
            "2026-10        1      123450      1234.50\n"
            "2026-11        5         625         6.25\n"
            "2026-12        1         300         3.00\n"
            "TOTAL          7      124375      1243.75\n"), "")

    def test_csv_by_payer_and_month(self, home, capsys):
        """CSV: a header, the groups in order, a TOTAL row with empty dimension cells."""
        assert report(capsys, home, "--by", "payer,month", "--format", "csv") == (0, (
            "payer,month,charges,amount_fen,amount_yuan\n"
            "p-1,2026-10,1,123450,1234.50\n"
            "p-1,2026-11,2,305,3.05\n"
            "p-2,2026-11,1,300,3.00\n"
            "p-2,2026-12,1,300,3.00\n"
            "p-3,2026-11,2,20,0.20\n"
            "TOTAL,,7,124375,1243.75\n"), "")

    def test_csv_without_the_total(self, home, capsys):
        """--no-total leaves the TOTAL row out of CSV."""
        code, out, _ = report(capsys, home, "--by", "rule_set", "--format", "csv",
                              "--no-total")
        assert (code, out) == (0, "rule_set,charges,amount_fen,amount_yuan\n"
                                  "rs-a,4,124350,1243.50\nrs-b,3,25,0.25\n")

    def test_json_by_product_and_rule_set(self, home, capsys):
        """JSON: the dimensions, one object per group, the total; yuan as exact text."""
        code, out, err = report(capsys, home, "--by", "product,rule_set", "--format", "json")
        assert (code, err) == (0, "")
        assert json.loads(out) == {
            "by": ["product", "rule_set"],
            "rows": [
                {"product": "CRM", "rule_set": "rs-a", "charges": 4, "amount_fen": 124350,
                 "amount_yuan": "1243.50"},
                {"product": "SMS", "rule_set": "rs-b", "charges": 3, "amount_fen": 25,
                 "amount_yuan": "0.25"},
            ],
            "total": {"charges": 7, "amount_fen": 124375, "amount_yuan": "1243.75"},
        }

    def test_grand_total_only(self, home, capsys):
        """Without --by: the grand total, in every format."""
        assert report(capsys, home)[1] == ("       CHARGES  AMOUNT_FEN  AMOUNT_YUAN\n"
                                           "TOTAL        7      124375      1243.75\n")
        assert report(capsys, home, "--format", "csv")[1] == (
            "charges,amount_fen,amount_yuan\n7,124375,1243.75\n")
        assert json.loads(report(capsys, home, "--format", "json")[1]) == {
            "by": [], "rows": [],
            "total": {"charges": 7, "amount_fen": 124375, "amount_yuan": "1243.75"}}

    def test_nothing_matches(self, home, capsys):
        """No charge matches: no rows, a zero total, exit 0."""
        code, out, _ = report(capsys, home, "--by", "payer", "--payer", "nobody",
                              "--format", "json")
        assert (code, json.loads(out)) == (0, {
            "by": ["payer"], "rows": [],
            "total": {"charges": 0, "amount_fen": 0, "amount_yuan": "0.00"}})
        assert report(capsys, home, "--by", "payer", "--payer", "nobody")[1] == (
            "PAYER  CHARGES  AMOUNT_FEN  AMOUNT_YUAN\n"
            "TOTAL        0           0         0.00\n")


class TestFilters:
    def test_days_are_inclusive_across_a_month_boundary(self, home, capsys):
        """--from and --to are both counted; the boundary days fall in their own month."""
        code, out, _ = report(capsys, home, "--by", "month,day", "--from", "2026-10-31",
                              "--to", "2026-11-01", "--format", "csv")
        assert (code, out) == (0, "month,day,charges,amount_fen,amount_yuan\n"
                                  "2026-10,2026-10-31,1,123450,1234.50\n"
                                  "2026-11,2026-11-01,2,305,3.05\n"
                                  "TOTAL,,3,123755,1237.55\n")
        code, out, _ = report(capsys, home, "--by", "day", "--from", "2026-11-30",
                              "--to", "2026-12-01", "--format", "csv")
        assert out == ("day,charges,amount_fen,amount_yuan\n2026-11-30,1,300,3.00\n"
                       "2026-12-01,1,300,3.00\nTOTAL,2,600,6.00\n")

    def test_one_open_ended_bound(self, home, capsys):
        """--from alone counts from that day on."""
        _, out, _ = report(capsys, home, "--from", "2026-11-16", "--format", "csv")
        assert out == "charges,amount_fen,amount_yuan\n3,600,6.00\n"

    def test_payers_products_rule_sets(self, home, capsys):
        """Repeated --payer is any of them; filters combine."""
        _, out, _ = report(capsys, home, "--by", "payer,order", "--payer", "p-1",
                           "--payer", "p-3", "--product", "SMS", "--rule-set", "rs-b",
                           "--format", "csv")
        assert out == ("payer,order,charges,amount_fen,amount_yuan\n"
                       "p-1,o-2,1,5,0.05\np-3,o-4,2,20,0.20\nTOTAL,,3,25,0.25\n")

    def test_a_payer_never_billed(self, engine, home, capsys):
        """A payer without a payer row (never billed): its charges are open, not billed."""
        Rows(engine).charge("p-9", "o-9", "CRM", "2026-10-01", 7)
        header = "payer,charges,amount_fen,amount_yuan\n"
        _, out, _ = report(capsys, home, "--by", "payer", "--payer", "p-9", "--open",
                           "--format", "csv")
        assert out == header + "p-9,1,7,0.07\nTOTAL,1,7,0.07\n"
        _, out, _ = report(capsys, home, "--by", "payer", "--payer", "p-9", "--billed",
                           "--format", "csv")
        assert out == header + "TOTAL,0,0,0.00\n"

    @pytest.mark.parametrize("flag, expected", [
        ("--billed", "p-1,1,123450,1234.50\np-2,1,300,3.00\nTOTAL,2,123750,1237.50\n"),
        ("--open", "p-1,2,305,3.05\np-2,1,300,3.00\nTOTAL,3,605,6.05\n"),
        ("--unbilled", "p-1,2,305,3.05\np-2,1,300,3.00\nTOTAL,3,605,6.05\n"),
        ("--prepaid", "p-3,2,20,0.20\nTOTAL,2,20,0.20\n"),
    ])
    def test_what_became_of_the_charges(self, home, capsys, flag, expected):
        """Billed (on a bill), prepaid (paid from a balance), open (neither)."""
        _, out, _ = report(capsys, home, "--by", "payer", flag, "--format", "csv")
        assert out == "payer,charges,amount_fen,amount_yuan\n" + expected


class TestErrors:
    @pytest.mark.parametrize("argv, message", [
        (("--by", "payer,colour"), "error: unknown dimension 'colour' in --by; known: "
                                   "payer, product, order, rule_set, day, month\n"),
        (("--by", "payer,payer"), "error: a dimension is named twice in --by "
                                  "'payer,payer'\n"),
        (("--from", "2026-11-02", "--to", "2026-11-01"),
         "error: --to 2026-11-01 is before --from 2026-11-02\n"),
    ])
    def test_bad_usage(self, home, capsys, argv, message):
        """Exit 2 with the reason (and the known dimensions); nothing printed."""
        assert report(capsys, home, *argv) == (2, "", message)

    def test_two_states_at_once(self, capsys):
        """--billed and --open exclude each other (an argparse usage error)."""
        with pytest.raises(SystemExit) as exit_:
            main(["report", "--billed", "--open"])
        assert exit_.value.code == 2
        assert "not allowed with argument" in capsys.readouterr().err

    def test_unreachable_database(self, tmp_path, monkeypatch, capsys):
        """A database that cannot be reached: exit 3."""
        monkeypatch.chdir(tmp_path)
        code = main(["report", "--database-url", "mysql+pymysql://nobody@127.0.0.1:1/none"])
        out, err = capsys.readouterr()
        assert (code, out) == (3, "")
        assert err.startswith("error: database unavailable")


@pytest.mark.parametrize("fen, text", [
    (0, "0.00"), (5, "0.05"), (123450, "1234.50"), (-5, "-0.05"), (-123456, "-1234.56"),
    (10**17 + 1, "1000000000000000.01"),
])
def test_yuan(fen, text):
    """Integer fen as exact yuan text, negative amounts too."""
    assert yuan(fen) == text
