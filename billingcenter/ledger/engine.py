"""The one engine factory: every per-database fix lives here and nowhere else.

SQLite (the embedded default): WAL, foreign keys, a busy timeout, and write
transactions that take the write lock up front (``BEGIN IMMEDIATE``) so two
writers queue instead of failing; an in-memory database is one connection handed
to one thread at a time.  MySQL/MariaDB through PyMySQL: utf8mb4, strict SQL
mode, UTC session time zone, READ COMMITTED, pre-ping, a pool sized to the
service's thread pool.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import sqlalchemy
from pymysql.constants import SERVER_STATUS
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.engine.url import URL
from sqlalchemy.pool import ConnectionPoolEntry, PoolResetState, QueuePool

# Execution option that marks a transaction as read-only: on SQLite it begins
# DEFERRED so readers do not queue behind writers.
READ_ONLY = "billingcenter_read_only"

DEFAULT_POOL_SIZE = 32
SQLITE_BUSY_TIMEOUT_MS = 10_000
MYSQL_SQL_MODE = "TRADITIONAL,ONLY_FULL_GROUP_BY"
MYSQL_CONNECT_TIMEOUT_S = 10
MYSQL_POOL_RECYCLE_S = 3600
SQLITE_FILE_NAME = "billingcenter.sqlite3"


def create_engine(
    url: str, pool_size: int = DEFAULT_POOL_SIZE, local_infile: bool = False
) -> Engine:
    """An engine for ``sqlite:///...`` or ``mysql+pymysql://...`` with the fixes applied.

    ``pool_size`` is the number of connections kept for concurrent use; size it
    to the thread pool that runs ledger calls (an in-memory SQLite database
    always has exactly one).  ``local_infile`` lets MySQL connections send files
    with ``LOAD DATA LOCAL INFILE`` (the usage-file loader's bulk path).  Only for
    a trusted server: the protocol lets the server ask for any file the client can
    read, so the daemon never turns it on.
    """
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(parsed, pool_size)
    if backend in ("mysql", "mariadb"):
        return _mysql_engine(parsed, pool_size, local_infile)
    raise ValueError(f"unsupported database {backend!r}: use sqlite:// or mysql+pymysql://")


def default_sqlite_url(data_dir: str | Path) -> str:
    """The URL of the embedded SQLite database inside ``data_dir`` (which must exist)."""
    return f"sqlite:///{Path(data_dir).resolve() / SQLITE_FILE_NAME}"


def _is_sqlite_memory(url: URL) -> bool:
    database = url.database or ""
    return database in ("", ":memory:") or "mode=memory" in database


def _sqlite_engine(url: URL, pool_size: int) -> Engine:
    memory = _is_sqlite_memory(url)
    engine = sqlalchemy.create_engine(
        url,
        poolclass=QueuePool,
        # One connection is the whole in-memory database: hand it out to one
        # thread at a time rather than give each thread an empty database.
        pool_size=1 if memory else pool_size,
        max_overflow=0,
        pool_timeout=SQLITE_BUSY_TIMEOUT_MS / 1000,
        connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
    )
    event.listen(engine, "connect", _sqlite_on_connect)
    event.listen(engine, "begin", _sqlite_on_begin)
    return engine


def _sqlite_on_connect(dbapi_connection: sqlite3.Connection, record: ConnectionPoolEntry) -> None:
    # Take transaction control away from the sqlite3 module (it would BEGIN
    # DEFERRED lazily); _sqlite_on_begin emits our own BEGIN.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    finally:
        cursor.close()


def _sqlite_on_begin(connection: Connection) -> None:
    # A deferred transaction that reads and then writes fails at once with
    # SQLITE_BUSY when another writer committed in between (WAL snapshots cannot
    # be upgraded); taking the write lock at BEGIN makes writers wait instead.
    read_only = connection.get_execution_options().get(READ_ONLY, False)
    connection.exec_driver_sql("BEGIN DEFERRED" if read_only else "BEGIN IMMEDIATE")


def _mysql_engine(url: URL, pool_size: int, local_infile: bool) -> Engine:
    connect_args: dict[str, Any] = {
        "charset": "utf8mb4",
        "local_infile": local_infile,
        "connect_timeout": MYSQL_CONNECT_TIMEOUT_S,
        "init_command": f"SET SESSION sql_mode='{MYSQL_SQL_MODE}', time_zone='+00:00'",
    }
    engine = sqlalchemy.create_engine(
        url,
        isolation_level="READ COMMITTED",
        pool_size=pool_size,
        max_overflow=0,
        pool_timeout=30,
        pool_pre_ping=True,
        pool_recycle=MYSQL_POOL_RECYCLE_S,
        pool_reset_on_return=None,  # _mysql_on_reset rolls back only when needed
        connect_args=connect_args,
    )
    event.listen(engine, "reset", _mysql_on_reset)
    return engine


def _mysql_on_reset(
    dbapi_connection: Any, record: ConnectionPoolEntry, state: PoolResetState
) -> None:
    # The pool's default reset sends ROLLBACK on every check-in, even after a
    # COMMIT: one wasted round trip per transaction on the hot path.  The server
    # reports in every reply whether a transaction is open; roll back only then.
    if state.terminate_only:
        return
    in_transaction = SERVER_STATUS.SERVER_STATUS_IN_TRANS
    if getattr(dbapi_connection, "server_status", in_transaction) & in_transaction:
        dbapi_connection.rollback()
