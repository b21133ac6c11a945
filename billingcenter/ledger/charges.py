"""Storage of charges and job claims: at-most-once charges, claimed chunks of work.

Charges are only ever inserted.  ``insert_charges`` writes a batch in one multi-row
statement that skips rows whose ``(kind, source_key)`` is already stored (MySQL
``INSERT IGNORE``, SQLite ``ON CONFLICT DO NOTHING``), so a rerun, a crashed run
finished by another process or two processes on the same chunk can never charge
anything twice.  MySQL's ``IGNORE`` would also turn a too-long value or an
out-of-range number into a warning and a silently altered row; the insert counts
the warnings and refuses any beyond the one per skipped duplicate.

A claim is one ``job_claim`` row per (job, business day, chunk).  The functions
here run inside the caller's transaction and never commit; the protocol (who may
take a chunk, when) is ``billingcenter.jobs.claims``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import attrs
from pymysql.constants import SERVER_STATUS
from pymysql.converters import escape_string
from sqlalchemy import and_, insert, select, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from billingcenter.ledger import accounts, fence
from billingcenter.ledger.coltypes import is_mysql
from billingcenter.ledger.schema_rating import UNITS_PRECISION, UNITS_SCALE, charge, job_claim
from billingcenter.rating.model import Charge

RUNNING = "running"
DONE = "done"

# Columns written by ``charge_row``, in its order.
CHARGE_COLUMNS = (
    "kind",
    "source_key",
    "order_id",
    "payer_id",
    "product_code",
    "day",
    "rule_set",
    "rule_set_version",
    "rule_id",
    "units",
    "unit_price",
    "amount_fen",
    "explanation",
    "rated_at",
    "run_id",
)
AMOUNT_INDEX = CHARGE_COLUMNS.index("amount_fen")
KEY_INDEX = CHARGE_COLUMNS.index("source_key")
KIND_INDEX = CHARGE_COLUMNS.index("kind")
PAYER_INDEX = CHARGE_COLUMNS.index("payer_id")
RATED_AT_INDEX = CHARGE_COLUMNS.index("rated_at")
# Rows per INSERT statement on MySQL (about 1 MB of SQL, far below max_allowed_packet).
MYSQL_BATCH = 2500
_MYSQL_INSERT = "INSERT IGNORE INTO charge ({}) VALUES ".format(", ".join(CHARGE_COLUMNS))
_MAX_INTEGER_DIGITS = UNITS_PRECISION - UNITS_SCALE
_SCALE = Decimal(1).scaleb(-UNITS_SCALE)

ChargeRow = tuple[Any, ...]


class ChargeStoreError(Exception):
    """A charge cannot be stored exactly as rated; says which value and why."""


@attrs.frozen
class Claim:
    """One claimed chunk of a job's business day, as stored."""

    job: str
    day: date
    chunk: int
    chunk_size: int
    status: str
    owner: str
    claimed_at: datetime
    finished_at: datetime | None
    last_id: int | None
    rows_seen: int
    charges: int
    amount_fen: int


@attrs.frozen
class ChunkResult:
    """What rating one chunk did, recorded on its claim when it is marked done."""

    last_id: int | None
    rows_seen: int
    charges: int
    amount_fen: int
    errors: int = 0  # records the rules could not price (not stored on the claim)


_JSON = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"))
_FITS: dict[Decimal, bool] = {}  # decimals known to fit DECIMAL(20, 6) (few: prices, units)
_FITS_MAX = 10_000


def explanation_text(explanation: Any) -> str:
    """The stored form of a charge's explanation: a JSON object with sorted keys."""
    return _JSON.encode(explanation if isinstance(explanation, dict) else dict(explanation))


def charge_row(item: Charge, rated_at: datetime, run_id: str) -> ChargeRow:
    """The ``charge`` row (in ``CHARGE_COLUMNS`` order) of a rated charge."""
    return (
        item.kind.value,
        item.source_key,
        item.order_id,
        item.payer_id,
        item.product_code,
        item.day,
        item.rule_set,
        item.rule_set_version,
        item.rule_id,
        _exact_decimal("units", item.units),
        _exact_decimal("unit_price", item.unit_price),
        item.amount_fen,
        explanation_text(item.explanation),
        rated_at,
        run_id,
    )


def _exact_decimal(name: str, value: Decimal) -> Decimal:
    """``value`` if DECIMAL(20, 6) holds it exactly (the database would round it)."""
    if value in _FITS:
        return value
    if value.is_finite() and value.adjusted() < _MAX_INTEGER_DIGITS:
        exponent = value.as_tuple().exponent
        if (isinstance(exponent, int) and exponent >= -UNITS_SCALE) or value == value.quantize(
            _SCALE
        ):
            if len(_FITS) >= _FITS_MAX:
                _FITS.clear()
            _FITS[value] = True
            return value
    raise ChargeStoreError(
        f"{name} {value} does not fit DECIMAL({UNITS_PRECISION}, {UNITS_SCALE}) exactly"
    )


def insert_charges(conn: Connection, rows: Sequence[ChargeRow]) -> int:
    """Insert the rows whose (kind, source_key) is new; the number inserted.

    Holds the bill run fence first (``billingcenter.ledger.fence``).  Charges of
    prepaid payers are paid from their balances in the same transaction
    (``billingcenter.ledger.accounts``): their payer rows are locked, in payer order,
    before the insert, so rating chunks never deadlock on them.
    """
    if not rows:
        return 0
    fence.hold(conn)
    prepaid = accounts.lock_prepaid(conn, {row[PAYER_INDEX] for row in rows})
    inserted = _insert(conn, rows)
    if prepaid:
        accounts.pay_prepaid(conn, prepaid, rows[0][RATED_AT_INDEX])
    return inserted


def _insert(conn: Connection, rows: Sequence[ChargeRow]) -> int:
    if is_mysql(conn.dialect):
        return _insert_mysql(conn, rows)
    statement = sqlite_insert(charge).on_conflict_do_nothing(
        index_elements=["kind", "source_key"]
    )
    result = conn.execute(statement, [dict(zip(CHARGE_COLUMNS, row, strict=True)) for row in rows])
    return int(result.rowcount)


def _insert_mysql(conn: Connection, rows: Sequence[ChargeRow]) -> int:
    # Straight to PyMySQL with the statement text built here: PyMySQL's generic
    # escaping costs more per row than the server's insert does.  Strings go through
    # the driver's own escaping; values repeated across rows are rendered once.
    dbapi = conn.connection.dbapi_connection
    escape = _escaper(dbapi)
    cursor = conn.connection.cursor()
    render = _RowRenderer(escape)
    inserted = 0
    try:
        for start in range(0, len(rows), MYSQL_BATCH):
            batch = rows[start : start + MYSQL_BATCH]
            values = ",".join([render(row) for row in batch])
            count = int(cursor.execute(_MYSQL_INSERT + values) or 0)
            warnings = int(getattr(cursor, "warning_count", 0))
            if warnings > len(batch) - count:
                raise ChargeStoreError(
                    f"MySQL altered {warnings - (len(batch) - count)} charge value(s) "
                    "on insert (too long or out of range); nothing of this batch is kept"
                )
            inserted += count
    finally:
        cursor.close()
    return inserted


def _escaper(dbapi: Any) -> Callable[[str], str]:
    """The driver's string escaping for this connection's SQL mode."""
    if getattr(dbapi, "server_status", 0) & SERVER_STATUS.SERVER_STATUS_NO_BACKSLASH_ESCAPES:
        return lambda text: text.replace("'", "''")
    return escape_string


class _RowRenderer:
    """Renders charge rows as SQL value lists; values shared by many rows are cached."""

    def __init__(self, escape: Callable[[str], str]) -> None:
        self._escape = escape
        self._cache: dict[tuple[int, Any], str] = {}

    def __call__(self, row: ChargeRow) -> str:
        """``(v1,v2,...)`` of one row in ``CHARGE_COLUMNS`` order."""
        e, c = self._escape, self._cached
        return (
            f"({c(0, row[0])},'{e(row[1])}','{e(row[2])}','{e(row[3])}',{c(4, row[4])},"
            f"{c(5, row[5])},{c(6, row[6])},{c(7, row[7])},{c(8, row[8])},{c(9, row[9])},"
            f"{c(10, row[10])},{int(row[11])},'{e(row[12])}',{c(13, row[13])},"
            f"{c(14, row[14])})"
        )

    def _cached(self, column: int, value: Any) -> str:
        key = (column, value)
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = self._literal(value)
        return found

    def _literal(self, value: Any) -> str:
        if isinstance(value, str):
            return "'" + self._escape(value) + "'"
        if isinstance(value, Decimal):
            if not value.is_finite():
                raise ChargeStoreError(f"{value} is not a number MySQL can store")
            return format(value, "f")
        if isinstance(value, datetime):
            return "'" + value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f") + "'"
        if isinstance(value, date):
            return "'" + value.isoformat() + "'"
        raise TypeError(f"no SQL literal for {type(value).__name__} {value!r}")


def inserted_totals(conn: Connection, rows: Sequence[ChargeRow], run_id: str) -> tuple[int, int]:
    """Count and fen total of those ``rows`` that ``run_id`` wrote (the others existed)."""
    count, total = 0, 0
    by_kind: dict[str, list[str]] = {}
    for row in rows:
        by_kind.setdefault(row[KIND_INDEX], []).append(row[KEY_INDEX])
    for kind, keys in by_kind.items():
        for start in range(0, len(keys), MYSQL_BATCH):
            query = select(charge.c.amount_fen).where(
                charge.c.kind == kind,
                charge.c.source_key.in_(keys[start : start + MYSQL_BATCH]),
                charge.c.run_id == run_id,
            )
            amounts = conn.execute(query).scalars().all()
            count += len(amounts)
            total += sum(int(a) for a in amounts)
    return count, total


def _claim_key(job: str, day: date, chunk: int) -> Any:
    return and_(job_claim.c.job == job, job_claim.c.day == day, job_claim.c.chunk == chunk)


def _claim_from_row(row: Any) -> Claim:
    return Claim(
        job=row.job,
        day=row.day,
        chunk=row.chunk,
        chunk_size=row.chunk_size,
        status=row.status,
        owner=row.owner,
        claimed_at=row.claimed_at,
        finished_at=row.finished_at,
        last_id=row.last_id,
        rows_seen=row.rows_seen,
        charges=row.charges,
        amount_fen=row.amount_fen,
    )


_CLAIM_COLUMNS = (
    job_claim.c.job,
    job_claim.c.day,
    job_claim.c.chunk,
    job_claim.c.chunk_size,
    job_claim.c.status,
    job_claim.c.owner,
    job_claim.c.claimed_at,
    job_claim.c.finished_at,
    job_claim.c.last_id,
    job_claim.c.rows_seen,
    job_claim.c.charges,
    job_claim.c.amount_fen,
)


def day_claims(conn: Connection, job: str, day: date) -> dict[int, Claim]:
    """Every claim of ``job`` on ``day``, by chunk number."""
    query = select(*_CLAIM_COLUMNS).where(job_claim.c.job == job, job_claim.c.day == day)
    return {row.chunk: _claim_from_row(row) for row in conn.execute(query)}


def get_claim(conn: Connection, job: str, day: date, chunk: int) -> Claim | None:
    """The claim of one chunk, or None."""
    row = conn.execute(select(*_CLAIM_COLUMNS).where(_claim_key(job, day, chunk))).first()
    return _claim_from_row(row) if row is not None else None


def insert_claim(
    conn: Connection, job: str, day: date, chunk: int, chunk_size: int, owner: str, now: datetime
) -> Claim:
    """Claim an unclaimed chunk; a unique-key ``IntegrityError`` if it is claimed."""
    claim = Claim(job, day, chunk, chunk_size, RUNNING, owner, now, None, None, 0, 0, 0)
    conn.execute(insert(job_claim), attrs.asdict(claim))
    return claim


def take_claim(conn: Connection, held: Claim, owner: str, now: datetime) -> Claim | None:
    """Take over ``held`` (stale, or done but with new work) unless it changed meanwhile."""
    query = (
        update(job_claim)
        .where(
            _claim_key(held.job, held.day, held.chunk),
            job_claim.c.status == held.status,
            job_claim.c.owner == held.owner,
            job_claim.c.claimed_at == held.claimed_at,
        )
        .values(status=RUNNING, owner=owner, claimed_at=now, finished_at=None)
    )
    if conn.execute(query).rowcount != 1:
        return None
    return attrs.evolve(held, status=RUNNING, owner=owner, claimed_at=now, finished_at=None)


def finish_claim(conn: Connection, held: Claim, result: ChunkResult, now: datetime) -> bool:
    """Mark a chunk this owner still holds done, with what it did; False if it lost it."""
    query = (
        update(job_claim)
        .where(
            _claim_key(held.job, held.day, held.chunk),
            job_claim.c.status == RUNNING,
            job_claim.c.owner == held.owner,
            job_claim.c.claimed_at == held.claimed_at,
        )
        .values(
            status=DONE,
            finished_at=now,
            last_id=result.last_id,
            rows_seen=result.rows_seen,
            # Totals of every run of the chunk: a redo adds what it wrote.
            charges=job_claim.c.charges + result.charges,
            amount_fen=job_claim.c.amount_fen + result.amount_fen,
        )
    )
    return bool(conn.execute(query).rowcount == 1)
