"""The store of usage-record files: loads, records, their charges, and the error store.

``FileStore.write_batch`` is the loader's one transaction per batch: the accepted
records (``file_record``), their charges (``charge``, kind ``record``), the rejected
rows (``error_record``, method ``usage.load``) and the load's running counts
(``usage_file``) are committed together or not at all, so a crash loses at most the
batch in flight and a rerun of the same file stores nothing twice:

* a record key already in ``file_record`` (an earlier batch, load or crashed run) is a
  duplicate: neither the record nor its charge is written again;
* a rejected row replaces the open (not yet recycled) ``usage.load`` error of the same
  key, if there is one, so the error store holds one open error per record key, the
  latest attempt.  (Two transactions rejecting the same key at the same moment -- two
  loads racing, or one key rejected twice within the batches in flight -- may each add
  one; ``errors recycle`` settles both.)

Batches are written first as if every key were new (the common case: no look-up at
all); a unique-key error rolls the transaction back and the rerun looks the keys up.
Rows go in as multi-row INSERTs built from plain values (MySQL) or ``executemany``
(SQLite); the values are formatted here exactly as the column types store them.

``ErrorStore`` lists error records and settles them for ``billingcenter errors``.
"""

from __future__ import annotations

import json
import json.encoder
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, NamedTuple, TypeVar

import attrs
from sqlalchemy import Table, and_, func, insert, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from billingcenter.ledger import transact
from billingcenter.ledger.coltypes import is_mysql
from billingcenter.ledger.schema import ERROR_KEY_MAX, error_record
from billingcenter.ledger.schema_files import FILE_NAME_MAX, file_record, usage_file
from billingcenter.ledger.schema_rating import charge
from billingcenter.rating.model import Charge, ChargeKind

T = TypeVar("T")

LOAD_METHOD = "usage.load"  # error_record.method of rejected file rows
LOADING, DONE, FAILED = "LOADING", "DONE", "FAILED"
ATTEMPTS = 5
IN_CHUNK = 1000
RECORD_KIND = ChargeKind.RECORD.value


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
    charges: Sequence[Charge] = ()
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


@attrs.frozen
class StoredError:
    """A row of the error store."""

    error_id: int
    method: str
    key: str
    code: str
    reason: str
    payload: str
    received_at: datetime
    recycled_at: datetime | None


class FileStore:
    """Loads, file records and their charges on SQLite or MySQL/MariaDB."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._mysql = is_mysql(engine.dialect)

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

    def write_batch(self, file_id: int, batch: Batch, now: datetime) -> Written:
        """Store one batch in one transaction (see the module docstring)."""
        return self._write(
            lambda conn: self._write_batch(conn, file_id, batch, now, look_up=False),
            after_conflict=lambda conn: self._write_batch(conn, file_id, batch, now, look_up=True),
        )

    def stored_keys(self, keys: Iterable[str]) -> set[str]:
        """The record keys among ``keys`` that are stored."""
        return self._read(lambda conn: _stored_keys(conn, set(keys)))

    def _write_batch(
        self, conn: Connection, file_id: int, batch: Batch, now: datetime, look_up: bool
    ) -> Written:
        records, charges = batch.records, batch.charges
        stored = _stored_keys(conn, {r.record_key for r in records}) if look_up else set()
        if stored:
            keep = [i for i, r in enumerate(records) if r.record_key not in stored]
            records = [records[i] for i in keep]
            charges = [charges[i] for i in keep]
        if records:
            # Sorted by key so concurrent loaders lock unique-index entries in one order.
            order = sorted(range(len(records)), key=lambda i: records[i].record_key)
            text_now = _text_time(now)
            self._insert(conn, file_record,
                         [_record_row(records[i], file_id, text_now) for i in order])
            run_id = f"usage-load-{file_id}"
            self._insert(conn, charge, [_charge_row(charges[i], text_now, run_id) for i in order])
        _keep_rejections(conn, batch.rejections, now)
        closed = _close(conn, batch.closes, {r.record_key for r in records} | stored, now)
        amount = sum(c.amount_fen for c in charges)
        written = Written(len(records), len(stored) + batch.duplicates,
                          len(batch.rejections), amount, closed)
        conn.execute(
            update(usage_file).where(usage_file.c.id == file_id).values(
                rows_read=usage_file.c.rows_read + batch.read,
                accepted=usage_file.c.accepted + written.accepted,
                duplicates=usage_file.c.duplicates + written.duplicates,
                rejected=usage_file.c.rejected + written.rejected,
                amount_fen=usage_file.c.amount_fen + amount,
            )
        )
        return written

    def _insert(self, conn: Connection, table: Table, rows: list[tuple[Any, ...]]) -> None:
        """A multi-row INSERT of plain values, the fastest way each driver offers."""
        columns = _COLUMNS[table.name]
        names = ", ".join(columns)
        if self._mysql:
            # Straight to the driver: with no parameters PyMySQL leaves '%' alone.
            statement = (f"INSERT INTO {table.name} ({names}) VALUES "
                         + _mysql_values(_TEMPLATES[table.name], rows))
            driver_error = conn.dialect.loaded_dbapi.Error
            cursor = conn.connection.cursor()
            try:
                cursor.execute(statement)
            except driver_error as exc:  # as SQLAlchemy would have raised it
                raise DBAPIError.instance(statement[:200], None, exc, driver_error) from exc
            finally:
                cursor.close()
        else:
            marks = ", ".join("?" * len(columns))
            conn.exec_driver_sql(f"INSERT INTO {table.name} ({names}) VALUES ({marks})", rows)

    def _write(
        self,
        work: Callable[[Connection], T],
        after_conflict: Callable[[Connection], T] | None = None,
    ) -> T:
        return _run_write(self._engine, work, after_conflict)

    def _read(self, work: Callable[[Connection], T]) -> T:
        return _run_read(self._engine, work)


class ErrorStore:
    """The error store (``error_record``): list, and settle after a recycle attempt."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def list(
        self,
        method: str | None = None,
        code: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
        include_recycled: bool = False,
    ) -> tuple[StoredError, ...]:
        """Error records, newest first, filtered; open ones only unless asked."""
        query = _error_query(method, code, None, include_recycled)
        if since is not None:
            query = query.where(error_record.c.received_at >= since)
        query = query.order_by(error_record.c.id.desc()).limit(limit)
        return tuple(_error(row) for row in self._read(lambda conn: conn.execute(query).all()))

    def open_errors(
        self,
        method: str | None = None,
        code: str | None = None,
        ids: Sequence[int] | None = None,
        after_id: int = 0,
        limit: int = 1000,
    ) -> tuple[StoredError, ...]:
        """Not yet recycled error records with an id above ``after_id``, oldest first."""
        query = (
            _error_query(method, code, ids, include_recycled=False)
            .where(error_record.c.id > after_id)
            .order_by(error_record.c.id)
            .limit(limit)
        )
        return tuple(_error(row) for row in self._read(lambda conn: conn.execute(query).all()))

    def get(self, error_id: int) -> StoredError | None:
        """One error record by id, or None."""
        query = select(error_record).where(error_record.c.id == error_id)
        row = self._read(lambda conn: conn.execute(query).first())
        return _error(row) if row is not None else None

    def mark_recycled(self, error_id: int, now: datetime) -> bool:
        """Settle an open error; False if it was already settled (by a concurrent run)."""
        query = (
            update(error_record)
            .where(error_record.c.id == error_id, error_record.c.recycled_at.is_(None))
            .values(recycled_at=now)
        )
        return bool(self._write(lambda conn: conn.execute(query).rowcount))

    def failed_again(
        self, error_id: int, code: str, reason: str, payload: str | None, now: datetime
    ) -> None:
        """Keep an open error open, as the latest attempt: code, reason, time (payload)."""
        values: dict[str, Any] = {"code": code, "reason": reason, "received_at": now}
        if payload is not None:
            values["payload"] = payload
        query = (
            update(error_record)
            .where(error_record.c.id == error_id, error_record.c.recycled_at.is_(None))
            .values(**values)
        )
        self._write(lambda conn: conn.execute(query))

    def count_open(self, method: str | None = None) -> int:
        """How many error records are open (of one method)."""
        query = select(func.count()).select_from(error_record).where(
            error_record.c.recycled_at.is_(None)
        )
        if method is not None:
            query = query.where(error_record.c.method == method)
        return int(self._read(lambda conn: conn.execute(query).scalar_one()))

    def _write(self, work: Callable[[Connection], T]) -> T:
        return _run_write(self._engine, work, None)

    def _read(self, work: Callable[[Connection], T]) -> T:
        return _run_read(self._engine, work)


_COLUMNS = {
    "file_record": (
        "record_key", "file_id", "line", "occurred_at", "payer_id", "product_code", "item_code",
        "user_id", "quantity", "duration", "attributes", "recorded_at",
    ),
    "charge": (
        "kind", "source_key", "order_id", "payer_id", "product_code", "day", "rule_set",
        "rule_set_version", "rule_id", "units", "unit_price", "amount_fen", "explanation",
        "rated_at", "run_id",
    ),
}
# One row as MySQL literals: text in quotes, numbers bare (``duration`` is "NULL" or digits).
_TEMPLATES = {
    "file_record": "('%s',%d,%d,'%s','%s','%s','%s','%s',%d,%s,'%s','%s')",
    "charge": "('%s','%s','%s','%s','%s','%s','%s','%s','%s','%s','%s',%d,'%s','%s','%s')",
}
_UNITS_SCALE = 6  # DECIMAL(20, 6) of charge.units and charge.unit_price


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


def _text_time(moment: datetime) -> str:
    """An aware datetime as the stored UTC text of ``UtcDateTime`` (both databases)."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def _record_row(record: FileRecord, file_id: int, now: str) -> tuple[Any, ...]:
    when = record[2].isoformat(" ", "microseconds")[:26]  # aware UTC: drop "+00:00"
    return (record[0], file_id, record[1], when, *record[3:], now)


def _charge_row(found: Charge, now: str, run_id: str) -> tuple[Any, ...]:
    return (
        found.kind.value, found.source_key, found.order_id, found.payer_id, found.product_code,
        found.day.isoformat(), found.rule_set, found.rule_set_version, found.rule_id,
        _decimal(found.units), _decimal(found.unit_price), found.amount_fen,
        _explanation(found.explanation), now, run_id,
    )


def _decimal(value: Decimal) -> str:
    """The text of a units or price value that DECIMAL(20, 6) stores exactly."""
    text = _decimals.get(value)
    if text is None:
        exponent = value.as_tuple().exponent
        if not isinstance(exponent, int) or (exponent < -_UNITS_SCALE
                                             and value != round(value, _UNITS_SCALE)):
            raise ValueError(f"{value} does not fit DECIMAL(20, {_UNITS_SCALE}) exactly")
        text = str(value)
        if len(_decimals) < 10_000:
            _decimals[value] = text
    return text


def _mysql_values(template: str, rows: list[tuple[Any, ...]]) -> str:
    """``rows`` as the VALUES list of a MySQL INSERT, text escaped where it needs it.

    Rows are rendered without escaping first; when no value held a quote or a backslash
    (the quotes in the result are exactly the template's), that is the answer.
    Otherwise every text value is escaped and the rows rendered again.
    """
    plain = [row if None not in row else tuple("NULL" if v is None else v for v in row)
             for row in rows]
    text = ",".join([template % row for row in plain])
    quotes = template.count("'") * len(rows)
    if text.count("'") == quotes and "\\" not in text and "\0" not in text:
        return text
    escaped = [tuple(_escape(v) if type(v) is str else v for v in row) for row in plain]
    return ",".join([template % row for row in escaped])


_ESCAPES = str.maketrans({"\\": "\\\\", "'": "\\'", "\0": "\\0", "\x1a": "\\Z"})


def _escape(value: str) -> str:
    """Text for inside a MySQL string literal (backslash escapes are on: strict mode)."""
    return value.translate(_ESCAPES)


def _stored_keys(conn: Connection, keys: set[str]) -> set[str]:
    """The keys already stored as records or as record charges, one SELECT per 1000."""
    found: set[str] = set()
    ordered = sorted(keys)
    for start in range(0, len(ordered), IN_CHUNK):
        chunk = ordered[start : start + IN_CHUNK]
        found.update(conn.execute(
            select(file_record.c.record_key).where(file_record.c.record_key.in_(chunk))
        ).scalars())
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


def _error_query(
    method: str | None, code: str | None, ids: Sequence[int] | None, include_recycled: bool
) -> Any:
    query = select(error_record)
    if method is not None:
        query = query.where(error_record.c.method == method)
    if code is not None:
        query = query.where(error_record.c.code == code)
    if ids is not None:
        query = query.where(error_record.c.id.in_(list(ids)))
    if not include_recycled:
        query = query.where(error_record.c.recycled_at.is_(None))
    return query


def _error(row: Any) -> StoredError:
    return StoredError(
        error_id=row.id, method=row.method, key=row.key, code=row.code, reason=row.reason,
        payload=row.payload, received_at=row.received_at, recycled_at=row.recycled_at,
    )


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

