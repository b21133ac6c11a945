"""The store of usage-record files: loads, records, their charges, their rejected rows.

``FileStore.write_batch`` is the loader's one transaction per batch: the accepted
records (``file_record``), their charges (``charge``, kind ``record``), the rejected
rows (``error_record``, method ``usage.load``) and the load's running counts
(``usage_file``) are committed together or not at all, so a crash loses at most the
batch in flight and a rerun of the same file stores nothing twice:

* a record key already stored (an earlier batch, load or crashed run: its charge is in
  ``charge``) is a duplicate: neither the record nor its charge is written again;
* a rejected row replaces the open (not yet recycled) ``usage.load`` error of the same
  key, if there is one, so the error store holds one open error per record key, the
  latest attempt.  (Two transactions rejecting the same key at the same moment -- two
  loads racing, or one key rejected twice within the batches in flight -- may each add
  one; ``errors recycle`` settles both.)

Batches are written first as if every key were new (the common case: no look-up at
all); a unique-key error (on ``charge (kind, source_key)``) rolls the transaction back
and the rerun looks the keys up.  ``prepare`` renders a batch's rows (no I/O: the
loader calls it on its own thread, so the writer threads only wait for the database);
``billingcenter.ledger.filerows`` formats them.  On MySQL with LOCAL INFILE enabled on
both sides (``create_engine(..., local_infile=True)`` and the server's
``local_infile``) rows go in with ``LOAD DATA LOCAL INFILE`` from a private temporary
file, else (and on SQLite) with ``executemany``.  LOAD DATA LOCAL cannot stop in the
middle, so the server skips a duplicate key with a warning instead of failing: a
load that stored fewer rows than it sent is treated as the unique-key error, and any
other warning fails the batch.

``billingcenter.ledger.errorstore.ErrorStore`` lists error records and settles them.
"""

from __future__ import annotations

import operator
import tempfile
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, NamedTuple, TypeVar

import attrs
from pymysql.constants import CLIENT
from sqlalchemy import Table, and_, insert, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError

from billingcenter.ledger import accounts, fence, transact
from billingcenter.ledger.coltypes import is_mysql
from billingcenter.ledger.filerows import (
    CHARGE_COLUMNS,
    RECORD_COLUMNS,
    FileCharge,
    FileRecord,
    charge_rows,
    charge_tsv,
    record_rows,
    record_tsv,
    text_time,
)
from billingcenter.ledger.schema import ERROR_KEY_MAX, error_record
from billingcenter.ledger.schema_files import FILE_NAME_MAX, file_record, usage_file
from billingcenter.ledger.schema_rating import charge
from billingcenter.rating.model import ChargeKind

T = TypeVar("T")

LOAD_METHOD = "usage.load"  # error_record.method of rejected file rows
LOADING, DONE, FAILED = "LOADING", "DONE", "FAILED"
ATTEMPTS = 5
IN_CHUNK = 1000
RECORD_KIND = ChargeKind.RECORD.value
# The record of a (record, charge) pair: records compare by key first, unique in a batch.
_RECORD = operator.itemgetter(0)
DUPLICATE_KEY = 1062  # MySQL's ER_DUP_ENTRY
DATA_WARNING = 1265  # MySQL's WARN_DATA_TRUNCATED


class Rejection(NamedTuple):
    """A rejected row: its key in the error store, why, and the row as JSON."""

    key: str
    code: str
    reason: str
    payload: str


@attrs.frozen
class Batch:
    """One transaction's worth of a load: records with their charges, and rejections.

    ``charges[i]`` is the charge of ``records[i]``.  ``closes`` maps an open error's id
    to the record key that settles it (``errors recycle``): the error is marked recycled
    when that record is stored now or was stored before.  ``read`` counts every row the batch
    covers; ``duplicates`` those already dropped as repeats within the file.
    """

    records: Sequence[FileRecord] = ()
    charges: Sequence[FileCharge] = ()
    rejections: Sequence[Rejection] = ()
    closes: dict[int, str] = attrs.field(factory=dict)
    read: int = 0
    duplicates: int = 0


@attrs.frozen
class Written:
    """What a batch stored: records (and charges), keys found stored before, fen."""

    accepted: int
    duplicates: int
    rejected: int
    amount_fen: int
    closed: int


class Rows(NamedTuple):
    """A batch's rows as its store writes them: LOAD DATA text or value tuples."""

    size: int  # rows (records, and as many charges)
    amount_fen: int
    records: str | list[tuple[Any, ...]]
    charges: str | list[tuple[Any, ...]]


@attrs.frozen
class Prepared:
    """A batch rendered for its store (``FileStore.prepare``), ready to write."""

    file_id: int
    now: datetime
    batch: Batch
    rows: Rows


@attrs.frozen
class Load:
    """One run of the loader, as ``usage_file`` keeps it."""

    file_id: int
    name: str
    digest: str
    rule_set: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    rows_read: int
    accepted: int
    duplicates: int
    rejected: int
    amount_fen: int
    note: str


class FileStore:
    """Loads, file records and their charges on SQLite or MySQL/MariaDB."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._mysql = is_mysql(engine.dialect)
        self._bulk_load: bool | None = None

    def start(self, name: str, digest: str, rule_set: str, now: datetime) -> int:
        """Record a new load (status ``LOADING``) and return its id."""
        row = {
            "name": name[:FILE_NAME_MAX], "digest": digest,
            "rule_set": rule_set, "status": LOADING, "started_at": now, "finished_at": None,
            "rows_read": 0, "accepted": 0, "duplicates": 0, "rejected": 0, "amount_fen": 0,
            "note": "",
        }
        return self._write(lambda conn: _inserted_id(conn, usage_file, row))

    def finish(self, file_id: int, status: str, note: str, now: datetime) -> None:
        """Mark a load ``DONE`` or ``FAILED`` (with why)."""
        query = (
            update(usage_file).where(usage_file.c.id == file_id)
            .values(status=status, note=note, finished_at=now)
        )
        self._write(lambda conn: conn.execute(query))

    def get_load(self, file_id: int) -> Load | None:
        """A load by id, or None."""
        query = select(usage_file).where(usage_file.c.id == file_id)
        row = self._read(lambda conn: conn.execute(query).first())
        return _load(row) if row is not None else None

    def loads_of(self, digest: str) -> tuple[Load, ...]:
        """Earlier loads of a file with these bytes, oldest first."""
        query = select(usage_file).where(usage_file.c.digest == digest).order_by(usage_file.c.id)
        return tuple(_load(row) for row in self._read(lambda conn: conn.execute(query).all()))

    def prepare(self, file_id: int, batch: Batch, now: datetime) -> Prepared:
        """A batch of load ``file_id`` rendered for ``write_prepared``; no I/O after the first."""
        pairs = sorted(zip(batch.records, batch.charges, strict=True), key=_RECORD)
        return Prepared(file_id, now, batch, self._render(file_id, pairs, now))

    def write_prepared(self, prepared: Prepared) -> Written:
        """Store one prepared batch in one transaction (see the module docstring)."""
        return self._write(
            lambda conn: self._write_batch(conn, prepared, look_up=False),
            after_conflict=lambda conn: self._write_batch(conn, prepared, look_up=True),
        )

    def write_batch(self, file_id: int, batch: Batch, now: datetime) -> Written:
        """Store one batch in one transaction: ``prepare`` and ``write_prepared``."""
        return self.write_prepared(self.prepare(file_id, batch, now))

    def stored_keys(self, keys: Iterable[str]) -> set[str]:
        """The record keys among ``keys`` that are stored."""
        return self._read(lambda conn: _stored_keys(conn, set(keys)))

    @property
    def bulk_load(self) -> bool:
        """Whether rows go in with LOAD DATA LOCAL INFILE (asked once of the database)."""
        if self._bulk_load is None:
            self._bulk_load = self._mysql and self._read(_local_infile_on)
        return self._bulk_load

    def _render(self, file_id: int, pairs: list[tuple[FileRecord, FileCharge]], now: datetime
                ) -> Rows:
        """Rows of (record, charge) pairs, sorted by key so that concurrent loaders lock
        unique-index entries in one order."""
        text_now, run_id = text_time(now), f"usage-load-{file_id}"
        records = [record for record, _ in pairs]
        charges = [found for _, found in pairs]
        amount = sum([found.amount_fen for found in charges])
        if self.bulk_load:
            return Rows(len(pairs), amount, record_tsv(records, file_id, text_now),
                        charge_tsv(charges, text_now, run_id))
        return Rows(len(pairs), amount, record_rows(records, file_id, text_now),
                    charge_rows(charges, text_now, run_id))

    def _write_batch(self, conn: Connection, prepared: Prepared, look_up: bool) -> Written:
        batch, rows = prepared.batch, prepared.rows
        fence.hold(conn)  # before any charge id is handed out (ledger.fence)
        # Prepaid payers' records are paid from their balances in this transaction, as
        # rated charges are (ledger.charges.insert_charges): rows locked before the insert.
        prepaid = accounts.lock_prepaid(conn, {found.payer_id for found in batch.charges})
        stored: set[str] = set()
        if look_up:
            stored = _stored_keys(conn, {r.record_key for r in batch.records})
        if stored:
            pairs = sorted(((r, c) for r, c in zip(batch.records, batch.charges, strict=True)
                            if r.record_key not in stored), key=_RECORD)
            rows = self._render(prepared.file_id, pairs, prepared.now)
        if rows.size:
            self._insert(conn, file_record, RECORD_COLUMNS, rows.records, rows.size)
            self._insert(conn, charge, CHARGE_COLUMNS, rows.charges, rows.size)
        now = prepared.now
        if prepaid and rows.size:
            accounts.pay_prepaid(conn, prepaid, now)
        _keep_rejections(conn, batch.rejections, now)
        closed = 0
        if batch.closes:
            written_keys = {r.record_key for r in batch.records if r.record_key not in stored}
            closed = _close(conn, batch.closes, written_keys | stored, now)
        written = Written(rows.size, len(stored) + batch.duplicates,
                          len(batch.rejections), rows.amount_fen, closed)
        conn.execute(
            update(usage_file).where(usage_file.c.id == prepared.file_id).values(
                rows_read=usage_file.c.rows_read + batch.read,
                accepted=usage_file.c.accepted + written.accepted,
                duplicates=usage_file.c.duplicates + written.duplicates,
                rejected=usage_file.c.rejected + written.rejected,
                amount_fen=usage_file.c.amount_fen + written.amount_fen,
            )
        )
        return written

    def _insert(self, conn: Connection, table: Table, columns: Sequence[str],
                rows: str | list[tuple[Any, ...]], count: int) -> None:
        """Rows into ``table``: LOAD DATA of TSV text, or ``executemany`` of tuples."""
        names = ", ".join(columns)
        if isinstance(rows, str):
            _load_data(conn, table.name, names, rows, count)
            return
        mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
        marks = ", ".join([mark] * len(columns))
        conn.exec_driver_sql(f"INSERT INTO {table.name} ({names}) VALUES ({marks})", rows)

    def _write(
        self,
        work: Callable[[Connection], T],
        after_conflict: Callable[[Connection], T] | None = None,
    ) -> T:
        return _run_write(self._engine, work, after_conflict)

    def _read(self, work: Callable[[Connection], T]) -> T:
        return _run_read(self._engine, work)


def _local_infile_on(conn: Connection) -> bool:
    """Whether this connection may LOAD DATA LOCAL INFILE: the client allows it (the
    engine was made with ``local_infile=True``) and so does the server."""
    client = getattr(conn.connection.dbapi_connection, "client_flag", 0)
    if not client & CLIENT.LOCAL_FILES:
        return False
    return bool(conn.exec_driver_sql("SELECT @@local_infile").scalar())


def _load_data(conn: Connection, table: str, names: str, text: str, count: int) -> None:
    """LOAD DATA LOCAL INFILE of ``count`` rows of TSV text, through a temporary file.

    The server skips a duplicate key (with a warning) rather than failing: fewer rows
    stored than sent is raised as the unique-key error it stands for; any other
    warning (a value the column could not store exactly) fails the batch.
    """
    driver = conn.dialect.loaded_dbapi
    with tempfile.NamedTemporaryFile(prefix="billingcenter-load-", suffix=".tsv") as data:
        data.write(text.encode())
        data.flush()
        statement = (f"LOAD DATA LOCAL INFILE %s INTO TABLE {table} CHARACTER SET utf8mb4 "
                     f"({names})")
        cursor = conn.connection.cursor()
        try:
            cursor.execute(statement, (data.name,))
            stored, warnings = cursor.rowcount, cursor.warning_count
        except driver.Error as exc:  # as SQLAlchemy would have raised it
            raise DBAPIError.instance(statement, None, exc, driver.Error) from exc
        finally:
            cursor.close()
    if stored != count:
        raise IntegrityError(statement, None, driver.IntegrityError(
            DUPLICATE_KEY, f"LOAD DATA stored {stored} of {count} rows into {table}"))
    if warnings:
        raise DBAPIError.instance(statement, None, driver.DataError(
            DATA_WARNING, f"LOAD DATA into {table}: {warnings} warnings"), driver.Error)


def _stored_keys(conn: Connection, keys: set[str]) -> set[str]:
    """The keys already stored, one SELECT per 1000.

    A stored record always has its charge (same transaction), and the charge's
    ``(kind, source_key)`` is the unique index, so the charges are what is looked up.
    """
    found: set[str] = set()
    ordered = sorted(keys)
    for start in range(0, len(ordered), IN_CHUNK):
        chunk = ordered[start : start + IN_CHUNK]
        found.update(conn.execute(
            select(charge.c.source_key)
            .where(charge.c.kind == RECORD_KIND, charge.c.source_key.in_(chunk))
        ).scalars())
    return found & keys  # exact: a case-insensitive database may return look-alikes


def _keep_rejections(conn: Connection, rejections: Sequence[Rejection], now: datetime) -> None:
    """Insert the rejections; a key with an open ``usage.load`` error updates that one."""
    if not rejections:
        return
    latest = {r.key[:ERROR_KEY_MAX]: r for r in rejections}  # the last attempt of a key wins
    open_ids = _open_error_ids(conn, LOAD_METHOD, set(latest))
    new = []
    for key, found in latest.items():
        values = {"code": found.code, "reason": found.reason, "payload": found.payload,
                  "received_at": now}
        if key in open_ids:
            conn.execute(
                update(error_record).where(error_record.c.id == open_ids[key]).values(**values)
            )
        else:
            new.append({"method": LOAD_METHOD, "key": key, "recycled_at": None, **values})
    if new:
        conn.execute(insert(error_record), new)


def _open_error_ids(conn: Connection, method: str, keys: set[str]) -> dict[str, int]:
    """Open errors of ``method`` by exact key (the column's collation ignores case)."""
    found: dict[str, int] = {}
    ordered = sorted(keys)
    for start in range(0, len(ordered), IN_CHUNK):
        query = select(error_record.c.id, error_record.c.key).where(
            error_record.c.method == method,
            error_record.c.key.in_(ordered[start : start + IN_CHUNK]),
            error_record.c.recycled_at.is_(None),
        ).order_by(error_record.c.id)
        for error_id, key in conn.execute(query):
            if key in keys:
                found[key] = error_id
    return found


def _close(conn: Connection, closes: dict[int, str], stored: set[str], now: datetime) -> int:
    """Mark recycled the errors whose record is now stored; how many were marked."""
    ids = sorted(error_id for error_id, key in closes.items() if key in stored)
    if not ids:
        return 0
    query = (
        update(error_record)
        .where(and_(error_record.c.id.in_(ids), error_record.c.recycled_at.is_(None)))
        .values(recycled_at=now)
    )
    return int(conn.execute(query).rowcount)


def _load(row: Any) -> Load:
    return Load(
        file_id=row.id, name=row.name, digest=row.digest, rule_set=row.rule_set,
        status=row.status, started_at=row.started_at, finished_at=row.finished_at,
        rows_read=row.rows_read, accepted=row.accepted, duplicates=row.duplicates,
        rejected=row.rejected, amount_fen=row.amount_fen, note=row.note,
    )


def _inserted_id(conn: Connection, table: Table, row: dict[str, Any]) -> int:
    key = conn.execute(insert(table), row).inserted_primary_key
    assert key is not None
    return int(key[0])


def _run_write(
    engine: Engine,
    work: Callable[[Connection], T],
    after_conflict: Callable[[Connection], T] | None,
) -> T:
    """Run ``work`` in a write transaction (``billingcenter.ledger.transact.write``)."""
    return transact.write(engine, work, after_conflict, attempts=ATTEMPTS)


def _run_read(engine: Engine, work: Callable[[Connection], T]) -> T:
    return transact.read(engine, work)

