"""Recycling error records: rejected file rows and refused intake records, idempotently."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from billingcenter.intake import Limits
from billingcenter.jobs.filecheck import FileFormatError
from billingcenter.jobs.recycle import Recycler, read_fixes
from billingcenter.ledger.errorstore import ErrorStore
from billingcenter.ledger.files import FileStore
from billingcenter.ledger.schema import error_record, order_mirror, usage_record
from billingcenter.ledger.schema_files import file_record, usage_file
from billingcenter.ledger.store import SqlLedger
from billingcenter.model import ErrorRecord, Order, Product, StateEvent, StateKind, Usage
from billingcenter.service import payload_text
from tests.jobs import test_files as base
from tests.jobs.test_files import (
    GOOD,
    MMS_RULE,
    NOW,
    RULE_SET,
    TZ,
    book,
    charges_by_key,
    counts,
    load,
    rater,
    rule_text,
    table,
    write_csv,
)

# The shared fixtures: SQLite and MariaDB databases of the file loader's tests.
sqlite_template = base.sqlite_template
files_mysql_url = base.files_mysql_url
files_mysql_engine = base.files_mysql_engine
files_mysql_insert_engine = base.files_mysql_insert_engine
engine = base.engine

LATER = NOW + timedelta(hours=2)
MMS = "m1,2026-11-02T09:00:00+08:00,CT,2,,MMS-MO,CT,13800000000"


def recycler(engine, *texts, now=LATER, batch_size=2):
    """A recycler on ``engine`` whose book holds the given rule set texts."""
    return Recycler(ErrorStore(engine), FileStore(engine), SqlLedger(engine), book(*texts),
                    TZ, now, Limits(), batch_size)


def open_errors(engine):
    """(key, code) of the error records not yet recycled, in id order."""
    return [(r.key, r.code) for r in table(engine, error_record) if r.recycled_at is None]


class TestUsageLoadRows:
    def test_no_rule_then_a_rule_is_published(self, engine, tmp_path):
        """An MMS row without a rule is rejected; with the new version it is recycled."""
        load(engine, write_csv(tmp_path / "f.csv", [GOOD[0], MMS]))
        assert open_errors(engine) == [("m1", "NO_RULE")]
        v2 = rule_text("2026.11.2", extra=MMS_RULE)
        result = recycler(engine, rule_text(), v2).run()
        assert (dict(result.recycled), dict(result.failed)) == ({"usage.load": 1}, {})
        assert charges_by_key(engine)["m1"][:4] == ("mms-mo", Decimal("2"), Decimal("0.20"), 40)
        (row,) = table(engine, error_record)
        assert row.recycled_at == LATER
        (record,) = [r for r in table(engine, file_record) if r.record_key == "m1"]
        assert (record.line, table(engine, usage_file)[-1].name) == (3, "errors recycle")

    def test_recycling_twice_stores_nothing_twice(self, engine, tmp_path):
        """A second run finds nothing open; a load of the same row again is a duplicate."""
        path = write_csv(tmp_path / "f.csv", [MMS])
        load(engine, path)
        v2 = rule_text("2026.11.2", extra=MMS_RULE)
        recycler(engine, v2).run()
        again = recycler(engine, v2).run()
        assert (dict(again.recycled), dict(again.failed), dict(again.skipped)) == ({}, {}, {})
        assert load(engine, path, rater(v2)).duplicates == 1
        assert counts(engine) == (1, 1, 1)

    def test_failing_again_updates_the_error_in_place(self, engine, tmp_path):
        """Still no rule: the same error row, now with the latest attempt's time."""
        load(engine, write_csv(tmp_path / "f.csv", [MMS]))
        (before,) = table(engine, error_record)
        result = recycler(engine).run()
        assert dict(result.failed) == {("usage.load", "NO_RULE"): 1}
        (after,) = table(engine, error_record)
        assert (after.id, after.code, after.reason, after.recycled_at, after.received_at) == (
            before.id, "NO_RULE", before.reason, None, LATER)
        assert json.loads(after.payload) == json.loads(before.payload)

    def test_a_fix_file_corrects_rows_by_key(self, engine, tmp_path):
        """Corrected rows replace the stored ones; a row still wrong keeps its error open."""
        rows = ["t1,not-a-time,CT,,61,MOC,CT,010", "t2,2026-11-02T00:30:00+08:00,CT,-1,,"
                "SMS-MO,CT,010", "t3,bad,CT,,1,MOC,CT,010"]
        load(engine, write_csv(tmp_path / "f.csv", rows))
        fix = write_csv(tmp_path / "fix.csv", [
            "t1,2026-11-02T00:30:00+08:00,CT,,61,MOC,CT,010",
            "t2,2026-11-02T00:30:00+08:00,CT,2,,SMS-MO,CT,010",
            "t3,still-bad,CT,,1,MOC,CT,010",
            "t9,2026-11-02T00:30:00+08:00,CT,,61,MOC,CT,010",
        ])
        result = recycler(engine).run(fixes=read_fixes(fix))
        assert (dict(result.recycled), dict(result.failed), result.fixes_used) == (
            {"usage.load": 2}, {("usage.load", "BAD_TIME"): 1}, 3)
        assert {k: v[3] for k, v in charges_by_key(engine).items()} == {"t1": 12, "t2": 10}
        assert open_errors(engine) == [("t3", "BAD_TIME")]
        (t3,) = [r for r in table(engine, error_record) if r.key == "t3"]
        assert json.loads(t3.payload)["row"]["occurred_at"] == "still-bad"
        assert json.loads(t3.payload)["file"] == "fix.csv"

    def test_a_row_stored_meanwhile_settles_its_error(self, engine, tmp_path):
        """A key loaded by a later file is settled by recycle without storing it again."""
        load(engine, write_csv(tmp_path / "a.csv", ["r1,bad,CT,,61,MOC,CT,010"]))
        load(engine, write_csv(tmp_path / "b.csv", [GOOD[0]]))
        result = recycler(engine).run()
        assert dict(result.recycled) == {"usage.load": 1}
        assert (open_errors(engine), counts(engine)) == ([], (1, 1, 1))

    def test_a_short_row_stays_short(self, engine, tmp_path):
        """A row that lacked a column is not accepted as stored: MISSING_COLUMN again."""
        load(engine, write_csv(tmp_path / "f.csv", ["s1,2026-11-02T00:30:00+08:00,CT,,61,MOC,"
                                                   "CT"]))
        result = recycler(engine).run()
        assert dict(result.failed) == {("usage.load", "MISSING_COLUMN"): 1}
        assert counts(engine)[0] == 0

    def test_another_rule_set_can_be_named(self, engine, tmp_path):
        """``rule_set`` overrides the rule set of the rows' load."""
        load(engine, write_csv(tmp_path / "f.csv", [MMS]))
        other = rule_text(extra=MMS_RULE).replace(f'name = "{RULE_SET}"', 'name = "other"')
        result = recycler(engine, rule_text(), other).run(rule_set="other")
        assert dict(result.recycled) == {"usage.load": 1}
        assert table(engine, usage_file)[-1].rule_set == "other"

    def test_only_the_chosen_ids(self, engine, tmp_path):
        """With ids, the other open errors are left alone."""
        load(engine, write_csv(tmp_path / "f.csv", [MMS, MMS.replace("m1", "m2")]))
        first, second = table(engine, error_record)
        v2 = rule_text("2026.11.2", extra=MMS_RULE)
        result = recycler(engine, v2).run(ids=[second.id])
        assert dict(result.recycled) == {"usage.load": 1}
        assert open_errors(engine) == [("m1", "NO_RULE")]


ORDER = Order("o-1", "payer-1", "u-1", "PC2", "PC2-DAILY", datetime(2026, 11, 1, tzinfo=UTC), 3)
EVENT = StateEvent("e-1", "o-1", StateKind.PAUSED, datetime(2026, 11, 5, tzinfo=UTC))
USAGE = Usage("op-1", "o-1", "PC2", "export", "u-2", "", 2, datetime(2026, 11, 6, tzinfo=UTC),
              {"channel": "web"})


def refuse(engine, method, key, record, code="UNKNOWN_ORDER"):
    """Keep a refusal the way the service does (payload as ``payload_text``)."""
    SqlLedger(engine).add_error(ErrorRecord(method, key, code, "order 'o-1' is unknown",
                                            payload_text(record), NOW))


@pytest.fixture
def catalogue(engine):
    """The PC2 product in the catalogue."""
    SqlLedger(engine).sync_products([Product("PC2", "PC2", frozenset({"PC2-DAILY"}))])
    return engine


class TestIntakeRefusals:
    def test_usage_of_an_unknown_order_after_the_order_arrived(self, catalogue, engine):
        """UNKNOWN_ORDER usage: the order is installed, recycle stores the usage."""
        refuse(engine, "insertServiceOp", "op-1", USAGE)
        SqlLedger(engine).add_order(ORDER, NOW)
        result = recycler(engine).run()
        assert dict(result.recycled) == {"insertServiceOp": 1}
        stored = SqlLedger(engine).get_usage("op-1")
        assert (stored.payer_id, stored.quantity, stored.attributes) == (
            "payer-1", 2, (("channel", "web"),))
        assert open_errors(engine) == []

    def test_the_order_is_recycled_before_its_event_and_usage(self, catalogue, engine):
        """Order refused (product missing then), event and usage refused: one run fixes all."""
        refuse(engine, "insertServiceOp", "op-1", USAGE)
        refuse(engine, "updateOrderState", "e-1", EVENT)
        refuse(engine, "installOrder", "o-1", ORDER, code="UNKNOWN_PRODUCT")
        result = recycler(engine).run()
        assert dict(result.recycled) == {"installOrder": 1, "updateOrderState": 1,
                                         "insertServiceOp": 1}
        assert SqlLedger(engine).order_status("o-1").value == "PAUSED"

    def test_still_unknown_stays_open_and_says_so(self, catalogue, engine):
        """Without the order the usage fails again: the same row, updated, still open."""
        refuse(engine, "insertServiceOp", "op-1", USAGE)
        result = recycler(engine).run(method="insertServiceOp")
        assert dict(result.failed) == {("insertServiceOp", "UNKNOWN_ORDER"): 1}
        (row,) = table(engine, error_record)
        assert (row.code, row.reason, row.received_at, row.recycled_at) == (
            "UNKNOWN_ORDER", "order 'o-1' is unknown", LATER, None)

    def test_recycling_is_idempotent(self, catalogue, engine):
        """Twice, or after a crash between storing and settling: stored once, settled."""
        refuse(engine, "insertServiceOp", "op-1", USAGE)
        refuse(engine, "insertServiceOp", "op-1", USAGE)  # the caller retried
        SqlLedger(engine).add_order(ORDER, NOW)
        SqlLedger(engine).add_usage(USAGE, NOW)  # stored, then the process died
        result = recycler(engine).run()
        again = recycler(engine).run()
        assert (dict(result.recycled), dict(again.recycled)) == ({"insertServiceOp": 2}, {})
        assert len(table(engine, usage_record)) == 1
        assert len(table(engine, order_mirror)) == 1

    def test_a_payload_kept_as_sent_on_the_wire_is_skipped(self, catalogue, engine):
        """A refusal stored before it became a record cannot be re-submitted: skipped."""
        SqlLedger(engine).add_error(ErrorRecord(
            "installOrder", "o-9", "INVALID_ARGUMENT", "accountNum is missing",
            json.dumps({"type": "org.billingcenter.api.Order", "fields": {"orderId": "o-9"}}),
            NOW))
        result = recycler(engine).run()
        assert (dict(result.skipped), open_errors(engine)) == (
            {"installOrder": 1}, [("o-9", "INVALID_ARGUMENT")])

    def test_other_methods_are_left_alone(self, catalogue, engine):
        """changeAccountNum refusals are not recycled (nor touched) by a full run."""
        SqlLedger(engine).add_error(ErrorRecord("changeAccountNum", "mm-1/PC2", "UNKNOWN_ORDER",
                                                "no order", "[]", NOW))
        result = recycler(engine).run()
        assert (dict(result.recycled), dict(result.skipped)) == ({}, {})
        assert open_errors(engine) == [("mm-1/PC2", "UNKNOWN_ORDER")]


def test_fix_files_need_a_header(tmp_path):
    """A fix file is read like a usage file: a header with the required columns."""
    path = tmp_path / "fix.csv"
    path.write_text("record_key\nx\n", encoding="utf-8")
    with pytest.raises(FileFormatError, match="lacks the required column"):
        read_fixes(path)
