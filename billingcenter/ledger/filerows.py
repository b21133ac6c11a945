"""Rows of a usage-file batch as the database stores them: value tuples, or TSV text.

``FileStore`` writes ``file_record`` and ``charge`` rows either with ``executemany``
of plain value tuples (SQLite; MySQL when LOCAL INFILE is off) or, on MySQL, as the
tab-separated text of ``LOAD DATA LOCAL INFILE``: the server parses that format with
less work than INSERT statements.  Values are formatted here exactly as the column
types store them (times as UTC text, units and prices as DECIMAL(20, 6) text), so
both ways store the same bytes.  A file record's charge comes as a ``FileCharge``, its
values already that text (``file_charge`` makes one of a ``Charge``).

The TSV text is rendered without escaping first; only when a value holds a
character the format must escape (backslash, tab, line break, NUL) is the batch
rendered again with every text value escaped.
"""

from __future__ import annotations

import json
import json.encoder
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, NamedTuple

from billingcenter.rating.model import Charge, ChargeKind

UNITS_SCALE = 6  # DECIMAL(20, 6) of charge.units and charge.unit_price
_CACHE_MAX = 10_000

RECORD_COLUMNS = (
    "record_key", "file_id", "line", "occurred_at", "payer_id", "product_code", "item_code",
    "user_id", "quantity", "duration", "attributes", "recorded_at",
)
CHARGE_COLUMNS = (
    "kind", "source_key", "order_id", "payer_id", "product_code", "day", "rule_set",
    "rule_set_version", "rule_id", "units", "unit_price", "amount_fen", "explanation",
    "rated_at", "run_id",
)
# One row of LOAD DATA's default format: tab-separated, one line, NULL is \N.
_TSV_RECORD = "\t".join(["%s"] * len(RECORD_COLUMNS)) + "\n"
_TSV_CHARGE = "\t".join(["%s"] * len(CHARGE_COLUMNS)) + "\n"
# The same with the values of a whole batch filled in (ids and times: never escaped);
# a charge row is a ``FileCharge`` as it is (kind ``record``, no order).
_TSV_RECORD_ROW = "%s\t{file_id}\t%d\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t{now}\n"
_TSV_CHARGE_ROW = "\t".join(["record", "%s", ""] + ["%s"] * 8 + ["%d", "%s", "{now}",
                                                                "{run_id}"]) + "\n"
_NULL = "\\N"
_TSV_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r",
                              "\0": "\\0"})


class FileRecord(NamedTuple):
    """An accepted record of a file, ready to store (times aware UTC)."""

    record_key: str
    line: int
    occurred_at: datetime
    payer_id: str
    product_code: str
    item_code: str
    user_id: str
    quantity: int
    duration: int | None
    attributes: str  # JSON object of the further columns


class FileCharge(NamedTuple):
    """The charge of a file record as stored: kind ``record``, no order, values as text.

    ``day`` is ISO text, ``units`` and ``unit_price`` DECIMAL(20, 6) text
    (``decimal_text``), ``explanation`` the stored JSON (sorted keys, compact).
    """

    source_key: str
    payer_id: str
    product_code: str
    day: str
    rule_set: str
    rule_set_version: str
    rule_id: str
    units: str
    unit_price: str
    amount_fen: int
    explanation: str


def compact_json(sort_keys: bool = False) -> Callable[[Mapping[str, str]], str]:
    """An encoder of flat text mappings: JSON, no spaces, non-ASCII kept.

    Reuses one C encoder object (``json.encoder.c_make_encoder``) where the runtime has
    one: ``JSONEncoder.encode`` builds a new one per call, a third of the cost of
    encoding a small object.
    """
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return json.JSONEncoder(ensure_ascii=False, sort_keys=sort_keys,
                                separators=(",", ":")).encode
    encode = make(None, None, json.encoder.encode_basestring, None, ":", ",", sort_keys,
                  False, True)
    return lambda value: "".join(encode(value, 0))


# The stored explanation: a JSON object, sorted keys, no spaces (as ``ledger.charges``).
_explanation = compact_json(sort_keys=True)
_decimals: dict[Decimal, str] = {}
_days: dict[date, str] = {}


def text_time(moment: datetime) -> str:
    """An aware datetime as the stored UTC text of ``UtcDateTime`` (both databases)."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def record_rows(records: Sequence[FileRecord], file_id: int, now: str) -> list[tuple[Any, ...]]:
    """``file_record`` value tuples (``RECORD_COLUMNS``) of records; ``now`` as ``text_time``."""
    return [
        (r[0], file_id, r[1], r[2].isoformat(" ", "microseconds")[:26],  # aware UTC: no offset
         *r[3:], now)
        for r in records
    ]


def file_charge(charge: Charge) -> FileCharge:
    """A file record's charge as stored; ValueError if it is not one (kind, order)."""
    if charge.kind is not ChargeKind.RECORD or charge.order_id:
        raise ValueError(f"not the charge of a file record: {charge.kind} {charge.order_id!r}")
    return FileCharge(
        charge.source_key, charge.payer_id, charge.product_code, day_text(charge.day),
        charge.rule_set, charge.rule_set_version, charge.rule_id, decimal_text(charge.units),
        decimal_text(charge.unit_price), charge.amount_fen, _explanation(charge.explanation),
    )


def charge_rows(charges: Sequence[FileCharge], now: str, run_id: str
                ) -> list[tuple[Any, ...]]:
    """``charge`` value tuples (``CHARGE_COLUMNS``) of charges; ``now`` as ``text_time``."""
    return [("record", c[0], "", *c[1:], now, run_id) for c in charges]


def record_tsv(records: Sequence[FileRecord], file_id: int, now: str) -> str:
    """``file_record`` rows of records as LOAD DATA text; ``now`` as ``text_time``.

    The common case is one formatting per row, straight from the record, with the
    load's constants written into the template; a batch with a value to escape is
    rendered again through ``record_rows``.
    """
    template = _TSV_RECORD_ROW.replace("{file_id}", str(file_id)).replace("{now}", now)
    null = _NULL
    text = "".join([
        template % (r[0], r[1], r[2].isoformat(" ", "microseconds")[:26], r[3], r[4], r[5],
                    r[6], r[7], null if r[8] is None else r[8], r[9])
        for r in records
    ])
    nulls = [r[8] for r in records].count(None)
    if _plain(text, len(RECORD_COLUMNS), len(records), nulls):
        return text
    return _tsv(_TSV_RECORD, len(RECORD_COLUMNS), record_rows(records, file_id, now))


def charge_tsv(charges: Sequence[FileCharge], now: str, run_id: str) -> str:
    """``charge`` rows of charges as LOAD DATA text (as ``record_tsv`` does it)."""
    template = _TSV_CHARGE_ROW.replace("{now}", now).replace("{run_id}", run_id)
    text = "".join([template % c for c in charges])
    if _plain(text, len(CHARGE_COLUMNS), len(charges), 0):
        return text
    return _tsv(_TSV_CHARGE, len(CHARGE_COLUMNS), charge_rows(charges, now, run_id))


def decimal_text(value: Decimal) -> str:
    """The text of a units or price value that DECIMAL(20, 6) stores exactly."""
    text = _decimals.get(value)
    if text is None:
        exponent = value.as_tuple().exponent
        if not isinstance(exponent, int) or (exponent < -UNITS_SCALE
                                             and value != round(value, UNITS_SCALE)):
            raise ValueError(f"{value} does not fit DECIMAL(20, {UNITS_SCALE}) exactly")
        text = str(value)
        if len(_decimals) < _CACHE_MAX:
            _decimals[value] = text
    return text


def day_text(day: date) -> str:
    """A business day as the stored DATE text (memoised: a file spans few days)."""
    text = _days.get(day)
    if text is None:
        text = day.isoformat()
        if len(_days) < _CACHE_MAX:
            _days[day] = text
    return text


def _plain(text: str, width: int, rows: int, nulls: int) -> bool:
    """Whether ``rows`` rows of LOAD DATA text need no escaping: the tabs and line breaks
    are exactly the format's, the only backslashes those of the ``nulls`` NULLs."""
    return (text.count("\t") == (width - 1) * rows and text.count("\n") == rows
            and text.count("\\") == nulls and "\r" not in text and "\0" not in text)


def _tsv(template: str, width: int, rows: list[tuple[Any, ...]]) -> str:
    """``rows`` in LOAD DATA's default format, text escaped where it needs it.

    Rows are rendered without escaping first; when no value held a tab, a line break,
    a backslash or a NUL, that is the answer.  Otherwise every text value is escaped
    and the rows rendered again.
    """
    plain = []
    nulls = 0
    for row in rows:
        if None in row:
            nulls += row.count(None)
            row = tuple(_NULL if v is None else v for v in row)
        plain.append(row)
    text = "".join([template % row for row in plain])
    if _plain(text, width, len(rows), nulls):
        return text
    escaped = [tuple(_NULL if v is None else v.translate(_TSV_ESCAPES) if type(v) is str else v
                     for v in row) for row in rows]
    return "".join([template % row for row in escaped])
