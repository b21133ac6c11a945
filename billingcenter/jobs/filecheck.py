"""Checking the rows of a usage-record file: its header, each row's values, its lines.

The format is documented in ``conf/usage-file.md``.  ``RowChecker.check`` turns the
fields of a row into the values of an accepted record or raises ``Rejected`` with
one of ``REJECT_CODES`` and a reason; ``Lines`` feeds ``csv`` the file's lines and
notes those that are not UTF-8, so that their row, not the file, is rejected.
"""

from __future__ import annotations

import csv
import operator
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import attrs

from billingcenter.errors import NoRule
from billingcenter.intake import ATTRIBUTES_MAX, KEY_MAX, TEXT_MAX, Limits

DEFAULT_LIMITS = Limits()
REQUIRED_COLUMNS = ("record_key", "occurred_at")
OPTIONAL_COLUMNS = (
    "payer_id", "product_code", "item_code", "user_id", "quantity", "duration",
)
KNOWN_COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS
PLAN_COLUMN = "plan_code"  # a further column that is also the stand-in order's plan

BAD_ENCODING = "BAD_ENCODING"  # a line of the row is not UTF-8
MISSING_COLUMN = "MISSING_COLUMN"  # the row has fewer fields than the header
EXTRA_COLUMN = "EXTRA_COLUMN"  # the row has more fields than the header
MISSING_FIELD = "MISSING_FIELD"  # record_key or occurred_at is empty
FIELD_TOO_LONG = "FIELD_TOO_LONG"  # a key over 64 characters, other values over 128
BAD_TIME = "BAD_TIME"  # occurred_at is not ISO 8601 with an offset
TOO_OLD = "TOO_OLD"  # occurred_at is before [intake] earliest
FAR_FUTURE = "FAR_FUTURE"  # occurred_at is more than [intake] max_future after the load
BAD_QUANTITY = "BAD_QUANTITY"  # quantity is not a whole number, or over the maximum
NEGATIVE_QUANTITY = "NEGATIVE_QUANTITY"
BAD_DURATION = "BAD_DURATION"  # duration is not a whole number of seconds >= 0
NO_RULE = NoRule.code  # no version in force at occurred_at, or no rule of it prices the row
REJECT_CODES = (
    BAD_ENCODING, MISSING_COLUMN, EXTRA_COLUMN, MISSING_FIELD, FIELD_TOO_LONG, BAD_TIME, TOO_OLD,
    FAR_FUTURE, BAD_QUANTITY, NEGATIVE_QUANTITY, BAD_DURATION, NO_RULE,
)
_from_iso = datetime.fromisoformat


class FileFormatError(Exception):
    """The file cannot be read as a usage-record file; the message says where and why."""


class Rejected(Exception):
    """A row is rejected: ``code`` (one of ``REJECT_CODES``) and a reason."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


@attrs.frozen
class Header:
    """The columns of a file: where each known column is, and the further ones."""

    names: tuple[str, ...]
    positions: tuple[int, ...]  # of KNOWN_COLUMNS; an absent one points past the row
    extras: tuple[tuple[str, int], ...]


def parse_header(fields: Sequence[str]) -> Header:
    """The header of a file; FileFormatError when it cannot be one."""
    names = tuple(name.strip() for name in fields)
    for name in names:
        if not name:
            raise FileFormatError("the header has an empty column name")
        if len(name) > TEXT_MAX:
            raise FileFormatError(f"column name {name[:40]!r}... is over {TEXT_MAX} characters")
    doubled = sorted({name for name in names if names.count(name) > 1})
    if doubled:
        raise FileFormatError(f"the header names column(s) {', '.join(doubled)} twice")
    missing = [name for name in REQUIRED_COLUMNS if name not in names]
    if missing:
        raise FileFormatError(
            f"the header lacks the required column(s) {', '.join(missing)} "
            f"(found: {', '.join(names)})"
        )
    extras = tuple((name, i) for i, name in enumerate(names) if name not in KNOWN_COLUMNS)
    if len(extras) > ATTRIBUTES_MAX:
        raise FileFormatError(f"more than {ATTRIBUTES_MAX} further columns (attributes)")
    width = len(names)
    positions = tuple(names.index(n) if n in names else width for n in KNOWN_COLUMNS)
    return Header(names, positions, extras)


class RowChecker:
    """Checks a row of fields against a header; the values of an accepted row."""

    def __init__(self, header: Header, now: datetime, limits: Limits) -> None:
        self._width = len(header.names)
        self._names = header.names
        self._get = operator.itemgetter(*header.positions)
        self._extras = header.extras
        self._earliest = limits.earliest.astimezone(UTC)
        self._latest = (now + limits.max_future).astimezone(UTC)
        self._max_quantity = limits.max_quantity

    def check(
        self, fields: list[str]
    ) -> tuple[str, datetime, str, str, str, str, int, int | None, dict[str, str]]:
        """(key, occurred_at UTC, payer, product, item, user, quantity, duration, attributes).

        ``attributes`` are the non-empty further columns.  Raises ``Rejected``.
        ``fields`` gets one empty field appended (where absent columns point).
        """
        if len(fields) != self._width:
            _wrong_width(len(fields), self._width)
        fields.append("")
        key, moment, payer, product, item, user, quantity, duration = self._get(fields)
        if (not key or not moment or len(key) > KEY_MAX or len(payer) > KEY_MAX
                or max(map(len, fields)) > TEXT_MAX):
            _bad_text(key, moment, payer, fields, self._names)
        try:
            parsed = _from_iso(moment)
        except ValueError:
            parsed = None
        if parsed is None or parsed.tzinfo is None:
            raise Rejected(BAD_TIME, f"occurred_at {moment[:40]!r} is not an ISO 8601 time "
                           "with an offset (e.g. 2026-11-01T08:30:00+08:00)")
        occurred_at = parsed.astimezone(UTC)
        if not self._earliest <= occurred_at <= self._latest:
            self._out_of_range(moment, occurred_at)
        if not quantity:
            count = 1
        elif quantity.isdigit() and quantity.isascii() and len(quantity) < 16:
            count = int(quantity)
            if count > self._max_quantity:
                raise Rejected(BAD_QUANTITY, f"quantity {count} is over {self._max_quantity}")
        else:
            _not_whole(quantity, "quantity", BAD_QUANTITY, NEGATIVE_QUANTITY)
        seconds: int | None = None
        if duration:
            if not (duration.isdigit() and duration.isascii() and len(duration) < 16):
                _not_whole(duration, "duration", BAD_DURATION, BAD_DURATION)
            seconds = int(duration)
        attributes = {name: fields[i] for name, i in self._extras if fields[i]}
        return key, occurred_at, payer, product, item, user, count, seconds, attributes

    def _out_of_range(self, text: str, moment: datetime) -> NoReturn:
        if moment < self._earliest:
            raise Rejected(TOO_OLD, f"occurred_at {text} is before {self._earliest.date()}")
        raise Rejected(FAR_FUTURE, f"occurred_at {text} is after {self._latest.isoformat()}"
                       " (the load's time plus the allowed future)")


def _bad_text(key: str, moment: str, payer: str, fields: list[str], names: Sequence[str]
              ) -> NoReturn:
    """Raise the rejection of an empty required value or a value that is too long."""
    if not key:
        raise Rejected(MISSING_FIELD, "record_key is empty")
    if not moment:
        raise Rejected(MISSING_FIELD, "occurred_at is empty")
    if len(key) > KEY_MAX or len(payer) > KEY_MAX:
        name = "record_key" if len(key) > KEY_MAX else "payer_id"
        raise Rejected(FIELD_TOO_LONG, f"{name} is longer than {KEY_MAX} characters")
    name = next(name for name, value in zip(names, fields, strict=False) if len(value) > TEXT_MAX)
    raise Rejected(FIELD_TOO_LONG, f"{name} is longer than {TEXT_MAX} characters")


def _not_whole(text: str, name: str, bad: str, negative: str) -> NoReturn:
    """Raise the rejection of a value that is not a whole number >= 0 (ASCII digits)."""
    if text[:1] == "-" and text[1:].isdigit() and text.isascii():
        raise Rejected(negative, f"{name} {text[:40]} is negative")
    raise Rejected(bad, f"{name} {text[:40]!r} is not a whole number (at most 15 digits)")


def _wrong_width(found: int, width: int) -> NoReturn:
    if found < width:
        raise Rejected(MISSING_COLUMN, f"the row has {found} fields, the header {width}")
    raise Rejected(EXTRA_COLUMN, f"the row has {found} fields, the header {width}")


class Lines:
    """The lines of a binary file as text for ``csv``; lines that are not UTF-8 noted.

    A line that does not decode is passed on with U+FFFD in place of the bad bytes and
    its number kept in ``bad``, so the row it belongs to is rejected rather than the
    whole file.  A BOM at the start is dropped.
    """

    def __init__(self, stream: Any) -> None:
        self._lines = iter(stream)
        self.number = 0
        self.bad: set[int] = set()

    def __iter__(self) -> Iterator[str]:
        for raw in self._lines:
            self.number += 1
            if self.number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            try:
                yield raw.decode()
            except UnicodeDecodeError:
                self.bad.add(self.number)
                yield raw.decode(errors="replace")

    def any_bad(self, first: int, last: int) -> int | None:
        """The first bad line number in [first, last], or None."""
        return next((n for n in range(first, last + 1) if n in self.bad), None)


def first_row(rows: Iterator[list[str]], lines: Lines, path: Path) -> list[str]:
    """The header row: the first non-blank row; FileFormatError if there is none."""
    try:
        for fields in rows:
            if fields:
                if lines.bad:
                    raise FileFormatError(f"{path}: the header is not UTF-8")
                return fields
    except csv.Error as exc:
        raise FileFormatError(f"{path}: cannot read the header: {exc}") from exc
    raise FileFormatError(f"{path}: the file is empty (a header row is required)")
