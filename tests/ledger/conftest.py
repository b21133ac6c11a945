"""Ledger backends for the shared behaviour suite: memory, SQLite (a temp file), MariaDB.

MariaDB: the database named
by ``BILLINGCENTER_TEST_MYSQL_URL`` (default ``billingcenter_ledger_test``, tagged by
``BILLINGCENTER_TEST_DB_TAG`` as ``tests.support.mysql_test_url`` says; the name must
end in ``_test`` because it is dropped and re-created) is migrated once per
session with ``migrate.upgrade`` and emptied before each test.  An unreachable
MariaDB fails the run when ``CI=true`` and skips its tests, with the reason,
otherwise.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from billingcenter.ledger import migrate
from billingcenter.ledger.engine import create_engine
from billingcenter.ledger.memory import MemoryLedger
from billingcenter.ledger.port import Ledger
from billingcenter.ledger.schema import metadata
from billingcenter.ledger.store import SqlLedger
from tests.support import mysql_test_url, reset_mysql_database

MYSQL_URL = mysql_test_url("ledger", "BILLINGCENTER_TEST_MYSQL_URL")

BACKENDS = ["memory", "sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb)]
SQL_BACKENDS = ["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb)]


@pytest.fixture(scope="session")
def mysql_url() -> str:
    """The URL of the MariaDB test database, fresh and migrated for this session."""
    reset_mysql_database(MYSQL_URL)
    migrate.upgrade(MYSQL_URL)
    return MYSQL_URL


@pytest.fixture(scope="session")
def mysql_engine(mysql_url: str) -> Iterator[Engine]:
    """One pooled engine on the MariaDB test database for the whole session."""
    engine = create_engine(mysql_url, pool_size=16)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test instead of migrating each time."""
    path = tmp_path_factory.mktemp("template") / "ledger.sqlite3"
    migrate.upgrade(f"sqlite:///{path}")
    return path


def empty_tables(engine: Engine) -> None:
    """Delete every row, children first."""
    with engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete())


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    """The URL of a migrated SQLite file of this test's own."""
    path = tmp_path / "ledger.sqlite3"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture(params=SQL_BACKENDS)
def sql_engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """An empty, migrated database: SQLite or MariaDB, by the test's parameter."""
    if request.param == "sqlite":
        engine = create_engine(request.getfixturevalue("sqlite_url"))
        yield engine
        engine.dispose()
        return
    engine = request.getfixturevalue("mysql_engine")
    empty_tables(engine)
    yield engine


@pytest.fixture(params=BACKENDS)
def ledger(request: pytest.FixtureRequest) -> Iterator[Ledger]:
    """An empty ledger on each backend in turn."""
    if request.param == "memory":
        yield MemoryLedger()
        return
    if request.param == "sqlite":
        engine = create_engine(request.getfixturevalue("sqlite_url"))
        yield SqlLedger(engine)
        engine.dispose()
        return
    engine = request.getfixturevalue("mysql_engine")
    empty_tables(engine)
    yield SqlLedger(engine)


@pytest.fixture
def mariadb_engine(mysql_engine: Engine) -> Engine:
    """The session's MariaDB engine on emptied tables."""
    empty_tables(mysql_engine)
    return mysql_engine
