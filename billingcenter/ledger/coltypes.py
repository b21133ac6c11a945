"""Column types shared by the schema and its migrations.

Each type hides one per-database difference: aware UTC datetimes in and out
(``DATETIME(6)`` on MySQL), case- and space-exact keys (binary, no-pad collation
on MySQL/MariaDB), ASCII digests, and long text.  Migrations import these, so a
change here changes how old migrations render: add new types, do not edit these.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import CHAR, BigInteger, DateTime, Integer, String, Text
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

MYSQL_DIALECTS = ("mysql", "mariadb")


def is_mysql(dialect: Dialect) -> bool:
    """True for MySQL and MariaDB, whichever dialect name the URL chose."""
    return dialect.name in MYSQL_DIALECTS


class UtcDateTime(TypeDecorator[datetime]):
    """An aware UTC ``datetime``; stored naive in UTC, microseconds kept."""

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        """``DATETIME(6)`` on MySQL, the dialect's plain ``DateTime`` elsewhere."""
        if is_mysql(dialect):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime())

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Refuse naive datetimes; store the UTC wall time."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"refusing to store a naive datetime: {value!r}")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        """Give the stored UTC wall time back as an aware datetime."""
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime from the database, got {value!r}")
        return value.replace(tzinfo=UTC)


class Key(TypeDecorator[str]):
    """A caller's key or a code: compared exactly (case, trailing spaces).

    MySQL's ``utf8mb4_bin`` is case-sensitive but ignores trailing spaces
    (PAD SPACE), so ``'a'`` and ``'a '`` would collide in a unique index; MariaDB
    and MySQL 8.0.17+ have a binary NO PAD collation, used when available.
    """

    impl = String
    cache_ok = True

    def __init__(self, length: int) -> None:
        super().__init__(length)
        self.length = length

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        """A binary-collated ``VARCHAR`` on MySQL, a plain one elsewhere."""
        length = self.length
        if is_mysql(dialect):
            return dialect.type_descriptor(mysql.VARCHAR(length, collation=key_collation(dialect)))
        return dialect.type_descriptor(String(length))


def key_collation(dialect: Dialect) -> str:
    """The exact (binary, no-pad where possible) utf8mb4 collation of this server."""
    if getattr(dialect, "is_mariadb", False):
        return "utf8mb4_nopad_bin"
    version = dialect.server_version_info or (0,)
    return "utf8mb4_0900_bin" if version >= (8, 0, 17) else "utf8mb4_bin"


def digest_type() -> TypeEngine[str]:
    """A SHA-256 hex digest: ``CHAR(64)``, ASCII on MySQL (a quarter of utf8mb4's size)."""
    return CHAR(64).with_variant(
        mysql.CHAR(64, charset="ascii", collation="ascii_bin"), *MYSQL_DIALECTS
    )


def long_text() -> TypeEngine[str]:
    """Unbounded text (payloads): ``MEDIUMTEXT`` on MySQL, where ``TEXT`` stops at 64 KiB."""
    return Text().with_variant(mysql.MEDIUMTEXT(), *MYSQL_DIALECTS)


def row_id() -> TypeEngine[int]:
    """An auto-increment surrogate key: ``BIGINT``, SQLite's rowid ``INTEGER``."""
    return BigInteger().with_variant(Integer(), "sqlite")
