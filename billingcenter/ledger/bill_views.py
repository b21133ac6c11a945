"""Reading bills: a list, one bill with its lines, and the charges behind a line.

Read-only; each function runs in the caller's (read) transaction and returns frozen
values.  A line is explained by the charges its bill holds (by its bound and date,
``billingcenter.ledger.coverage``) for its (order, product): each charge carries its
rule set, version, rule, units and unit price.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import attrs
from sqlalchemy import select
from sqlalchemy.engine import Connection

from billingcenter.ledger import coverage
from billingcenter.ledger.schema_billing import bill, bill_line
from billingcenter.ledger.schema_rating import charge


@attrs.frozen
class Bill:
    """A bill as stored."""

    id: int
    payer_id: str
    bill_date: date
    first_day: date | None
    last_day: date | None
    total_fen: int
    lines: int
    charges: int
    status: str
    deduction_id: str | None
    created_at: datetime
    settled_at: datetime | None


@attrs.frozen
class BillLine:
    """One line of a bill: the charges of one order and product."""

    id: int
    bill_id: int
    order_id: str
    product_code: str
    charges: int
    amount_fen: int
    first_day: date
    last_day: date


@attrs.frozen
class BilledCharge:
    """A charge on a bill, with what priced it."""

    id: int
    kind: str
    source_key: str
    day: date
    rule_set: str
    rule_set_version: str
    rule_id: str
    units: Decimal
    unit_price: Decimal
    amount_fen: int
    explanation: str


_BILL = (bill.c.id, bill.c.payer_id, bill.c.bill_date, bill.c.first_day, bill.c.last_day,
         bill.c.total_fen, bill.c.lines, bill.c.charges, bill.c.status, bill.c.deduction_id,
         bill.c.created_at, bill.c.settled_at)


def _bill(row: Any) -> Bill:
    return Bill(*row)


def list_bills(
    conn: Connection,
    payer_id: str | None = None,
    bill_date: date | None = None,
    status: str | None = None,
    limit: int = 100,
) -> list[Bill]:
    """Bills matching every filter given, newest date first (then by id), at most ``limit``."""
    query = select(*_BILL)
    if payer_id is not None:
        query = query.where(bill.c.payer_id == payer_id)
    if bill_date is not None:
        query = query.where(bill.c.bill_date == bill_date)
    if status is not None:
        query = query.where(bill.c.status == status)
    query = query.order_by(bill.c.bill_date.desc(), bill.c.id).limit(limit)
    return [_bill(row) for row in conn.execute(query)]


def get_bill(conn: Connection, bill_id: int) -> Bill | None:
    """One bill, or None."""
    row = conn.execute(select(*_BILL).where(bill.c.id == bill_id)).first()
    return _bill(row) if row is not None else None


def bill_lines(conn: Connection, bill_id: int) -> list[BillLine]:
    """The lines of a bill by order and product."""
    b = bill_line.c
    query = (
        select(b.id, b.bill_id, b.order_id, b.product_code, b.charges, b.amount_fen,
               b.first_day, b.last_day)
        .where(b.bill_id == bill_id)
        .order_by(b.order_id, b.product_code)
    )
    return [BillLine(*row) for row in conn.execute(query)]


def line_charges(conn: Connection, found: Bill, lines: Sequence[BillLine]
                 ) -> dict[int, list[BilledCharge]]:
    """The charges behind each of ``lines`` of bill ``found``, by line id, in day order."""
    c, b = charge.c, bill.c
    upto = conn.execute(select(b.upto_id).where(b.id == found.id)).scalar_one()
    previous = conn.execute(
        select(b.upto_id, b.bill_date)
        .where(b.payer_id == found.payer_id, b.bill_date < found.bill_date)
        .order_by(b.bill_date.desc()).limit(1)).first()
    prev_upto, prev_before = previous if previous is not None else (0, None)
    query = (
        select(c.order_id, c.product_code, c.id, c.kind, c.source_key, c.day, c.rule_set,
               c.rule_set_version, c.rule_id, c.units, c.unit_price, c.amount_fen,
               c.explanation)
        # the (payer_id, day) index finds them; the bounds pick this bill's
        .where(c.payer_id == found.payer_id, c.day < found.bill_date,
               coverage.on_bill(upto, found.bill_date, prev_upto, prev_before))
        .order_by(c.day, c.id)
    )
    by_key = {(line.order_id, line.product_code): line.id for line in lines}
    result: dict[int, list[BilledCharge]] = {line.id: [] for line in lines}
    for order_id, product_code, *rest in conn.execute(query):
        line_id = by_key.get((order_id, product_code))
        if line_id is not None:
            result[line_id].append(BilledCharge(*rest))
    return result
