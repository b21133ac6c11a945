"""Recycling of error records (错单回收): try refused records again once fixed.

Open (not yet recycled) error records are tried again, oldest first, by method:

* ``installOrder``, ``updateOrderState``, ``insertServiceOp`` -- in that order, so an
  order recycled first lets its events and usage through -- are re-submitted from
  their stored payload through the same ledger methods the service uses
  (``add_order``, ``add_state_event``, ``add_usage``).
* ``usage.load`` rows are checked and rated again (``billingcenter.jobs.files``) with the
  rule set of their load (or ``rule_set``), as stored or as corrected in a fix file
  (rows matched by ``record_key``), and stored with their charge.

A record that now succeeds gets ``recycled_at``; one already stored meanwhile counts
as done too.  One that fails again stays open, **updated in place** to the latest
attempt (code, reason, ``received_at``, and the corrected payload if one was given):
no new error row.  Recycling is idempotent: the ledger answers a stored record as a
repeat and a stored file record is a duplicate, so running it twice, or after a crash
between storing and settling, never stores anything twice.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import attrs

from billingcenter.errors import BillingError, Unavailable
from billingcenter.intake import Limits
from billingcenter.jobs.filecheck import (
    DEFAULT_LIMITS,
    FileFormatError,
    Lines,
    RowChecker,
    parse_header,
)
from billingcenter.jobs.files import BATCH_SIZE, BatchBuilder, Rater, Tally
from billingcenter.ledger.errorstore import ErrorStore, StoredError
from billingcenter.ledger.files import DONE, LOAD_METHOD, FileStore
from billingcenter.ledger.port import Ledger
from billingcenter.model import Order, StateEvent, StateKind, Usage
from billingcenter.rating.model import RuleBook

INTAKE_METHODS = ("installOrder", "updateOrderState", "insertServiceOp")
RECYCLABLE = (*INTAKE_METHODS, LOAD_METHOD)
PAGE = 1000


@attrs.frozen
class Fix:
    """A corrected row from a fix file."""

    names: tuple[str, ...]
    fields: tuple[str, ...]
    line: int


@attrs.frozen
class Fixes:
    """The rows of a fix file by ``record_key`` (the last row of a key wins)."""

    source: str
    rows: Mapping[str, Fix]


@attrs.define
class RecycleResult:
    """Per method: recycled, failed again (by code), skipped (not recyclable)."""

    recycled: Counter[str] = attrs.field(factory=Counter)
    failed: Counter[tuple[str, str]] = attrs.field(factory=Counter)
    skipped: Counter[str] = attrs.field(factory=Counter)
    fixes_used: int = 0

    @property
    def failed_total(self) -> int:
        """Records that failed again."""
        return sum(self.failed.values())


@attrs.frozen
class Recycler:
    """Everything a recycle run needs: the stores, the rules, the clock."""

    errors: ErrorStore
    files: FileStore
    ledger: Ledger
    book: RuleBook
    tz: ZoneInfo
    now: datetime
    limits: Limits = DEFAULT_LIMITS
    batch_size: int = BATCH_SIZE

    def run(
        self,
        method: str | None = None,
        code: str | None = None,
        ids: Iterable[int] | None = None,
        rule_set: str | None = None,
        fixes: Fixes | None = None,
    ) -> RecycleResult:
        """Recycle the open errors chosen by the filters (see the module docstring)."""
        result = RecycleResult()
        wanted = sorted(set(ids)) if ids is not None else None
        for current in [method] if method is not None else RECYCLABLE:
            for page in self._pages(current, code, wanted):
                if current == LOAD_METHOD:
                    _FileRecycler(self, result, rule_set, fixes).run(page)
                elif current in INTAKE_METHODS:
                    for error in page:
                        self._intake(error, result)
                else:
                    result.skipped[current] += len(page)
        return result

    def _pages(
        self, method: str | None, code: str | None, ids: list[int] | None
    ) -> Iterable[tuple[StoredError, ...]]:
        after = 0
        while True:
            page = self.errors.open_errors(method, code, ids, after, PAGE)
            if not page:
                return
            yield page
            after = page[-1].error_id

    def _intake(self, error: StoredError, result: RecycleResult) -> None:
        try:
            submit = _decode(error.method, json.loads(error.payload), self.ledger)
        except (ValueError, TypeError, KeyError, AttributeError):
            result.skipped[error.method] += 1  # kept as sent on the wire, not as a record
            return
        try:
            submit(self.now)
        except Unavailable:
            raise
        except BillingError as exc:
            self.errors.failed_again(error.error_id, exc.code, exc.message[:1000], None,
                                     self.now)
            result.failed[(error.method, exc.code)] += 1
            return
        self.errors.mark_recycled(error.error_id, self.now)
        result.recycled[error.method] += 1


def _decode(method: str, payload: Any, ledger: Ledger) -> Callable[[datetime], Any]:
    """The ledger call that re-submits a stored intake record (as the service kept it)."""
    if method == "installOrder":
        order = Order(**{**payload, "activated_at": _time(payload["activated_at"])})
        return lambda now: ledger.add_order(order, now)
    if method == "updateOrderState":
        event = StateEvent(payload["event_id"], payload["order_id"], StateKind(payload["kind"]),
                           _time(payload["changed_at"]))
        return lambda now: ledger.add_state_event(event, now)
    usage = Usage(**{**payload, "occurred_at": _time(payload["occurred_at"]),
                     "attributes": [tuple(pair) for pair in payload["attributes"]]})
    return lambda now: ledger.add_usage(usage, now)


def _time(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise ValueError(f"{text!r} has no offset")
    return value


class _FileRecycler:
    """Recycles one page of ``usage.load`` errors through the file loader's batches.

    Each rule set gets a load of its own (``usage_file`` named ``errors recycle``) that
    the recycled records are stored under.
    """

    def __init__(self, recycler: Recycler, result: RecycleResult, rule_set: str | None,
                 fixes: Fixes | None) -> None:
        self._r = recycler
        self._result = result
        self._rule_set = rule_set
        self._fixes = fixes
        self._checkers: dict[tuple[str, ...], RowChecker] = {}
        self._loads: dict[str, tuple[BatchBuilder, int]] = {}

    def run(self, page: tuple[StoredError, ...]) -> None:
        """Settle the errors of records stored meanwhile; rate and store the others."""
        stored = self._r.files.stored_keys(e.key for e in page)
        for error in page:
            if error.key in stored:
                if self._r.errors.mark_recycled(error.error_id, self._r.now):
                    self._result.recycled[LOAD_METHOD] += 1
            else:
                self._one(error)
        for builder, file_id in self._loads.values():
            self._flush(builder, file_id)
            self._r.files.finish(file_id, DONE, "", self._r.now)

    def _one(self, error: StoredError) -> None:
        try:
            attempt = self._attempt(error)
        except (ValueError, TypeError, KeyError, AttributeError, FileFormatError):
            self._result.skipped[LOAD_METHOD] += 1  # not a payload the loader wrote
            return
        rule_set, names, fields, line, source = attempt
        builder, file_id = self._load(rule_set)
        builder.add(self._checker(names), fields, line, names, error_key=error.key,
                    closes=error.error_id, source=source)
        if builder.size >= self._r.batch_size:
            self._flush(builder, file_id)

    def _attempt(self, error: StoredError) -> tuple[str, tuple[str, ...], list[str], int, str]:
        """(rule set, column names, fields, line, file) to try: the fix, else as stored."""
        payload = json.loads(error.payload)
        rule_set = self._rule_set or str(payload["rule_set"])
        fix = self._fixes.rows.get(error.key) if self._fixes is not None else None
        if self._fixes is not None and fix is not None:
            self._result.fixes_used += 1
            return rule_set, fix.names, list(fix.fields), fix.line, self._fixes.source
        row: dict[str, str] = payload["row"]
        fields = [str(value) for value in row.values()]
        fields += [str(value) for value in payload.get("extra_fields", ())]
        names = tuple(str(name) for name in payload.get("columns") or row)
        return rule_set, names, fields, int(payload["line"]), str(payload["file"])

    def _checker(self, names: tuple[str, ...]) -> RowChecker:
        if names not in self._checkers:
            self._checkers[names] = RowChecker(parse_header(names), self._r.now, self._r.limits)
        return self._checkers[names]

    def _load(self, rule_set: str) -> tuple[BatchBuilder, int]:
        if rule_set not in self._loads:
            name = "errors recycle" + (f" --fix {self._fixes.source}" if self._fixes else "")
            file_id = self._r.files.start(name, "0" * 64, rule_set, self._r.now)
            rater = Rater(self._r.book, rule_set, self._r.tz)
            self._loads[rule_set] = (BatchBuilder(rater, name, Tally()), file_id)
        return self._loads[rule_set]

    def _flush(self, builder: BatchBuilder, file_id: int) -> None:
        batch = builder.take()
        if not batch.read:
            return
        written = self._r.files.write_batch(file_id, batch, self._r.now)
        self._result.recycled[LOAD_METHOD] += written.closed
        for rejection in batch.rejections:
            self._result.failed[(LOAD_METHOD, rejection.code)] += 1


def read_fixes(path: Path) -> Fixes:
    """The rows of a fix file (the usage-file format) by ``record_key``."""
    rows: dict[str, Fix] = {}
    with path.open("rb") as stream:
        lines = Lines(stream)
        reader = csv.reader(lines)
        try:
            names: tuple[str, ...] | None = None
            for fields in reader:
                if not fields:
                    continue
                if lines.bad:
                    raise FileFormatError(f"{path}: line {min(lines.bad)} is not UTF-8")
                if names is None:
                    names = parse_header(fields).names
                    key_at = names.index("record_key")
                    continue
                if key_at < len(fields) and fields[key_at]:
                    rows[fields[key_at]] = Fix(names, tuple(fields), reader.line_num)
        except csv.Error as exc:
            raise FileFormatError(f"{path}: line {reader.line_num}: {exc}") from exc
    if names is None:
        raise FileFormatError(f"{path}: the file is empty (a header row is required)")
    return Fixes(path.name, rows)

