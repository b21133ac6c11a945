"""The engine factory: per-database settings applied on every connection."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa
from pymysql.constants import SERVER_STATUS

from billingcenter.ledger.engine import (
    DEFAULT_POOL_SIZE,
    READ_ONLY,
    create_engine,
    default_sqlite_url,
)


class TestSqlite:
    def test_file_settings(self, tmp_path):
        """A file database runs in WAL with foreign keys and a busy timeout."""
        engine = create_engine(f"sqlite:///{tmp_path}/x.sqlite3")
        with engine.connect() as conn:
            pragmas = [
                conn.exec_driver_sql(f"PRAGMA {p}").scalar()
                for p in ("journal_mode", "foreign_keys", "busy_timeout")
            ]
        assert pragmas == ["wal", 1, 10000]
        assert engine.pool.size() == DEFAULT_POOL_SIZE
        engine.dispose()

    def test_memory_is_one_database_for_all_threads(self):
        """An in-memory database written on one thread is read on another."""
        engine = create_engine("sqlite://")
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE t (n INTEGER)")
            conn.exec_driver_sql("INSERT INTO t VALUES (7)")
        seen = []

        def read():
            with engine.connect() as conn:
                seen.append(conn.exec_driver_sql("SELECT n FROM t").scalar())

        worker = threading.Thread(target=read)
        worker.start()
        worker.join(5)
        assert seen == [7]

    def test_readers_do_not_wait_for_a_writer(self, tmp_path):
        """A read-only transaction begins while another connection holds the write lock."""
        engine = create_engine(f"sqlite:///{tmp_path}/x.sqlite3")
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE t (n INTEGER)")
        with engine.begin() as writer:
            writer.exec_driver_sql("INSERT INTO t VALUES (1)")
            with engine.connect() as reader:
                reader.execution_options(**{READ_ONLY: True})
                assert reader.exec_driver_sql("SELECT count(*) FROM t").scalar() == 0
        engine.dispose()

    def test_writers_take_the_lock_at_begin(self, tmp_path):
        """A write transaction holds the write lock from BEGIN on (BEGIN IMMEDIATE)."""
        engine = create_engine(f"sqlite:///{tmp_path}/x.sqlite3")
        with engine.connect() as conn:
            conn.begin()
            assert conn.connection.dbapi_connection.in_transaction
            conn.rollback()
        raw = sa.create_engine(f"sqlite:///{tmp_path}/x.sqlite3", connect_args={"timeout": 0})
        with engine.begin(), pytest.raises(sa.exc.OperationalError, match="locked"):
            with raw.connect() as other:
                other.exec_driver_sql("BEGIN IMMEDIATE")
        raw.dispose()
        engine.dispose()

    def test_default_url(self, tmp_path):
        """The embedded database is a file named billingcenter.sqlite3 in the data dir."""
        assert (
            default_sqlite_url(tmp_path) == f"sqlite:///{tmp_path.resolve()}/billingcenter.sqlite3"
        )


@pytest.mark.mariadb
class TestMariaDB:
    def test_session_settings(self, mysql_engine):
        """Every connection is utf8mb4, strict, UTC and READ COMMITTED."""
        with mysql_engine.connect() as conn:
            mode, zone, charset = conn.exec_driver_sql(
                "SELECT @@session.sql_mode, @@session.time_zone, @@session.character_set_connection"
            ).one()
            isolation = conn.get_isolation_level()
        assert "STRICT_ALL_TABLES" in mode.split(",")
        assert (zone, isolation, charset) == ("+00:00", "READ COMMITTED", "utf8mb4")

    def test_an_open_transaction_is_rolled_back_on_return(self, mariadb_engine):
        """A connection handed back mid-transaction is rolled back before reuse."""
        raw = mariadb_engine.raw_connection()
        dbapi = raw.dbapi_connection
        cursor = raw.cursor()
        cursor.execute(
            "INSERT INTO error_record (method, `key`, code, reason, payload, received_at) "
            "VALUES ('m', 'k', 'c', 'r', 'p', '2025-01-01')"
        )
        assert dbapi.server_status & SERVER_STATUS.SERVER_STATUS_IN_TRANS
        raw.close()
        assert not dbapi.server_status & SERVER_STATUS.SERVER_STATUS_IN_TRANS
        with mariadb_engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM error_record").scalar() == 0

    def test_no_rollback_after_a_commit(self, mariadb_engine):
        """A committed connection goes back to the pool without another round trip."""
        rollbacks = []
        with mariadb_engine.connect() as conn:
            dbapi = conn.connection.dbapi_connection
            dbapi.rollback = lambda: rollbacks.append(1)
            with conn.begin():
                conn.exec_driver_sql("SELECT 1")
        del dbapi.rollback
        assert rollbacks == []

    def test_pool(self, mysql_url):
        """The pool pings before use and is sized for the thread pool."""
        engine = create_engine(mysql_url)
        assert engine.pool.size() == DEFAULT_POOL_SIZE
        assert engine.pool._pre_ping
        engine.dispose()


def test_unsupported_database():
    """Only SQLite and MySQL/MariaDB URLs are accepted."""
    with pytest.raises(ValueError, match="unsupported"):
        create_engine("postgresql://localhost/x")
