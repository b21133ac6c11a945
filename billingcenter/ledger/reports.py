"""Statistics of charges: totals grouped by any combination of dimensions (one query).

Dimensions (``DIMENSIONS``): ``payer`` (``charge.payer_id``), ``product``
(``product_code``), ``order`` (``order_id``), ``rule_set``, ``day`` (the charge's
business day, ``yyyy-mm-dd``) and ``month`` (``yyyy-mm`` of that business day).  Days
are business days as rated (``charge.day``, in the business time zone), so a month is
the charges of its business days whatever the UTC time they were rated at.

Filters (``ReportFilter``): ``first``/``last`` business days, both inclusive; payers,
products and rule sets (any of the listed values); and what became of the charge:
``billed`` (on a bill: ``billingcenter.ledger.coverage``), ``prepaid`` (paid from a balance:
``entry_id <> 0``), ``open`` (neither: still to be billed or paid).

``report_rows`` runs one ``GROUP BY`` query ordered by the dimensions and streams its
rows (a server-side cursor on MySQL/MariaDB): memory does not grow with the number of
groups.  Amounts are integer fen; SQLite and MariaDB give identical rows (keys compare
by code point on both).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date
from typing import Any

import attrs
from sqlalchemy import String, func, select, type_coerce
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.sql.elements import ColumnElement

from billingcenter.ledger import coverage
from billingcenter.ledger.coltypes import is_mysql
from billingcenter.ledger.schema_billing import payer_account
from billingcenter.ledger.schema_rating import charge

DIMENSIONS = ("payer", "product", "order", "rule_set", "day", "month")
BILLED, PREPAID, OPEN = "billed", "prepaid", "open"
SETTLEMENTS = (BILLED, PREPAID, OPEN)


@attrs.frozen
class ReportFilter:
    """Which charges a report counts (empty tuples and ``None``: no condition)."""

    first: date | None = None
    last: date | None = None
    payers: tuple[str, ...] = ()
    products: tuple[str, ...] = ()
    rule_sets: tuple[str, ...] = ()
    settlement: str | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.in_(SETTLEMENTS)))


@attrs.frozen
class ReportRow:
    """One group: its dimension values (as text, in ``by`` order), charges and fen."""

    keys: tuple[str, ...]
    charges: int
    amount_fen: int


def unknown_dimensions(by: Sequence[str]) -> list[str]:
    """The names in ``by`` that are not dimensions."""
    return [name for name in by if name not in DIMENSIONS]


def _month(dialect: Dialect) -> ColumnElement[Any]:
    """``yyyy-mm`` of the business day, in the dialect's own date function."""
    if is_mysql(dialect):
        expression = func.date_format(charge.c.day, "%Y-%m")
    else:
        expression = func.strftime("%Y-%m", charge.c.day)
    return type_coerce(expression, String)


def _column(name: str, dialect: Dialect) -> ColumnElement[Any]:
    columns: dict[str, ColumnElement[Any]] = {
        "payer": charge.c.payer_id, "product": charge.c.product_code,
        "order": charge.c.order_id, "rule_set": charge.c.rule_set, "day": charge.c.day,
    }
    return _month(dialect) if name == "month" else columns[name]


def _conditions(where: ReportFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if where.first is not None:
        conditions.append(charge.c.day >= where.first)
    if where.last is not None:
        conditions.append(charge.c.day <= where.last)
    for column, values in ((charge.c.payer_id, where.payers),
                           (charge.c.product_code, where.products),
                           (charge.c.rule_set, where.rule_sets)):
        if values:
            conditions.append(column.in_(values))
    if where.settlement == BILLED:
        conditions.append(coverage.billed())
    elif where.settlement == PREPAID:
        conditions.append(charge.c.entry_id != 0)
    elif where.settlement == OPEN:
        conditions.append(coverage.waiting())
    return conditions


def report_query(by: Sequence[str], where: ReportFilter, dialect: Dialect) -> Any:
    """The ``GROUP BY`` select: the dimensions, ``charges`` and ``amount_fen``."""
    if unknown_dimensions(by) or len(set(by)) != len(by):
        raise ValueError(f"bad dimensions {list(by)!r}; known: {', '.join(DIMENSIONS)}")
    keys = [_column(name, dialect).label(f"k{i}") for i, name in enumerate(by)]
    query = select(*keys, func.count().label("charges"),
                   func.coalesce(func.sum(charge.c.amount_fen), 0).label("amount_fen"))
    conditions = _conditions(where)
    if where.settlement in (BILLED, OPEN):  # what the payer's bills hold
        query = query.select_from(charge.outerjoin(
            payer_account, payer_account.c.payer_id == charge.c.payer_id))
    if conditions:
        query = query.where(*conditions)
    if keys:
        positions = [_column(name, dialect) for name in by]
        query = query.group_by(*positions).order_by(*positions)
    return query


def report_rows(conn: Connection, by: Sequence[str], where: ReportFilter) -> Iterator[ReportRow]:
    """The groups of the report, in dimension order, streamed from the database.

    With no dimension it is one row, the grand total (also when no charge matches).
    """
    query = report_query(by, where, conn.dialect)
    result = conn.execution_options(stream_results=True, yield_per=1000).execute(query)
    for row in result:
        values = tuple(row)
        yield ReportRow(tuple(_text(v) for v in values[:-2]), int(values[-2]), int(values[-1]))


def _text(value: object) -> str:
    if isinstance(value, date):
        return value.isoformat()
    return str(value)
