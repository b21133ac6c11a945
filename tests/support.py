"""Shared test helpers: the rule that real services are mandatory in CI."""

from __future__ import annotations

import os

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


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
