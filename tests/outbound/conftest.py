"""Fixtures of the outbound tests: the reactor thread, fakes on loopback, SQLite and MariaDB.

MariaDB: database ``billingcenter_outbound_test`` (tagged by ``BILLINGCENTER_TEST_DB_TAG``,
or ``BILLINGCENTER_TEST_OUTBOUND_MYSQL_URL``), migrated once per session, emptied per test.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from billingcenter.ledger import migrate
from billingcenter.ledger.engine import create_engine
from billingcenter.ledger.schema_billing import outbox
from tests.fakes import FakeAccountSystem, FakeBusinessSystem, FakeServer
from tests.reactor_thread import ReactorThread, reactor_thread
from tests.support import mysql_test_url, reset_mysql_database

MYSQL_URL = mysql_test_url("outbound", "BILLINGCENTER_TEST_OUTBOUND_MYSQL_URL")
SQL_BACKENDS = ["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb)]


@pytest.fixture(scope="session")
def rt() -> ReactorThread:
    """The reactor, running in a background thread."""
    return reactor_thread()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test."""
    path = tmp_path_factory.mktemp("outbound") / "template.sqlite3"
    migrate.upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    """A migrated SQLite database of this test's own."""
    path = tmp_path / "billingcenter.sqlite3"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture(scope="session")
def mysql_engine() -> Iterator[Engine]:
    """The session's MariaDB test database, fresh and migrated."""
    reset_mysql_database(MYSQL_URL)
    migrate.upgrade(MYSQL_URL)
    engine = create_engine(MYSQL_URL, pool_size=12)
    yield engine
    engine.dispose()


@pytest.fixture(params=SQL_BACKENDS)
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """An empty migrated database: SQLite, then MariaDB."""
    if request.param == "sqlite":
        made = create_engine(request.getfixturevalue("sqlite_url"), pool_size=12)
        yield made
        made.dispose()
        return
    shared = request.getfixturevalue("mysql_engine")
    with shared.begin() as conn:
        conn.execute(outbox.delete())
    yield shared


@pytest.fixture
def account(rt: ReactorThread) -> Iterator[FakeServer]:
    """A fake account system listening on loopback."""
    served = rt.call(lambda: FakeServer(FakeAccountSystem(rt.reactor)).start())
    yield served
    rt.call(served.stop)


@pytest.fixture
def business(rt: ReactorThread) -> Iterator[FakeServer]:
    """A fake business system listening on loopback."""
    served = rt.call(lambda: FakeServer(FakeBusinessSystem(rt.reactor)).start())
    yield served
    rt.call(served.stop)
