"""Usage-record files: read, validate, drop duplicates, rate, store (``usage load``).

The file format is documented in ``conf/usage-file.md``; the rows are checked by
``billingcenter.jobs.filecheck``.  A load streams the file through ``csv`` in batches:
the main thread checks and rates the rows of a batch and renders them for the
database (``FileStore.prepare``) while writer threads store the previous ones
(``FileStore.write_prepared``, one transaction per batch; they do no Python work
worth the name, so they do not compete with the main thread for the interpreter), so
memory stays bounded by a few batches whatever the file's size.  Each row ends up
exactly one of:

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

import contextlib
import csv
import gc
import hashlib
import json
import sys
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import attrs

from billingcenter.intake import Limits
from billingcenter.jobs.filecheck import (
    BAD_ENCODING,
    DEFAULT_LIMITS,
    EXTRA_COLUMN,
    MISSING_COLUMN,
    FileFormatError,
    Header,
    Lines,
    Rejected,
    RowChecker,
    first_row,
    parse_header,
)
from billingcenter.jobs.filerating import Rater
from billingcenter.ledger.filerows import FileCharge, FileRecord, compact_json
from billingcenter.ledger.files import (
    DONE,
    FAILED,
    Batch,
    FileStore,
    Prepared,
    Rejection,
    Written,
)

BATCH_SIZE = 5000  # rows per transaction: 5,000 beat 2,000 by 1-9 s on the 1M-row bench
WRITERS = 2  # batches written at once (connections), while the next is built
HANDOFF_S = 0.0002  # thread switch interval during a load (see _tuned_for_loading)
GC_THRESHOLD = 100_000  # allocations between collections during a load
_json = compact_json()


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
        self.charges: list[FileCharge] = []
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
            header = parse_header(first_row(rows, lines, path))
        except FileFormatError as exc:
            raise FileFormatError(str(exc) if str(exc).startswith(f"{path}:")
                                  else f"{path}: {exc}") from None
        checker = RowChecker(header, now, limits)
        file_id = store.start(str(path), digest, rater.rule_set, now)
        tally = Tally()
        try:
            failure = _stream(rows, lines, checker, header,
                              BatchBuilder(rater, path.name, tally, remember=writers),
                              lambda batch: store.prepare(file_id, batch, now),
                              store.write_prepared, tally, batch_size, writers)
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


@contextlib.contextmanager
def _tuned_for_loading() -> Iterator[None]:
    """Interpreter settings for the length of a load (restored after).

    * Switch interval ``HANDOFF_S``: the writer threads need the interpreter only for
      moments, but often (PyMySQL sends LOAD DATA in 16 KiB packets).  Under the
      default 5 ms each moment waits for the busy reading thread to be interrupted
      and the writers fall behind.
    * Garbage collector: a load allocates millions of objects, none in reference
      cycles, and keeps a few batches of them alive at a time; at the default
      thresholds the collector keeps scanning them and every long-lived object of
      the process (rule book, modules) -- a fifth of the loader's time.  Objects
      alive at the start are frozen out of its sight (``gc.freeze``) and it runs once
      per ``GC_THRESHOLD`` allocations; cycles, if any, are still collected.
    """
    interval, thresholds = sys.getswitchinterval(), gc.get_threshold()
    sys.setswitchinterval(min(interval, HANDOFF_S))
    gc.freeze()
    gc.set_threshold(max(thresholds[0], GC_THRESHOLD), *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()
        sys.setswitchinterval(interval)


def _stream(
    rows: Any,
    lines: Lines,
    checker: RowChecker,
    header: Header,
    builder: BatchBuilder,
    prepare: Callable[[Batch], Prepared],
    write: Callable[[Prepared], Written],
    tally: Tally,
    batch_size: int,
    writers: int,
) -> str:
    """Feed every row through ``builder``, writing full batches behind; the failure, if any.

    Up to ``writers`` batches are written at once, each in its own transaction, while
    the next one is built; batches are prepared here, on the calling thread.
    """
    names = header.names
    failure = ""
    last = rows.line_num
    with _tuned_for_loading(), ThreadPoolExecutor(
        max_workers=writers, thread_name_prefix="usage-writer"
    ) as pool:
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
                    pending.append(pool.submit(write, prepare(builder.take())))
        except csv.Error as exc:
            failure = f"the file breaks off after line {rows.line_num}: {exc}"
        batch = builder.take()
        if batch.read:
            pending.append(pool.submit(write, prepare(batch)))
        while pending:
            tally.add(pending.popleft().result())
    return failure
