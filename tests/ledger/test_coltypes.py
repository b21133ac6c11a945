"""Column types: aware UTC datetimes only, exact keys."""

from __future__ import annotations

from datetime import datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mysql, sqlite

from billingcenter.ledger.coltypes import Key, UtcDateTime, key_collation
from billingcenter.ledger.schema import error_record


class TestUtcDateTime:
    def test_refuses_naive(self, sql_engine):
        """A naive datetime is refused rather than stored as some local time."""
        row = {
            "method": "m",
            "key": "k",
            "code": "c",
            "reason": "r",
            "payload": "p",
            "received_at": datetime(2025, 1, 1),
        }
        with pytest.raises(sa.exc.StatementError, match="naive"), sql_engine.begin() as conn:
            conn.execute(error_record.insert(), row)

    def test_renders_microseconds_on_mysql(self):
        """On MySQL the column is DATETIME(6)."""
        assert str(UtcDateTime().compile(dialect=mysql.dialect())) == "DATETIME(6)"


class TestKey:
    def test_no_pad_binary_on_mariadb(self):
        """MariaDB keys use the binary NO PAD collation: 'a' and 'a ' differ."""
        dialect = mysql.dialect()
        dialect.is_mariadb = True
        assert key_collation(dialect) == "utf8mb4_nopad_bin"
        assert str(Key(64).compile(dialect=dialect)) == "VARCHAR(64) COLLATE utf8mb4_nopad_bin"

    def test_plain_on_sqlite(self):
        """SQLite's default collation is already exact."""
        assert str(Key(64).compile(dialect=sqlite.dialect())) == "VARCHAR(64)"
