"""``billingcenter errors list|recycle``: through ``cli.main`` on SQLite."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from billingcenter.commands import errors as errors_command
from billingcenter.commands import usage as usage_command
from billingcenter.ledger.engine import create_engine
from billingcenter.ledger.schema import error_record
from billingcenter.ledger.store import SqlLedger
from billingcenter.model import ErrorRecord, Order, Product, Usage
from billingcenter.service import payload_text
from tests.commands.test_usage import CONFIG, NOW, cli, publish_settlement

LATER = NOW + timedelta(hours=1)
HEADER = "record_key,occurred_at,call_type,peer_operator,service_type,duration,quantity"
ROWS = [
    "k1,2026-11-01T08:00:00+08:00,MOC,CT,VOICE,61,",
    "k2,2026-11-01T08:00:00+08:00,MMS-MO,CMCC,MMS,,2",
    "k3,later,MOC,CT,VOICE,61,",
]
# A version that settles MMS with our own network too (effective from 2026-11-01 on).
MMS_CMCC = """
[[rule]]
id = "mms-mo-cmcc"
description = "MMS to our own network, settled in this test"
mode = "per_use"
unit_price = "0.05"
[rule.when]
call_type = "MMS-MO"
peer_operator = "CMCC"
"""


@pytest.fixture
def home(tmp_path, monkeypatch, capsys):
    """The settlement set published; a file with one good, one NO_RULE, one BAD_TIME row."""
    (tmp_path / "billingcenter.ini").write_text(CONFIG, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(usage_command, "_now", lambda: NOW)
    monkeypatch.setattr(errors_command, "_now", lambda: LATER)
    publish_settlement(capsys)
    (tmp_path / "f.csv").write_text("\n".join([HEADER, *ROWS]) + "\n", encoding="utf-8")
    assert cli(capsys, "usage", "load", "f.csv", "--rule-set", "settlement-inter-network")[0] == 1
    return tmp_path


def engine_of(home):
    """An engine on the SQLite database of ``home``."""
    return create_engine(f"sqlite:///{home / 'data' / 'billingcenter.sqlite3'}")


def publish_mms_version(home, capsys):
    """Publish settlement version 2026.11.2: the shipped rules plus MMS to CMCC first."""
    from tests.commands.test_usage import SETTLEMENT

    text = SETTLEMENT.read_text(encoding="utf-8").replace(
        'version = "2026.11.1"', 'version = "2026.11.2"')
    first_rule = text.index("[[rule]]")
    (home / "v2.toml").write_text(text[:first_rule] + MMS_CMCC.lstrip() + "\n"
                                  + text[first_rule:], encoding="utf-8")
    for argv in (("import", "v2.toml", "--as", "alice"),
                 ("review", "settlement-inter-network", "2026.11.2", "--as", "bob"),
                 ("publish", "settlement-inter-network", "2026.11.2", "--as", "carol")):
        assert cli(capsys, "rules", *argv)[0] == 0


class TestList:
    def test_a_table_of_open_errors_newest_first(self, home, capsys):
        """The table: id, time in the business time zone, method, code, key, reason."""
        code, out, err = cli(capsys, "errors", "list")
        assert (code, err) == (0, "")
        assert out.splitlines() == [
            "ID  RECEIVED                   METHOD      CODE      KEY  REASON"
            "                                                        RECYCLED",
            "2   2026-11-20T10:00:00+08:00  usage.load  BAD_TIME  k3   occurred_at 'later' "
            "is not an ISO 8601 time with an offse...  -",
            "1   2026-11-20T10:00:00+08:00  usage.load  NO_RULE   k2   no per_use or duration "
            "rule of rule set settlement-inter-...  -",
        ]

    def test_json_has_every_field(self, home, capsys):
        """JSON: the payload parsed, times in UTC."""
        code, out, _ = cli(capsys, "errors", "list", "--code", "BAD_TIME", "--format", "json")
        (found,) = json.loads(out)
        assert found == {
            "id": 2, "method": "usage.load", "key": "k3", "code": "BAD_TIME",
            "reason": "occurred_at 'later' is not an ISO 8601 time with an offset "
                      "(e.g. 2026-11-01T08:30:00+08:00)",
            "payload": {"file": "f.csv", "line": 4, "rule_set": "settlement-inter-network",
                        "row": dict(zip(HEADER.split(","), ROWS[2].split(","), strict=True))},
            "received_at": "2026-11-20T02:00:00+00:00", "recycled_at": None,
        }

    @pytest.mark.parametrize("argv, keys", [
        (("--method", "usage.load"), ["k3", "k2"]),
        (("--method", "installOrder"), []),
        (("--code", "NO_RULE"), ["k2"]),
        (("--since", "2026-11-20"), ["k3", "k2"]),
        (("--since", "2026-11-21"), []),
        (("--since", "2026-11-20T02:00:01Z"), []),
        (("--limit", "1"), ["k3"]),
    ])
    def test_filters(self, home, capsys, argv, keys):
        """Method, code, since (a business day or a time) and limit narrow the list."""
        code, out, _ = cli(capsys, "errors", "list", "--format", "json", *argv)
        assert (code, [e["key"] for e in json.loads(out)]) == (0, keys)

    def test_a_bad_since(self, home, capsys):
        """--since that is neither a day nor a time with offset: exit 2."""
        code, _, err = cli(capsys, "errors", "list", "--since", "tomorrow")
        assert (code, err) == (2, "error: --since: 'tomorrow' is not an ISO 8601 time\n")


class TestRecycle:
    def test_no_rule_until_a_rule_is_published(self, home, capsys):
        """Recycle fails again (exit 1); after publishing a rule it succeeds (exit 0)."""
        code, out, _ = cli(capsys, "errors", "recycle", "--code", "NO_RULE")
        assert (code, out) == (1, "usage.load: 0 recycled, 1 failed again (NO_RULE 1)\n")
        publish_mms_version(home, capsys)
        code, out, _ = cli(capsys, "errors", "recycle", "--code", "NO_RULE")
        assert (code, out) == (0, "usage.load: 1 recycled, 0 failed again\n")
        code, out, _ = cli(capsys, "errors", "list", "--all", "--format", "json")
        assert [(e["key"], e["recycled_at"]) for e in json.loads(out)] == [
            ("k3", None), ("k2", "2026-11-20T03:00:00+00:00")]
        assert cli(capsys, "errors", "recycle", "--code", "NO_RULE")[:2] == (
            0, "nothing to recycle\n")

    def test_a_fix_file(self, home, capsys):
        """--fix takes the corrected row of k3; the unused row is reported."""
        (home / "fix.csv").write_text(
            f"{HEADER}\nk3,2026-11-01T09:00:00+08:00,MOC,CT,VOICE,61,\n"
            "zz,2026-11-01T09:00:00+08:00,MOC,CT,VOICE,61,\n", encoding="utf-8")
        code, out, _ = cli(capsys, "errors", "recycle", "--fix", "fix.csv", "--code",
                           "BAD_TIME")
        assert (code, out) == (0, "usage.load: 1 recycled, 0 failed again\n"
                                  "fix.csv: 1 of 2 corrected rows used\n")

    def test_only_given_ids(self, home, capsys):
        """--id recycles those records only."""
        code, out, _ = cli(capsys, "errors", "recycle", "--id", "2")
        assert (code, out) == (1, "usage.load: 0 recycled, 1 failed again (BAD_TIME 1)\n")

    @pytest.mark.parametrize("argv, message", [
        (("--method", "changeAccountNum"),
         "error: changeAccountNum records cannot be recycled (recyclable: installOrder, "
         "updateOrderState, insertServiceOp, usage.load)\n"),
        (("--method", "installOrder", "--fix", "f.csv"),
         "error: --fix corrects usage.load rows only\n"),
        (("--fix", "missing.csv"),
         "error: --fix: [Errno 2] No such file or directory: 'missing.csv'\n"),
    ])
    def test_refused(self, home, capsys, argv, message):
        """Unrecyclable methods and unusable fix files: exit 2, nothing done."""
        assert cli(capsys, "errors", "recycle", *argv)[::2] == (2, message)

    def test_an_intake_refusal(self, home, capsys):
        """insertServiceOp of an unknown order: recycled once the order is installed."""
        engine = engine_of(home)
        ledger = SqlLedger(engine)
        usage = Usage("op-1", "o-1", "PC2", "export", "u-1", "", 1,
                      datetime(2026, 11, 2, tzinfo=UTC))
        ledger.add_error(ErrorRecord("insertServiceOp", "op-1", "UNKNOWN_ORDER",
                                     "order 'o-1' is unknown", payload_text(usage), NOW))
        code, out, _ = cli(capsys, "errors", "recycle", "--method", "insertServiceOp")
        assert (code, out) == (
            1, "insertServiceOp: 0 recycled, 1 failed again (UNKNOWN_ORDER 1)\n")
        ledger.sync_products([Product("PC2", "PC2", frozenset({"PC2-DAILY"}))])
        ledger.add_order(Order("o-1", "mm-1", "u-1", "PC2", "PC2-DAILY",
                               datetime(2026, 11, 1, tzinfo=UTC)), NOW)
        code, out, _ = cli(capsys, "errors", "recycle", "--method", "insertServiceOp")
        assert (code, out) == (0, "insertServiceOp: 1 recycled, 0 failed again\n")
        assert ledger.get_usage("op-1").payer_id == "mm-1"
        with engine.connect() as conn:
            opened = conn.execute(sa.select(sa.func.count()).select_from(error_record).where(
                error_record.c.method == "insertServiceOp",
                error_record.c.recycled_at.is_(None))).scalar_one()
        engine.dispose()
        assert opened == 0
