"""Usage-record files: read, validate, drop duplicates, rate, store (``usage load``).

The file format is documented in ``conf/usage-file.md``.  A load streams the file
through ``csv`` in batches: the main thread checks and rates the rows of a batch
while a writer thread stores the previous one (``FileStore.write_batch``, one
transaction per batch), so memory stays bounded by two batches whatever the file's
size.  Each row ends up exactly one of:

* accepted: stored in ``file_record`` with its charge (kind ``record``, source key =
  ``record_key``), rated by the version of the rule set in force at ``occurred_at``;
* a duplicate: its key was stored before (earlier in this file, by an earlier load, or
  by a crashed run of this one): counted, not stored again, not an error;
* rejected: kept in the error store (method ``usage.load``) with a code from
  ``REJECT_CODES``, a reason, and the row as JSON with the file name and line number.

A key counts as seen once a record with it was accepted: a rejected row does not make
a later, corrected row with the same key a duplicate.
"""

from __future__ import annotations

import bisect
import csv
import hashlib
import json
import operator
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn
from zoneinfo import ZoneInfo

import attrs

from billingcenter.errors import NoRule
from billingcenter.intake import ATTRIBUTES_MAX, KEY_MAX, TEXT_MAX, Limits
from billingcenter.ledger.files import (
    DONE,
    FAILED,
    Batch,
    FileRecord,
    FileStore,
    Rejection,
    Written,
    compact_json,
)
from billingcenter.model import Order
from billingcenter.rating.model import (
    Charge,
    ChargeKind,
    RatingError,
    RuleBook,
    RuleSet,
    UsageFacts,
)
from billingcenter.rating.usage import rate_usage

BATCH_SIZE = 2000
WRITERS = 2  # batches written at once (connections), while the next is built
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

# The stand-in order of file records (they belong to no order): activated long ago.
_NO_ORDER = ""
_ACTIVATED = datetime(2000, 1, 1, tzinfo=UTC)
_ORDER_CACHE = 10_000
_from_iso = datetime.fromisoformat
_json = compact_json()


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


class Rater:
    """Rates checked rows with the version of one rule set in force at each row's time."""

    def __init__(self, book: RuleBook, rule_set: str, tz: ZoneInfo) -> None:
        self.rule_set = rule_set
        self._book = book
        self._tz = tz
        versions = [v for v in book.versions if v.name == rule_set]
        # Between two consecutive effective times the version in force cannot change.
        bounds = {v.effective_from for v in versions}
        bounds |= {v.effective_to for v in versions if v.effective_to is not None}
        self._bounds = sorted(bounds)
        self._segments: dict[int, RuleSet | None] = {}
        self._orders: dict[tuple[str, str, str, str], Order] = {}

    @property
    def known(self) -> bool:
        """Whether any published version of the rule set exists."""
        return bool(self._bounds)

    def version_at(self, moment: datetime) -> RuleSet | None:
        """The version in force at ``moment`` (cached per span between effective times)."""
        segment = bisect.bisect_right(self._bounds, moment)
        if segment not in self._segments:
            self._segments[segment] = self._book.in_force(self.rule_set, moment)
        return self._segments[segment]

    def rate(self, key: str, occurred_at: datetime, payer: str, product: str, item: str,
             user: str, quantity: int, attributes: dict[str, str]) -> Charge:
        """The charge of a checked row; ``Rejected`` (NO_RULE) when nothing prices it."""
        version = self.version_at(occurred_at)
        if version is None:
            raise Rejected(NO_RULE, f"no published version of rule set {self.rule_set} is "
                           f"in force at {occurred_at.isoformat()}")
        order = self._order(payer, user, product, attributes.get(PLAN_COLUMN, ""))
        facts = UsageFacts(key, order, item, user, quantity, occurred_at, attributes)
        try:
            return rate_usage(facts, self._tz, version, ChargeKind.RECORD)
        except RatingError as exc:
            raise Rejected(NO_RULE, str(exc)) from exc

    def _order(self, payer: str, user: str, product: str, plan: str) -> Order:
        """The stand-in order of a file record: no id, the record's payer and product."""
        found = self._orders.get((payer, user, product, plan))
        if found is None:
            if len(self._orders) >= _ORDER_CACHE:
                self._orders.clear()
            found = Order(_NO_ORDER, payer, user, product, plan, _ACTIVATED)
            self._orders[(payer, user, product, plan)] = found
        return found


@attrs.define
class Tally:
    """Running counts of a load or a recycle run."""

    read: int = 0
    accepted: int = 0
    duplicates: int = 0
    amount_fen: int = 0
    closed: int = 0
    rejected: Counter[str] = attrs.field(factory=Counter)

    def add(self, written: Written) -> None:
        """Add what a batch stored."""
        self.accepted += written.accepted
        self.duplicates += written.duplicates
        self.amount_fen += written.amount_fen
        self.closed += written.closed


@attrs.frozen
class LoadResult:
    """The outcome of ``load_file``: counts, money, time."""

    file_id: int
    name: str
    read: int
    accepted: int
    duplicates: int
    rejected: Mapping[str, int]  # code -> rows
    amount_fen: int
    seconds: float
    earlier_loads: tuple[int, ...] = ()  # ids of earlier loads of the same bytes
    failure: str = ""  # set when the file broke off (bad encoding or CSV) mid-way

    @property
    def rejected_total(self) -> int:
        """Rows rejected, all codes."""
        return sum(self.rejected.values())


class BatchBuilder:
    """Turns rows into batches: checks, drops repeated keys, rates.

    A key accepted in this batch or in one of the ``remember`` batches before it is a
    duplicate here: those batches may still be in flight, and the first row of a key
    must win even if a later batch happens to commit first.
    """

    def __init__(self, rater: Rater, source: str, tally: Tally, remember: int = 2) -> None:
        self._rater = rater
        self._source = source
        self._tally = tally
        self._earlier: deque[set[str]] = deque(maxlen=remember)
        self._recent: set[str] = set()
        self.reset()

    def reset(self) -> None:
        """Start a new batch."""
        self.records: list[FileRecord] = []
        self.charges: list[Charge] = []
        self.rejections: list[Rejection] = []
        self.closes: dict[int, str] = {}
        self._keys: set[str] = set()
        self._read = 0
        self._duplicates = 0

    def add(self, checker: RowChecker, fields: list[str], line: int, names: Sequence[str],
            error_key: str = "", closes: int | None = None, source: str = "") -> None:
        """Check, rate and queue one row.

        For ``errors recycle``: ``error_key`` is the key of the open error a rejection
        updates, ``closes`` the id of the error that acceptance settles, ``source`` the
        file the row came from (default: the builder's).
        """
        self._read += 1
        self._tally.read += 1
        try:
            key, at, payer, product, item, user, quantity, seconds, extras = checker.check(fields)
            if key in self._keys or key in self._recent:
                self._duplicates += 1
                if closes is not None:
                    self.closes[closes] = key
                return
            stored = _json(extras)
            if seconds is not None:
                extras["duration"] = str(seconds)
            charge = self._rater.rate(key, at, payer, product, item, user, quantity, extras)
        except Rejected as rejected:
            self._reject(rejected, fields, line, names, error_key, source)
            return
        self._keys.add(key)
        self.records.append(
            FileRecord(key, line, at, payer, product, item, user, quantity, seconds, stored)
        )
        self.charges.append(charge)
        if closes is not None:
            self.closes[closes] = key

    def take(self) -> Batch:
        """The batch built so far; a new one starts."""
        batch = Batch(self.records, self.charges, self.rejections, self.closes,
                      self._read, self._duplicates)
        if self._earlier.maxlen:
            self._earlier.append(self._keys)
            self._recent = set().union(*self._earlier)
        self.reset()
        return batch

    @property
    def size(self) -> int:
        """Rows in the batch so far."""
        return self._read

    def reject(self, rejected: Rejected, fields: list[str], line: int, names: Sequence[str],
               error_key: str = "") -> None:
        """Queue a row rejected before it could be checked (e.g. not UTF-8)."""
        self._read += 1
        self._tally.read += 1
        self._reject(rejected, fields, line, names, error_key)

    def _reject(self, rejected: Rejected, fields: list[str], line: int, names: Sequence[str],
                error_key: str, source: str = "") -> None:
        self._tally.rejected[rejected.code] += 1
        width = len(names)
        row = dict(zip(names, fields[:width], strict=False))
        source = source or self._source
        payload: dict[str, Any] = {"file": source, "line": line,
                                   "rule_set": self._rater.rule_set, "row": row}
        if rejected.code == EXTRA_COLUMN:
            payload["extra_fields"] = fields[width:]
        elif rejected.code == MISSING_COLUMN:
            payload["columns"] = list(names)  # the row dict alone would hide the gap
        key = error_key or row.get("record_key") or f"{source}:{line}"
        self.rejections.append(Rejection(
            key, rejected.code, rejected.reason,
            json.dumps(payload, ensure_ascii=False),
        ))


def file_digest(path: Path) -> str:
    """The SHA-256 of a file's bytes (hex)."""
    with path.open("rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()


def load_file(
    path: Path,
    store: FileStore,
    rater: Rater,
    now: datetime,
    limits: Limits = DEFAULT_LIMITS,
    batch_size: int = BATCH_SIZE,
    writers: int = WRITERS,
    clock: Callable[[], float] = time.perf_counter,
) -> LoadResult:
    """Load one usage-record file (see the module docstring); FileFormatError if unusable.

    A file whose header is unusable stores nothing.  A file whose CSV breaks off later
    (e.g. a field over ``csv.field_size_limit``) keeps the rows before the break, is
    marked FAILED, and the result says why; loading the corrected file again stores only
    what is missing.
    """
    started = clock()
    digest = file_digest(path)
    earlier = tuple(load.file_id for load in store.loads_of(digest))
    with path.open("rb") as stream:
        lines = Lines(stream)
        rows = csv.reader(lines)
        try:
            header = parse_header(_first_row(rows, lines, path))
        except FileFormatError as exc:
            raise FileFormatError(str(exc) if str(exc).startswith(f"{path}:")
                                  else f"{path}: {exc}") from None
        checker = RowChecker(header, now, limits)
        file_id = store.start(str(path), digest, rater.rule_set, now)
        tally = Tally()
        try:
            failure = _stream(rows, lines, checker, header,
                              BatchBuilder(rater, path.name, tally, remember=writers),
                              lambda batch: store.write_batch(file_id, batch, now), tally,
                              batch_size, writers)
        except BaseException as exc:
            _give_up(store, file_id, exc, now)
            raise
    store.finish(file_id, FAILED if failure else DONE, failure, now)
    return LoadResult(
        file_id, str(path), tally.read, tally.accepted, tally.duplicates,
        dict(tally.rejected), tally.amount_fen, clock() - started, earlier, failure,
    )


def _give_up(store: FileStore, file_id: int, exc: BaseException, now: datetime) -> None:
    """Mark a load FAILED after an error, if the database still lets us."""
    try:
        store.finish(file_id, FAILED, f"stopped: {exc!r}"[:1000], now)
    except Exception:  # noqa: BLE001 -- the original error is the one to report
        pass


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


def _first_row(rows: Iterator[list[str]], lines: Lines, path: Path) -> list[str]:
    try:
        for fields in rows:
            if fields:
                if lines.bad:
                    raise FileFormatError(f"{path}: the header is not UTF-8")
                return fields
    except csv.Error as exc:
        raise FileFormatError(f"{path}: cannot read the header: {exc}") from exc
    raise FileFormatError(f"{path}: the file is empty (a header row is required)")


def _stream(
    rows: Any,
    lines: Lines,
    checker: RowChecker,
    header: Header,
    builder: BatchBuilder,
    write: Callable[[Batch], Written],
    tally: Tally,
    batch_size: int,
    writers: int,
) -> str:
    """Feed every row through ``builder``, writing full batches behind; the failure, if any.

    Up to ``writers`` batches are written at once, each in its own transaction, while
    the next one is built.
    """
    names = header.names
    failure = ""
    last = rows.line_num
    with ThreadPoolExecutor(max_workers=writers, thread_name_prefix="usage-writer") as pool:
        pending: deque[Future[Written]] = deque()
        try:
            for fields in rows:
                first, last = last + 1, rows.line_num
                if not fields:
                    continue  # a blank line
                if lines.bad and (bad := lines.any_bad(first, last)) is not None:
                    builder.reject(Rejected(BAD_ENCODING, f"line {bad} is not UTF-8"),
                                   fields, last, names)
                else:
                    builder.add(checker, fields, last, names)
                if builder.size >= batch_size:
                    if len(pending) >= writers:
                        tally.add(pending.popleft().result())
                    pending.append(pool.submit(write, builder.take()))
        except csv.Error as exc:
            failure = f"the file breaks off after line {rows.line_num}: {exc}"
        batch = builder.take()
        if batch.read:
            pending.append(pool.submit(write, batch))
        while pending:
            tally.add(pending.popleft().result())
    return failure
