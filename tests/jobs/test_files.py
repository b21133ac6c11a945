"""The usage-record file loader: check, de-duplicate, rate, store; crash and reload.

Runs on SQLite (a copy of a migrated template) and on MariaDB, in a database of its
own (``billingcenter_files_test``) so it never races the other ledger tests.  The
helpers and fixtures here are shared with the other ``test_files*`` modules.
"""

from __future__ import annotations

import json
import shutil
import threading
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from billingcenter.errors import Unavailable
from billingcenter.intake import Limits
from billingcenter.jobs.filecheck import FileFormatError
from billingcenter.jobs.files import Rater, load_file
from billingcenter.ledger import migrate
from billingcenter.ledger.engine import create_engine
from billingcenter.ledger.files import FileStore
from billingcenter.ledger.payments import AccountStore, PayerSettings
from billingcenter.ledger.schema import error_record
from billingcenter.ledger.schema_billing import payer_account
from billingcenter.ledger.schema_files import file_record, usage_file
from billingcenter.ledger.schema_rating import charge
from billingcenter.ledger.tables import metadata
from billingcenter.model import PayNotice
from billingcenter.rating.model import RuleBook
from billingcenter.rating.ruleset import parse_rule_set
from tests.support import mysql_test_url, reset_mysql_database

FILES_MYSQL_URL = mysql_test_url("files", "BILLINGCENTER_TEST_FILES_MYSQL_URL")
TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
RULE_SET = "settle-test"
HEADER = "record_key,occurred_at,payer_id,quantity,duration,call_type,peer_operator,called"
# 61 s MOC to CT: 2 minutes x 0.06 = 12 fen; 61 s MTC from CT: 11 x 6 s x 0.012 = 0.132
# -> 13 fen; 3 SMS x 0.05 = 15 fen; a call to 110 is free.
GOOD = [
    "r1,2026-11-02T00:30:00+08:00,CT,,61,MOC,CT,01012345678",
    "r2,2026-11-02T10:00:00+08:00,CT,,61,MTC,CT,13800000000",
    "r3,2026-11-03T23:59:59+08:00,CT,3,,SMS-MO,CT,13800000001",
    "r4,2026-11-04T08:00:00+08:00,CU,,30,MOC,CU,110",
]


def rule_text(version: str = "2026.11.1", effective_from: str = "2026-11-01T00:00:00",
              effective_to: str | None = None, moc_price: str = "0.06",
              extra: str = "") -> str:
    """The test settlement rule set: emergency calls free, MOC/MTC to CT, SMS-MO."""
    to = f"effective_to = {effective_to}+08:00\n" if effective_to else ""
    return (
        "[rule_set]\n"
        f'name = "{RULE_SET}"\nversion = "{version}"\nauthor = "alice"\n'
        'description = "test settlement"\n'
        f"effective_from = {effective_from}+08:00\n{to}products = []\n\n"
        '[[rule]]\nid = "free-emergency"\ndescription = "free"\nmode = "duration"\n'
        'unit_price = "0.00"\nincrement = 60\n[rule.when]\ncalled = { prefix = "110" }\n\n'
        '[[rule]]\nid = "moc-ct"\ndescription = "to CT"\nmode = "duration"\n'
        f'unit_price = "{moc_price}"\nincrement = 60\n'
        '[rule.when]\ncall_type = "MOC"\npeer_operator = "CT"\n\n'
        '[[rule]]\nid = "mtc-ct"\ndescription = "from CT"\nmode = "duration"\n'
        'unit_price = "0.012"\nincrement = 6\n'
        '[rule.when]\ncall_type = "MTC"\npeer_operator = "CT"\n\n'
        '[[rule]]\nid = "sms-mo"\ndescription = "SMS"\nmode = "per_use"\n'
        'unit_price = "0.05"\n[rule.when]\ncall_type = "SMS-MO"\n'
        f"{extra}"
    )


MMS_RULE = (
    '\n[[rule]]\nid = "mms-mo"\ndescription = "MMS"\nmode = "per_use"\n'
    'unit_price = "0.20"\n[rule.when]\ncall_type = "MMS-MO"\n'
)


def book(*texts: str) -> RuleBook:
    """A rule book of the given rule set texts, as if published in that order."""
    return RuleBook(tuple(parse_rule_set(text) for text in (texts or (rule_text(),))))


def rater(*texts: str) -> Rater:
    """A rater of the test rule set."""
    return Rater(book(*texts), RULE_SET, TZ)


def write_csv(path: Path, rows: list[str], header: str = HEADER) -> Path:
    """A usage file of ``rows`` under ``header``."""
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def table(engine: sa.Engine, which: sa.Table, order: sa.ColumnElement | None = None) -> list:
    """Every row of a table, in id order (or ``order``)."""
    with engine.connect() as conn:
        return conn.execute(sa.select(which).order_by(order if order is not None else
                                                      which.c.id)).all()


def charges_by_key(engine: sa.Engine) -> dict[str, tuple]:
    """source_key -> (rule_id, units, unit_price, amount_fen, day, payer) of record charges."""
    return {
        row.source_key: (row.rule_id, row.units, row.unit_price, row.amount_fen, row.day,
                         row.payer_id)
        for row in table(engine, charge) if row.kind == "record"
    }


def errors(engine: sa.Engine) -> list[tuple[str, str, str]]:
    """(method, key, code) of the error records, in id order."""
    return [(row.method, row.key, row.code) for row in table(engine, error_record)]


def counts(engine: sa.Engine) -> tuple[int, int, int]:
    """Rows in file_record, charge and error_record."""
    with engine.connect() as conn:
        return tuple(  # type: ignore[return-value]
            conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
            for t in (file_record, charge, error_record)
        )


@pytest.fixture(scope="module")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test."""
    path = tmp_path_factory.mktemp("files-template") / "ledger.sqlite3"
    migrate.upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="module")
def files_mysql_url():
    """The migrated MariaDB database of these tests, fresh for the module."""
    reset_mysql_database(FILES_MYSQL_URL)
    migrate.upgrade(FILES_MYSQL_URL)
    return FILES_MYSQL_URL


@pytest.fixture(scope="module")
def files_mysql_engine(files_mysql_url):
    """An engine that bulk-loads with LOAD DATA LOCAL INFILE, as ``usage load`` does."""
    engine = create_engine(files_mysql_url, pool_size=8, local_infile=True)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def files_mysql_insert_engine(files_mysql_url):
    """An engine without LOCAL INFILE: the loader falls back to executemany."""
    engine = create_engine(files_mysql_url, pool_size=8)
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb),
                        pytest.param("mariadb-insert", marks=pytest.mark.mariadb)])
def engine(request, tmp_path):
    """An empty, migrated database: SQLite, or MariaDB with or without LOAD DATA."""
    if request.param == "sqlite":
        path = tmp_path / "ledger.sqlite3"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        engine = create_engine(f"sqlite:///{path}")
        yield engine
        engine.dispose()
        return
    engine = request.getfixturevalue(
        "files_mysql_engine" if request.param == "mariadb" else "files_mysql_insert_engine")
    with engine.begin() as conn:
        for which in reversed(metadata.sorted_tables):
            conn.execute(which.delete())
    yield engine


def sa_rows(engine, query):
    """Rows of a query, as tuples."""
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(query)]


def load(engine, path, rates=None, batch_size=2, now=NOW, **kwargs):
    """Load ``path`` with the test rule set (small batches to cross batch borders)."""
    return load_file(path, FileStore(engine), rates or rater(), now, batch_size=batch_size,
                     **kwargs)


class TestGoodFile:
    def test_every_row_is_stored_and_charged_exactly(self, engine, tmp_path):
        """Four good rows: four records and four charges with exact fen, days in Shanghai."""
        result = load(engine, write_csv(tmp_path / "good.csv", GOOD))
        assert (result.read, result.accepted, result.duplicates, dict(result.rejected),
                result.amount_fen, result.failure) == (4, 4, 0, {}, 40, "")
        assert charges_by_key(engine) == {
            "r1": ("moc-ct", Decimal("2"), Decimal("0.06"), 12, date(2026, 11, 2), "CT"),
            "r2": ("mtc-ct", Decimal("11"), Decimal("0.012"), 13, date(2026, 11, 2), "CT"),
            "r3": ("sms-mo", Decimal("3"), Decimal("0.05"), 15, date(2026, 11, 3), "CT"),
            "r4": ("free-emergency", Decimal("1"), Decimal("0.00"), 0, date(2026, 11, 4),
                   "CU"),
        }
        assert errors(engine) == []

    def test_a_prepaid_payers_records_are_paid_as_they_are_stored(self, engine, tmp_path):
        """CT is prepaid with 30 fen: its records are paid from the balance in the load's
        transactions, oldest first, until the next one would cross the floor (0); CU's
        are left to its bill.  (The loader may write its two batches in either order.)"""
        store = AccountStore(engine)
        store.set_payer("CT", PayerSettings(kind="PREPAID"), NOW)
        store.pay_callback(PayNotice("topup-1", "", "CT", 30, "SUCCESS", NOW), NOW)
        result = load(engine, write_csv(tmp_path / "good.csv", GOOD))
        assert (result.accepted, result.amount_fen) == (4, 40)
        c = charge.c
        paid = {key for key, entry in sa_rows(engine, sa.select(c.source_key, c.entry_id))
                if entry}
        # r1, r2 (12 + 13 fen) written first; or r3 (15), then r1 (12) and r2 does not fit
        assert paid in ({"r1", "r2"}, {"r1", "r3"})
        fen = {"r1": 12, "r2": 13, "r3": 15}
        balance = sa_rows(engine, sa.select(payer_account.c.balance_fen).where(
            payer_account.c.payer_id == "CT"))
        assert balance == [(30 - sum(fen[key] for key in paid),)]

    def test_the_record_is_kept_as_read(self, engine, tmp_path):
        """A record keeps its line, UTC time, quantity, duration and further columns."""
        load(engine, write_csv(tmp_path / "good.csv", GOOD))
        first, _, third, _ = table(engine, file_record, file_record.c.line)
        assert (first.record_key, first.line, first.occurred_at, first.payer_id,
                first.quantity, first.duration, json.loads(first.attributes)) == (
            "r1", 2, datetime(2026, 11, 1, 16, 30, tzinfo=UTC), "CT", 1, 61,
            {"call_type": "MOC", "peer_operator": "CT", "called": "01012345678"},
        )
        assert (third.record_key, third.quantity, third.duration) == ("r3", 3, None)
        assert first.recorded_at == NOW

    def test_the_charge_explains_itself(self, engine, tmp_path):
        """A record's charge names its source, rule set, version, rule, seconds and units."""
        result = load(engine, write_csv(tmp_path / "good.csv", GOOD[:1]))
        (row,) = table(engine, charge)
        assert (row.kind, row.rule_set, row.rule_set_version, row.order_id, row.run_id) == (
            "record", RULE_SET, "2026.11.1", "", f"usage-load-{result.file_id}")
        assert json.loads(row.explanation) == {
            "increment": "60", "mode": "duration", "seconds": "61", "source": "r1",
            "unit_price": "0.06", "units": "2", "user": "",
        }

    def test_the_load_is_recorded(self, engine, tmp_path):
        """usage_file keeps the file, its digest, the rule set and the final counts."""
        path = write_csv(tmp_path / "good.csv", GOOD)
        result = load(engine, path)
        (row,) = table(engine, usage_file)
        assert (row.id, row.name, row.rule_set, row.status, row.rows_read, row.accepted,
                row.duplicates, row.rejected, row.amount_fen, row.note) == (
            result.file_id, str(path), RULE_SET, "DONE", 4, 4, 0, 0, 40, "")
        assert len(row.digest) == 64 and row.finished_at == NOW

    def test_blank_lines_a_bom_and_crlf_are_fine(self, engine, tmp_path):
        """A BOM, CRLF line ends and blank lines do not disturb the rows."""
        path = tmp_path / "bom.csv"
        path.write_bytes(("\ufeff" + HEADER + "\r\n\r\n" + GOOD[0] + "\r\n\r\n").encode())
        result = load(engine, path)
        assert (result.read, result.accepted, result.amount_fen) == (1, 1, 12)
        assert table(engine, file_record)[0].line == 3

    def test_text_that_needs_escaping_is_stored_exactly(self, engine, tmp_path):
        """Quotes, backslashes, percent signs and non-ASCII text survive as written."""
        odd = "it's \\ 100% \"quoted\" 北京"
        path = write_csv(tmp_path / "odd.csv", [f'r1,2026-11-02T00:30:00+08:00,CT,,61,MOC,CT,"'
                                                 f'{odd.replace(chr(34), chr(34) * 2)}"'])
        assert load(engine, path).accepted == 1
        assert json.loads(table(engine, file_record)[0].attributes)["called"] == odd

    def test_text_that_loads_must_escape_is_stored_exactly(self, engine, tmp_path):
        """Tabs, line breaks, backslashes and a literal \\N survive LOAD DATA's format."""
        odd = "a\tb\nc\r\\N \\ end"
        path = write_csv(tmp_path / "odd.csv", [f'k\\N\t1,2026-11-02T00:30:00+08:00,\\N,,61,MOC,CT,'
                                                 f'"{odd}"'])
        assert load(engine, path).accepted == 1
        (record,) = table(engine, file_record)
        assert (record.record_key, record.payer_id, record.duration) == ("k\\N\t1", "\\N", 61)
        assert json.loads(record.attributes)["called"] == odd
        assert list(charges_by_key(engine)) == ["k\\N\t1"]


@pytest.mark.mariadb
class TestBulkLoad:
    def test_load_data_only_when_the_engine_allows_it(
        self, files_mysql_engine, files_mysql_insert_engine
    ):
        """LOAD DATA LOCAL INFILE is used with ``local_infile=True`` only (else executemany)."""
        assert FileStore(files_mysql_engine).bulk_load
        assert not FileStore(files_mysql_insert_engine).bulk_load


class TestVersions:
    def test_each_row_is_rated_by_the_version_in_force_at_its_time(self, engine, tmp_path):
        """A row before the switch gets the old price, one at or after it the new one."""
        old = rule_text(effective_to="2026-11-10T00:00:00")
        new = rule_text("2026.11.2", effective_from="2026-11-10T00:00:00", moc_price="0.10")
        rows = ["a,2026-11-09T23:59:59+08:00,CT,,60,MOC,CT,010",
                "b,2026-11-10T00:00:00+08:00,CT,,60,MOC,CT,010"]
        load(engine, write_csv(tmp_path / "v.csv", rows), rater(old, new))
        found = {row.source_key: (row.rule_set_version, row.amount_fen)
                 for row in table(engine, charge)}
        assert found == {"a": ("2026.11.1", 6), "b": ("2026.11.2", 10)}

    def test_no_version_in_force_is_no_rule(self, engine, tmp_path):
        """A row before the first version's effective time is rejected NO_RULE."""
        result = load(engine, write_csv(tmp_path / "early.csv",
                                        ["e,2026-10-31T23:59:59+08:00,CT,,60,MOC,CT,010"]))
        assert dict(result.rejected) == {"NO_RULE": 1}
        (row,) = table(engine, error_record)
        assert row.reason == ("no published version of rule set settle-test is in force at "
                              "2026-10-31T15:59:59+00:00")


class TestDuplicates:
    def test_repeats_within_the_file_count_once(self, engine, tmp_path):
        """A key repeated in the same batch and in a later batch is stored once."""
        rows = [GOOD[0], GOOD[0], GOOD[1], GOOD[2], GOOD[0].replace(",61,", ",600,")]
        result = load(engine, write_csv(tmp_path / "dup.csv", rows))
        assert (result.read, result.accepted, result.duplicates, result.amount_fen) == (
            5, 3, 2, 40)
        assert counts(engine) == (3, 3, 0)
        assert charges_by_key(engine)["r1"][3] == 12  # the first one counts

    def test_a_second_load_stores_nothing(self, engine, tmp_path):
        """Loading the same records again: all duplicates, nothing stored, earlier load named."""
        path = write_csv(tmp_path / "good.csv", GOOD)
        first = load(engine, path)
        again = load(engine, path)
        assert (again.accepted, again.duplicates, again.amount_fen) == (0, 4, 0)
        assert again.earlier_loads == (first.file_id,)
        assert counts(engine) == (4, 4, 0)

    def test_keys_seen_in_another_file_are_duplicates(self, engine, tmp_path):
        """A file sharing keys with an earlier one stores only its new keys."""
        load(engine, write_csv(tmp_path / "a.csv", GOOD[:2]))
        result = load(engine, write_csv(tmp_path / "b.csv", GOOD[1:]))
        assert (result.accepted, result.duplicates, result.amount_fen) == (2, 1, 15)
        assert sorted(charges_by_key(engine)) == ["r1", "r2", "r3", "r4"]

    def test_keys_are_exact(self, engine, tmp_path):
        """Keys differing in case or a trailing space are different records."""
        rows = [GOOD[0], GOOD[0].replace("r1,", "R1,"), GOOD[0].replace("r1,", "r1 ,")]
        assert load(engine, write_csv(tmp_path / "case.csv", rows)).accepted == 3

    def test_a_rejected_key_does_not_make_a_later_row_a_duplicate(self, engine, tmp_path):
        """A key whose first row was rejected is accepted from a later, good row."""
        rows = ["r1,not-a-time,CT,,61,MOC,CT,010", GOOD[0]]
        result = load(engine, write_csv(tmp_path / "retry.csv", rows))
        assert (result.accepted, result.duplicates, dict(result.rejected)) == (
            1, 0, {"BAD_TIME": 1})


REJECTS = [
    ("m1,2026-11-02T00:30:00+08:00,CT,,61,MOC,CT", "m1", "MISSING_COLUMN",
     "the row has 7 fields, the header 8"),
    ("m2,2026-11-02T00:30:00+08:00,CT,,61,MOC,CT,010,x", "m2", "EXTRA_COLUMN",
     "the row has 9 fields, the header 8"),
    (",2026-11-02T00:30:00+08:00,CT,,61,MOC,CT,010", "rejects.csv:5", "MISSING_FIELD",
     "record_key is empty"),
    ("m4,,CT,,61,MOC,CT,010", "m4", "MISSING_FIELD", "occurred_at is empty"),
    ("k" * 65 + ",2026-11-02T00:30:00+08:00,CT,,61,MOC,CT,010", "k" * 65, "FIELD_TOO_LONG",
     "record_key is longer than 64 characters"),
    ("m6,2026-11-02T00:30:00+08:00,CT,,61,MOC,CT," + "9" * 129, "m6", "FIELD_TOO_LONG",
     "called is longer than 128 characters"),
    ("m7,2026-11-02 00:30,CT,,61,MOC,CT,010", "m7", "BAD_TIME",
     "occurred_at '2026-11-02 00:30' is not an ISO 8601 time with an offset "
     "(e.g. 2026-11-01T08:30:00+08:00)"),
    ("m8,yesterday,CT,,61,MOC,CT,010", "m8", "BAD_TIME",
     "occurred_at 'yesterday' is not an ISO 8601 time with an offset "
     "(e.g. 2026-11-01T08:30:00+08:00)"),
    ("m9,1999-12-31T23:59:59+00:00,CT,,61,MOC,CT,010", "m9", "TOO_OLD",
     "occurred_at 1999-12-31T23:59:59+00:00 is before 2000-01-01"),
    ("m10,2026-11-21T02:00:01+00:00,CT,,61,MOC,CT,010", "m10", "FAR_FUTURE",
     "occurred_at 2026-11-21T02:00:01+00:00 is after 2026-11-21T02:00:00+00:00 "
     "(the load's time plus the allowed future)"),
    ("m11,2026-11-02T00:30:00+08:00,CT,1.5,,SMS-MO,CT,010", "m11", "BAD_QUANTITY",
     "quantity '1.5' is not a whole number (at most 15 digits)"),
    ("m12,2026-11-02T00:30:00+08:00,CT,10000000000001,,SMS-MO,CT,010", "m12",
     "BAD_QUANTITY", "quantity 10000000000001 is over 1000000000000"),
    ("m13,2026-11-02T00:30:00+08:00,CT,-2,,SMS-MO,CT,010", "m13", "NEGATIVE_QUANTITY",
     "quantity -2 is negative"),
    ("m14,2026-11-02T00:30:00+08:00,CT,,6.5,MOC,CT,010", "m14", "BAD_DURATION",
     "duration '6.5' is not a whole number (at most 15 digits)"),
    ("m15,2026-11-02T00:30:00+08:00,CT,,-6,MOC,CT,010", "m15", "BAD_DURATION",
     "duration -6 is negative"),
    ("m16,2026-11-02T00:30:00+08:00,CU,,60,MOC,CU,010", "m16", "NO_RULE",
     "no per_use or duration rule of rule set settle-test 2026.11.1 matches record m16 "
     "(product '', plan '', item '')"),
]


class TestRejections:
    def test_every_reason_has_its_code_reason_and_payload(self, engine, tmp_path):
        """Each bad row is rejected with its code and reason, kept with file and line."""
        path = write_csv(tmp_path / "rejects.csv", [GOOD[0], *[r[0] for r in REJECTS]])
        result = load(engine, path)
        expected_codes: dict[str, int] = {}
        for _, _, code, _ in REJECTS:
            expected_codes[code] = expected_codes.get(code, 0) + 1
        assert (result.read, result.accepted, dict(result.rejected)) == (
            17, 1, expected_codes)
        rows = sorted(table(engine, error_record), key=lambda r: json.loads(r.payload)["line"])
        assert [(r.method, r.key, r.code, r.reason) for r in rows] == [
            ("usage.load", key, code, reason) for _, key, code, reason in REJECTS
        ]
        assert {r.received_at for r in rows} == {NOW} and {r.recycled_at for r in rows} == {
            None}
        payload = json.loads(rows[0].payload)
        assert payload == {
            "file": "rejects.csv", "line": 3, "rule_set": RULE_SET,
            "row": dict(zip(HEADER.split(","), REJECTS[0][0].split(","), strict=False)),
            "columns": HEADER.split(","),
        }
        assert json.loads(rows[1].payload)["extra_fields"] == ["x"]

    def test_limits_come_from_the_configuration(self, engine, tmp_path):
        """A tighter [intake] limit rejects what the default allows."""
        limits = Limits(max_quantity=2)
        result = load(engine, write_csv(tmp_path / "q.csv", [GOOD[2]]), limits=limits)
        assert dict(result.rejected) == {"BAD_QUANTITY": 1}

    def test_a_rejected_row_again_updates_its_open_error(self, engine, tmp_path):
        """Loading a rejected row again keeps one open error per key: the latest attempt."""
        load(engine, write_csv(tmp_path / "a.csv", ["x1,2026-11-02T00:30:00+08:00,CU,,1,MOC,"
                                                    "CU,010"]))
        later = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)
        load(engine, write_csv(tmp_path / "b.csv", ["x1,bad,CU,,1,MOC,CU,010"]), now=later)
        (row,) = table(engine, error_record)
        assert (row.key, row.code, row.received_at, json.loads(row.payload)["file"]) == (
            "x1", "BAD_TIME", later, "b.csv")


class TestBadFiles:
    @pytest.mark.parametrize("content, message", [
        ("", "the file is empty (a header row is required)"),
        ("record_key,payer_id\nr1,CT\n",
         "the header lacks the required column(s) occurred_at (found: record_key, payer_id)"),
        ("record_key,occurred_at,record_key\n", "the header names column(s) record_key twice"),
        ("record_key,,occurred_at\n", "the header has an empty column name"),
    ])
    def test_an_unusable_header_stores_nothing(self, engine, tmp_path, content, message):
        """No usable header: FileFormatError with the reason, and no load row at all."""
        path = tmp_path / "bad.csv"
        path.write_text(content, encoding="utf-8")
        with pytest.raises(FileFormatError) as caught:
            load(engine, path)
        assert str(caught.value).endswith(message)
        assert table(engine, usage_file) == [] and counts(engine) == (0, 0, 0)

    def test_a_line_that_is_not_utf8_rejects_its_row(self, engine, tmp_path):
        """Undecodable bytes reject their row (BAD_ENCODING); the rows around it load."""
        path = tmp_path / "latin1.csv"
        path.write_bytes(("\n".join([HEADER, GOOD[0]]) + "\n").encode()
                         + b"r9,2026-11-02T00:30:00+08:00,CT,,1,MOC,CT,\xe9\n"
                         + (GOOD[1] + "\n").encode())
        result = load(engine, path)
        assert (result.accepted, dict(result.rejected)) == (2, {"BAD_ENCODING": 1})
        (row,) = table(engine, error_record)
        assert (row.key, row.reason) == ("r9", "line 3 is not UTF-8")
        assert json.loads(row.payload)["row"]["called"] == "\ufffd"

    def test_a_header_that_is_not_utf8_is_a_bad_file(self, engine, tmp_path):
        """Undecodable bytes in the header: FileFormatError, nothing stored."""
        path = tmp_path / "latin1.csv"
        path.write_bytes(b"record_key,occurred_at,\xe9\n" + GOOD[0].encode())
        with pytest.raises(FileFormatError, match="the header is not UTF-8"):
            load(engine, path)
        assert table(engine, usage_file) == []

    def test_csv_that_breaks_off_keeps_what_came_before(self, engine, tmp_path):
        """A field over the csv limit ends the load: FAILED, the rows before it kept."""
        path = write_csv(tmp_path / "huge.csv", [*GOOD, "r9,2026-11-02T00:30:00+08:00,CT,,1,"
                                                 "MOC,CT," + "1" * 200_000, GOOD[0]])
        result = load(engine, path)
        assert (result.accepted, result.failure) == (
            4, "the file breaks off after line 6: field larger than field limit (131072)")
        (row,) = table(engine, usage_file)
        assert (row.status, row.note, row.accepted) == ("FAILED", result.failure, 4)


class CrashingStore(FileStore):
    """A FileStore whose process 'dies' (raises) when asked to write batch ``fatal``."""

    def __init__(self, engine, fatal: int) -> None:
        super().__init__(engine)
        self.batches = 0
        self.fatal = fatal

    def write_prepared(self, prepared):
        self.batches += 1
        if self.batches == self.fatal:
            raise Unavailable("the process died")
        return super().write_prepared(prepared)


class TestCrash:
    ROWS = [*GOOD, "bad1,never,CT,,1,MOC,CT,010", "r5,2026-11-05T00:00:00+08:00,CT,,120,MOC,CT,"
            "010", "bad2,2026-11-05T00:00:00+08:00,CU,,120,MOC,CU,010",
            "r6,2026-11-06T00:00:00+08:00,CT,2,,SMS-MO,CT,010"]

    @pytest.mark.parametrize("writers", [1, 2])
    def test_a_reload_after_a_crash_stores_everything_once(self, engine, tmp_path, writers):
        """Crash in batch 3 of 5, reload: each record, charge and error exactly once."""
        path = write_csv(tmp_path / "crash.csv", self.ROWS)
        with pytest.raises(Unavailable):
            load_file(path, CrashingStore(engine, fatal=3), rater(), NOW, batch_size=2,
                      writers=writers)
        if writers == 1:
            assert counts(engine) == (4, 4, 0)  # batches 1 and 2 were committed
        (crashed,) = table(engine, usage_file)
        assert crashed.status == "FAILED" and crashed.note.startswith("stopped: Unavailable(")
        stored_before = counts(engine)[0]
        result = load(engine, path)
        assert (result.accepted + result.duplicates, dict(result.rejected)) == (
            6, {"BAD_TIME": 1, "NO_RULE": 1})
        assert result.duplicates == stored_before
        assert counts(engine) == (6, 6, 2)
        assert sorted(charges_by_key(engine)) == ["r1", "r2", "r3", "r4", "r5", "r6"]
        assert sum(c[3] for c in charges_by_key(engine).values()) == 40 + 12 + 10

    def test_a_batch_is_all_or_nothing(self, engine, tmp_path):
        """A batch that fails leaves none of its records, charges, errors or counts."""
        path = write_csv(tmp_path / "crash.csv", self.ROWS)
        with pytest.raises(Unavailable):
            load_file(path, CrashingStore(engine, fatal=1), rater(), NOW, batch_size=100)
        assert counts(engine) == (0, 0, 0)
        assert table(engine, usage_file)[0].rows_read == 0


class TestConcurrentLoads:
    def test_two_loads_of_one_file_at_once_store_each_record_once(self, engine, tmp_path):
        """Two loaders racing through the same file: every record and charge exactly once."""
        rows = [f"c{i:04d},2026-11-02T00:30:00+08:00,CT,,61,MOC,CT,010" for i in range(400)]
        path = write_csv(tmp_path / "race.csv", rows)
        results: list = []
        barrier = threading.Barrier(2)

        def run() -> None:
            barrier.wait()
            results.append(load(engine, path, batch_size=50))

        threads = [threading.Thread(target=run) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(r.accepted + r.duplicates for r in results) == [400, 400]
        assert sum(r.accepted for r in results) == 400
        assert counts(engine) == (400, 400, 0)
        assert sum(c[3] for c in charges_by_key(engine).values()) == 400 * 12
