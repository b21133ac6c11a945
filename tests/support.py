"""Shared test helpers: the rule that real services are mandatory in CI."""

from __future__ import annotations

import os

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
