"""Reading a chunk's rows fast: on MySQL, packed into one string by the server.

PyMySQL decodes every column of every row in Python, which costs more than the rest
of rating a daily charge.  On MySQL/MariaDB ``fetch`` therefore asks the server for
the whole result as ONE string (``GROUP_CONCAT`` of ``CONCAT_WS``, a unit separator
between fields, a record separator after each row) plus the row count, and splits it
with ``str.split``.  The packing is checked, never trusted: every row must end with
the field separator and have exactly the columns asked for, and the rows must be as
many as counted; a value that contains a separator or a result the server truncated
fails the check (as does a result longer than ``max_allowed_packet``, which comes back
NULL) and the chunk is read again the ordinary way.  Every column must be
NOT NULL (``CONCAT_WS`` skips NULLs).  Elsewhere (SQLite) rows are read as usual.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, literal_column, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql import Select

from billingcenter.ledger.coltypes import is_mysql

FIELD = "\x1f"  # ASCII unit separator
RECORD = "\x1e"  # ASCII record separator
GROUP_CONCAT_MAX = 1 << 30  # bytes; the result is also bounded by max_allowed_packet

Decode = Callable[[str], Any]


def text(value: str) -> str:
    """A string column, as is."""
    return value


def utc(value: str) -> datetime:
    """A ``UtcDateTime`` column as MySQL prints it (``YYYY-MM-DD HH:MM:SS[.ffffff]``)."""
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


def fetch(
    conn: Connection, query: Select[Any], decoders: Sequence[Decode]
) -> list[tuple[Any, ...]]:
    """The rows of ``query`` as tuples; ``decoders`` turn each packed field back into a value."""
    if not is_mysql(conn.dialect):
        return [tuple(row) for row in conn.execute(query)]
    rows = _packed(conn, query, decoders)
    if rows is None:
        return [tuple(row) for row in conn.execute(query)]
    return rows


def _packed(
    conn: Connection,
    query: Select[Any],
    decoders: Sequence[Decode],
    group_concat_max: int = GROUP_CONCAT_MAX,
) -> list[tuple[Any, ...]] | None:
    width = len(decoders)
    inner = query.with_only_columns(
        *(column.label(f"c{i}") for i, column in enumerate(query.selected_columns))
    ).subquery("packed")
    fields = ", ".join(f"packed.c{i}" for i in range(width))
    packed: Any = select(
        func.count(),
        literal_column(f"GROUP_CONCAT(CONCAT_WS('{FIELD}', {fields}, '') SEPARATOR '{RECORD}')"),
    ).select_from(inner)
    conn.exec_driver_sql(f"SET SESSION group_concat_max_len = {group_concat_max}")
    count, body = conn.execute(packed).one()
    if not count:
        return []
    if body is None:  # longer than max_allowed_packet: the server gives up
        return None
    if not isinstance(body, str):
        raise TypeError(f"packed rows came back as {type(body).__name__}, not text")
    lines = body.split(RECORD)
    if len(lines) != count:
        return None
    found: list[tuple[Any, ...]] = []
    append = found.append
    pairs = tuple(enumerate(decoders))
    for line in lines:
        values = line.split(FIELD)
        if len(values) != width + 1 or values[width]:
            return None
        append(tuple([decode(values[i]) for i, decode in pairs]))
    return found
