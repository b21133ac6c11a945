"""Rows of a usage-file batch: value tuples and LOAD DATA text."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from billingcenter.ledger.filerows import (
    FileCharge,
    FileRecord,
    charge_rows,
    charge_tsv,
    decimal_text,
    file_charge,
    record_rows,
    record_tsv,
)
from billingcenter.rating.model import Charge, ChargeKind

NOW = "2026-11-20 00:00:00.000000"
AT = datetime(2026, 11, 2, 1, 2, 3, 400, tzinfo=UTC)


def record(key="r1", duration=None, attributes='{"a":"b"}'):
    """A file record of key ``key``."""
    return FileRecord(key, 2, AT, "CT", "", "", "", 1, duration, attributes)


class TestRecordTsv:
    def test_plain_values_are_one_tab_separated_line(self):
        """No escaping needed: the values as they are, NULL as \\N."""
        assert record_tsv([record(), record("r2", 61)], 7, NOW) == (
            f"r1\t7\t2\t2026-11-02 01:02:03.000400\tCT\t\t\t\t1\t\\N\t{{\"a\":\"b\"}}\t{NOW}\n"
            f"r2\t7\t2\t2026-11-02 01:02:03.000400\tCT\t\t\t\t1\t61\t{{\"a\":\"b\"}}\t{NOW}\n"
        )

    def test_tabs_line_breaks_backslashes_and_nul_are_escaped(self):
        """Every value that holds a character of the format is escaped; NULL stays \\N."""
        records = [record("a\tb", None, '{"c":"x\\\\N\\n"}'), record("c\nd\r\0")]
        lines = record_tsv(records, 7, NOW).split("\n")
        assert lines[0].split("\t")[0] == "a\\tb"
        assert lines[0].split("\t")[9:11] == ["\\N", '{"c":"x\\\\\\\\N\\\\n"}']
        assert lines[1].split("\t")[0] == "c\\nd\\r\\0"
        assert lines[2:] == [""]


    def test_the_tuples_hold_the_same_values(self):
        """The executemany rows (SQLite) are the values of the text, NULL as None."""
        (row,) = record_rows([record()], 7, NOW)
        assert row == ("r1", 7, 2, "2026-11-02 01:02:03.000400", "CT", "", "", "", 1, None,
                       '{"a":"b"}', NOW)


class TestFileCharge:
    def test_a_charge_as_stored(self):
        """Day and DECIMAL as text, the explanation as sorted compact JSON."""
        charge = Charge(ChargeKind.RECORD, "r1", "", "CT", "", date(2026, 11, 2), "s", "1",
                        "moc", Decimal(2), Decimal("0.055"), 11, {"units": "2", "mode": "é"})
        assert file_charge(charge) == FileCharge("r1", "CT", "", "2026-11-02", "s", "1", "moc",
                                                 "2", "0.055", 11, '{"mode":"é","units":"2"}')

    @pytest.mark.parametrize("kind,order", [(ChargeKind.USAGE, ""), (ChargeKind.RECORD, "o1")])
    def test_only_the_charge_of_a_file_record(self, kind, order):
        """Kind record and no order, or refused."""
        charge = Charge(kind, "r1", order, "CT", "", date(2026, 11, 2), "s", "1", "moc",
                        Decimal(2), Decimal("0.055"), 11, {})
        with pytest.raises(ValueError, match="not the charge of a file record"):
            file_charge(charge)


class TestChargeTsv:
    def test_a_charge_as_stored(self):
        """Kind, day, DECIMAL text and the explanation as sorted compact JSON."""
        charge = file_charge(Charge(
            ChargeKind.RECORD, "r1", "", "CT", "", date(2026, 11, 2), "s", "1", "moc",
            Decimal(2), Decimal("0.055"), 11, {"units": "2", "mode": "x"}))
        assert charge_tsv([charge], NOW, "usage-load-7") == (
            "record\tr1\t\tCT\t\t2026-11-02\ts\t1\tmoc\t2\t0.055\t11\t"
            f'{{"mode":"x","units":"2"}}\t{NOW}\tusage-load-7\n'
        )
        (row,) = charge_rows([charge], NOW, "usage-load-7")
        assert row == ("record", "r1", "", "CT", "", "2026-11-02", "s", "1", "moc", "2",
                       "0.055", 11, '{"mode":"x","units":"2"}', NOW, "usage-load-7")

    def test_a_value_with_a_tab_is_escaped(self):
        """A tab in a charge's rule id is escaped; the other rows are unchanged."""
        charge = FileCharge("r1", "CT", "", "2026-11-02", "s", "1", "a\tb", "2", "0.055", 11,
                            "{}")
        fields = charge_tsv([charge, charge], NOW, "x").split("\n")[1].split("\t")
        assert fields[8] == "a\\tb" and len(fields) == 15

    def test_a_value_decimal_cannot_store_exactly_is_refused(self):
        """DECIMAL(20, 6) would round 0.0000001: refused rather than stored wrong."""
        with pytest.raises(ValueError, match="does not fit"):
            decimal_text(Decimal("0.0000001"))
