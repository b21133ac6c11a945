"""The error store (``error_record``) as ``billingcenter errors`` sees it: list, settle.

Refused intake calls and rejected usage-file rows are kept there (the loader writes
its rows in ``billingcenter.ledger.files``); ``ErrorStore`` lists them and records
what a recycle attempt did.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

import attrs
from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection, Engine

from billingcenter.ledger import transact
from billingcenter.ledger.schema import error_record

T = TypeVar("T")

ATTEMPTS = 5


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
        return transact.write(self._engine, work, attempts=ATTEMPTS)

    def _read(self, work: Callable[[Connection], T]) -> T:
        return transact.read(self._engine, work)


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
