"""Shared test helpers: the rule that real services are mandatory in CI."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# Appended to every MariaDB test database name, so that two checkouts (e.g. git
# worktrees) can run the suite at once on one server without dropping each other's data.
DB_TAG = os.environ.get("BILLINGCENTER_TEST_DB_TAG", "")
MYSQL_SERVER = "mysql+pymysql://root@127.0.0.1:3306/"


def mysql_test_url(name: str, variable: str | None = None) -> str:
    """The URL of MariaDB test database ``billingcenter_<name>_test`` (tagged).

    ``variable``, when set in the environment, gives the whole URL instead.
    """
    if variable and os.environ.get(variable):
        return os.environ[variable]
    tag = f"_{DB_TAG}" if DB_TAG else ""
    return f"{MYSQL_SERVER}billingcenter_{name}{tag}_test"


def unavailable(reason: str) -> None:
    """Fail loudly in CI, skip with the reason elsewhere, when a real part is missing."""
    if IN_CI:
        pytest.fail(f"{reason} (mandatory when CI=true)", pytrace=False)
    pytest.skip(reason)


def reset_mysql_database(url: str) -> None:
    """Drop and re-create the MariaDB database at ``url`` (its name must end in ``_test``)."""
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    name = parsed.database
    if not name or not name.endswith("_test"):
        pytest.fail(f"refusing to drop database {name!r}: its name must end in _test")
    server = sa.create_engine(parsed.set(database="").render_as_string(hide_password=False))
    try:
        with server.begin() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
            conn.exec_driver_sql(
                f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
            )
    except sa.exc.OperationalError as exc:
        unavailable(f"cannot prepare database {name!r} on MariaDB: {exc.orig}")
    finally:
        server.dispose()


def migrated_mysql_engine(url: str, pool_size: int) -> Iterator[Any]:
    """A fresh, migrated MariaDB test database's engine (for a module or session fixture)."""
    from billingcenter.ledger import migrate
    from billingcenter.ledger.engine import create_engine

    reset_mysql_database(url)
    migrate.upgrade(url)
    engine = create_engine(url, pool_size=pool_size)
    yield engine
    engine.dispose()


def sqlite_template(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    """A migrated SQLite file, to be copied for each test."""
    from billingcenter.ledger import migrate

    path = tmp_path_factory.mktemp(name) / "ledger.sqlite3"
    migrate.upgrade(f"sqlite:///{path}")
    return path


def empty_ledger(request: pytest.FixtureRequest, tmp_path: Path, template: str, mysql: str
                 ) -> Iterator[Any]:
    """An empty migrated ledger, ids from 1 (chunks are id ranges): a copy of the SQLite
    ``template`` fixture's file, or the ``mysql`` fixture's engine with every table emptied,
    as ``request.param`` says ("sqlite" or "mariadb")."""
    from billingcenter.ledger.engine import create_engine
    from billingcenter.ledger.tables import metadata

    if request.param == "sqlite":
        path = tmp_path / "ledger.sqlite3"
        shutil.copyfile(request.getfixturevalue(template), path)
        sqlite = create_engine(f"sqlite:///{path}")
        yield sqlite
        sqlite.dispose()
        return
    mariadb = request.getfixturevalue(mysql)
    with mariadb.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete())
        for table in metadata.sorted_tables:
            conn.exec_driver_sql(f"ALTER TABLE `{table.name}` AUTO_INCREMENT = 1")
    yield mariadb


def url_of(engine: Any) -> str:
    """The URL of ``engine``, password included (for a subprocess)."""
    return str(engine.url.render_as_string(hide_password=False))
