"""Bill runs in SQL: payers registered, bills opened, then finished chunk by chunk.

Every function runs inside the caller's transaction and never commits.  A run of
date X has three phases (``billingcenter.jobs.billing`` drives them):

* ``register_payers``: one ``INSERT ... SELECT`` adds a default ``payer_account``
  (POSTPAID, billing day NULL = ``[billing] day``, balance, floor and threshold 0, OPEN)
  for every payer with a charge dated before the bill date and no row yet.  Concurrent
  runs are harmless (``INSERT IGNORE`` / ``INSERT OR IGNORE``).
* ``open_bills``: one ``INSERT IGNORE ... SELECT`` opens a bill with status
  ``BUILDING`` (no lines, totals 0) for every due payer (``DueRule``) that has unbilled
  charges (``bill_id = 0 AND entry_id = 0 AND day < X``) and no bill for X yet
  (unique (payer_id, bill_date) keeps it idempotent).
* marking: ``billingcenter.ledger.bill_marks`` marks the charges with their BUILDING
  bills in ranges of ``charge.id`` and sums them per (bill, order, product) into
  ``bill_part``.
* ``bill_chunk`` (once every range is marked): for the due payers of one chunk of
  ``payer_account`` ids, in one transaction and a handful of statements:

  1. their BUILDING bills are locked (by id; a bill no longer BUILDING is left alone);
  2. one line per (order, product) is the sum of the bill's parts, and the bill's
     total, counts and first/last day are those of its lines: the parts are the
     charges marked with the bill, so a bill's total is that of its marked charges;
  3. total > 0: status OWED, ``deduction_id = DED-<payer_id>-<yyyymmdd>`` and a
     ``chargeAccount`` outbox message with that key; otherwise EMPTY and no message;
     a bill that got no charge (taken meanwhile) is deleted;
  4. the parts are deleted.

A payer is due on X when its billing day (own, else the default) is X's day of the
month; on the last day of a shorter month, payers whose day the month lacks are due
too (a day of 31 bills on 30 April).  Prepaid payers are never billed.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import attrs
from sqlalchemy import and_, case, exists, func, insert, literal, null, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from billingcenter.ledger.coltypes import UtcDateTime, is_mysql
from billingcenter.ledger.outbox import ACCOUNT, CHARGE_ACCOUNT, OutboxMessage, enqueue, epoch_ms
from billingcenter.ledger.schema_billing import (
    BUILDING,
    EMPTY,
    OPEN,
    OWED,
    POSTPAID,
    bill,
    bill_line,
    bill_part,
    payer_account,
)
from billingcenter.ledger.schema_rating import charge


@attrs.frozen
class DueRule:
    """Which payers are due on a bill date: the date and the default billing day."""

    bill_date: date
    default_day: int

    def condition(self) -> ColumnElement[bool]:
        """Payer rows that are postpaid and due on the date."""
        p = payer_account.c
        day = func.coalesce(p.billing_day, self.default_day)
        last = calendar.monthrange(self.bill_date.year, self.bill_date.month)[1]
        on_day = day >= self.bill_date.day if self.bill_date.day == last else (
            day == self.bill_date.day)
        return and_(p.kind == POSTPAID, on_day)


@attrs.frozen
class ChunkBills:
    """What billing one chunk did (committed with it)."""

    bills: int = 0
    owed: int = 0
    empty: int = 0
    charges: int = 0
    total_fen: int = 0
    messages: int = 0


def deduction_id(payer_id: str, bill_date: date) -> str:
    """The idempotency key of a bill's ``chargeAccount``: ``DED-<payer>-<yyyymmdd>``."""
    return f"DED-{payer_id}-{bill_date:%Y%m%d}"


def _ignore_prefix(conn: Connection) -> str:
    return "IGNORE" if is_mysql(conn.dialect) else "OR IGNORE"


def register_payers(conn: Connection, bill_date: date, now: datetime) -> int:
    """Add default payer rows for payers with charges before ``bill_date``; how many.

    The distinct payers come from the ``(payer_id, day)`` index alone; a payer whose
    charges are all billed or prepaid has a row already (its bill or balance made it).
    """
    c = charge.c
    charged = (
        select(c.payer_id.label("payer_id")).where(c.day < bill_date).group_by(c.payer_id)
    ).subquery("charged")
    known = exists().where(payer_account.c.payer_id == charged.c.payer_id)
    rows = select(
        charged.c.payer_id, literal(POSTPAID), null(), literal(0), literal(0), literal(0),
        literal(OPEN), null(), null(), literal(now, UtcDateTime()),
    ).where(~known)
    p = payer_account.c
    statement = insert(payer_account).prefix_with(_ignore_prefix(conn)).from_select(
        [p.payer_id, p.kind, p.billing_day, p.balance_fen, p.floor_fen, p.threshold_fen,
         p.service_state, p.arrears_since, p.state_changed_at, p.updated_at],
        rows,
    )
    return int(conn.execute(statement).rowcount or 0)


def _unbilled(bill_date: date) -> ColumnElement[bool]:
    c = charge.c
    return and_(c.bill_id == 0, c.entry_id == 0, c.day < bill_date)


def open_bills(conn: Connection, due: DueRule, now: datetime, run_id: str) -> int:
    """Open a BUILDING bill for each due payer with unbilled charges and no bill for
    the date yet (one ``INSERT ... SELECT``); how many were opened."""
    p, c, b = payer_account.c, charge.c, bill.c
    has_charges = exists().where(c.payer_id == p.payer_id, _unbilled(due.bill_date))
    billed = exists().where(b.payer_id == p.payer_id, b.bill_date == due.bill_date)
    rows = select(
        p.payer_id, literal(due.bill_date), null(), null(), literal(0), literal(0), literal(0),
        literal(BUILDING), null(), literal(now, UtcDateTime()), null(), literal(run_id),
    ).where(due.condition(), ~billed, has_charges)
    statement = insert(bill).prefix_with(_ignore_prefix(conn)).from_select(
        [b.payer_id, b.bill_date, b.first_day, b.last_day, b.total_fen, b.lines, b.charges,
         b.status, b.deduction_id, b.created_at, b.settled_at, b.run_id],
        rows,
    )
    return int(conn.execute(statement).rowcount or 0)


def bill_chunk(conn: Connection, bill_date: date, lo: int, hi: int, now: datetime
               ) -> ChunkBills:
    """Finish the BUILDING bills of the payers with ``lo < payer_account.id <= hi``
    from their parts (see the module doc)."""
    ids = _lock_building(conn, _building(conn, bill_date, lo, hi))
    if not ids:
        return ChunkBills()
    _insert_lines(conn, ids)
    _total_bills(conn, ids, bill_date)
    made = _finish(conn, ids, now)
    conn.execute(bill_part.delete().where(bill_part.c.bill_id.in_(ids)))
    return made


def _building(conn: Connection, bill_date: date, lo: int, hi: int) -> list[int]:
    """The ids of the chunk's BUILDING bills of the date."""
    p, b = payer_account.c, bill.c
    query = (
        select(b.id)
        .select_from(payer_account.join(
            bill, and_(b.payer_id == p.payer_id, b.bill_date == bill_date)))
        .where(p.id > lo, p.id <= hi, b.status == BUILDING)
        .order_by(b.id)
    )
    return [int(i) for i in conn.execute(query).scalars()]


def _lock_building(conn: Connection, ids: Sequence[int]) -> list[int]:
    """Lock the bills (by their own ids: payer rows stay free) and keep those still
    BUILDING: a pass marking charges meanwhile has committed, or waits for this."""
    if not ids:
        return []
    query = (select(bill.c.id).where(bill.c.id.in_(ids), bill.c.status == BUILDING)
             .order_by(bill.c.id).with_for_update())
    return [int(i) for i in conn.execute(query).scalars()]


def _insert_lines(conn: Connection, ids: Sequence[int]) -> None:
    """One line per (bill, order, product): the sum of its parts."""
    part, line = bill_part.c, bill_line.c
    rows = (
        select(part.bill_id, part.order_id, part.product_code, func.sum(part.charges),
               func.sum(part.amount_fen), func.min(part.first_day), func.max(part.last_day))
        .where(part.bill_id.in_(ids))
        .group_by(part.bill_id, part.order_id, part.product_code)
    )
    conn.execute(insert(bill_line).from_select(
        [line.bill_id, line.order_id, line.product_code, line.charges, line.amount_fen,
         line.first_day, line.last_day],
        rows,
    ))


def _total_bills(conn: Connection, ids: Sequence[int], bill_date: date) -> None:
    """Each bill's totals from its lines; status and deduction id from the total."""
    line = bill_line.c
    sums = (
        select(line.bill_id.label("bill_id"), func.sum(line.amount_fen).label("total"),
               func.sum(line.charges).label("charges"), func.count().label("lines"),
               func.min(line.first_day).label("first_day"),
               func.max(line.last_day).label("last_day"))
        .where(line.bill_id.in_(ids))
        .group_by(line.bill_id)
    ).subquery("sums")
    owed = sums.c.total > 0
    key = literal("DED-") + bill.c.payer_id + literal(f"-{bill_date:%Y%m%d}")
    conn.execute(
        update(bill)
        .values(
            total_fen=sums.c.total, charges=sums.c.charges, lines=sums.c.lines,
            first_day=sums.c.first_day, last_day=sums.c.last_day,
            status=case((owed, OWED), else_=EMPTY),
            deduction_id=case((owed, key), else_=null()),
        )
        .where(bill.c.id == sums.c.bill_id)
    )


def _finish(conn: Connection, ids: Sequence[int], now: datetime) -> ChunkBills:
    """Drop the bills without lines; queue the OWED bills' deductions; what was made."""
    b = bill.c
    made = conn.execute(
        select(b.id, b.payer_id, b.bill_date, b.first_day, b.last_day, b.total_fen,
               b.charges, b.status, b.deduction_id, b.created_at)
        .where(b.id.in_(ids))
    ).all()
    # A bill whose payer had no charge left to mark (taken meanwhile) is still BUILDING:
    # dropped.  The DELETE names its ids only: a long IN list may be run as a scan
    # locking other workers' rows.
    unmarked = [int(row.id) for row in made if row.charges == 0]
    if unmarked:
        conn.execute(bill.delete().where(bill.c.id.in_(unmarked)))
        made = [row for row in made if row.charges != 0]
    owed = [row for row in made if row.status == OWED]
    messages = [deduction_message(row) for row in owed]
    queued = enqueue(conn, messages, now)
    return ChunkBills(
        bills=len(made), owed=len(owed), empty=len(made) - len(owed),
        charges=sum(int(row.charges) for row in made),
        total_fen=sum(int(row.total_fen) for row in made), messages=queued,
    )


def deduction_message(row: Any) -> OutboxMessage:
    """The ``chargeAccount`` call of an owed bill row (a ``DeductionRequest``)."""
    return OutboxMessage(
        message_key=row.deduction_id,
        target=ACCOUNT,
        method=CHARGE_ACCOUNT,
        payload={
            "deductionId": row.deduction_id,
            "billId": int(row.id),
            "payerId": row.payer_id,
            "amountFen": int(row.total_fen),
            "billDate": row.bill_date.isoformat(),
            "firstDay": row.first_day.isoformat(),
            "lastDay": row.last_day.isoformat(),
            "createdAt": epoch_ms(row.created_at),
        },
    )

