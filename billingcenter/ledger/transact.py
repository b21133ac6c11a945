"""Transactions of the ledger's stores: one place for retries and database failures.

A write transaction is run again after a unique-key error (the rerun finds the row a
concurrent writer stored and answers as a repeat), a deadlock or a lock wait timeout;
any other database error becomes ``Unavailable`` with a short message and no SQL.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError

from billingcenter.errors import Unavailable
from billingcenter.ledger.engine import READ_ONLY

T = TypeVar("T")

ATTEMPTS = 3
# MySQL/MariaDB errors after which the whole transaction may simply run again.
RETRYABLE_MYSQL_ERRORS = frozenset({1205, 1213})  # lock wait timeout, deadlock


def write(
    engine: Engine,
    work: Callable[[Connection], T],
    after_conflict: Callable[[Connection], T] | None = None,
    attempts: int = ATTEMPTS,
) -> T:
    """Run ``work`` in a write transaction; after a unique-key error run ``after_conflict``
    (or ``work`` again); deadlocks and lock timeouts are run again."""
    failure: DBAPIError | None = None
    for _ in range(attempts):
        try:
            with engine.begin() as conn:
                return work(conn)
        except IntegrityError as exc:
            failure = exc
            work = after_conflict or work
        except DBAPIError as exc:
            if error_code(exc) not in RETRYABLE_MYSQL_ERRORS:
                raise unavailable(exc) from exc
            failure = exc
        except SQLAlchemyError as exc:
            raise unavailable(exc) from exc
    assert failure is not None
    raise unavailable(failure) from failure


def read(engine: Engine, work: Callable[[Connection], T]) -> T:
    """Run ``work`` in a read-only transaction."""
    try:
        with engine.connect() as conn:
            conn.execution_options(**{READ_ONLY: True})
            with conn.begin():
                return work(conn)
    except SQLAlchemyError as exc:
        raise unavailable(exc) from exc


def error_code(exc: DBAPIError) -> int | str | None:
    """The driver's error number (MySQL) or name (SQLite), if it has one."""
    args = getattr(exc.orig, "args", ())
    if args and isinstance(args[0], int):
        return args[0]
    name = getattr(exc.orig, "sqlite_errorname", None)
    return name if isinstance(name, str) else None


def unavailable(exc: SQLAlchemyError) -> Unavailable:
    """A short, SQL-free description of a database failure."""
    kind = type(exc).__name__
    code = error_code(exc) if isinstance(exc, DBAPIError) else None
    suffix = f" {code}" if code is not None else ""
    return Unavailable(f"database unavailable ({kind}{suffix}); retry with the same key")
