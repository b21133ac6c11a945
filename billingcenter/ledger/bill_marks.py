"""Marking charges with their bills, range by range of ``charge.id``, and summing them.

The second phase of a bill run (``billingcenter.jobs.billing``).  Its bills exist
already, status ``BUILDING`` (``billingcenter.ledger.bills.open_bills``); this phase
walks ``charge`` in its clustered (id) order, so that each page is read and written
once, whatever the order charges were rated in.  Every function runs inside the
caller's transaction and never commits.

``mark_range`` is one pass over the ids ``lo..hi``, in ONE transaction:

1. every unbilled charge there (``bill_id = 0 AND entry_id = 0 AND day < X``) whose
   payer has a BUILDING bill for X with ``after < bill.id <= upto`` is marked with it
   (one multi-table UPDATE; SQLite ``UPDATE ... FROM``; on MySQL ``charge`` drives
   through its primary key and finds each bill through (payer_id, bill_date), forced:
   right after the open the statistics of ``bill`` may still say it is empty, and a
   scan of ``bill`` per charge would never end);
2. the charges just marked (those of the same bills in the same range) are summed per
   (bill, order, product) into ``bill_part``, tagged with the range's number.

A pass takes the bills opened up to ``upto`` (``newest_building``: the highest id of
X's BUILDING bills) and not taken by an earlier pass of the range (``after``, the
``upto`` of the previous pass), so a range is passed again only for bills opened
since, and the sums of a range never count a charge twice (``bill_part``'s key is
(bill, range, order, product): a repeat would fail, not add).  A charge rated while
its range is passed is either marked and summed in the same transaction or left for
the next bill.
"""

from __future__ import annotations

from datetime import date

import attrs
from sqlalchemy import func, insert, literal, select, text, update
from sqlalchemy.engine import Connection

from billingcenter.ledger.coltypes import is_mysql
from billingcenter.ledger.schema_billing import BUILDING, bill, bill_part
from billingcenter.ledger.schema_rating import charge


@attrs.frozen
class MarkPass:
    """One pass over a range of charge ids: the bill date, the range, the bills it takes."""

    bill_date: date
    chunk: int  # the range's number (its claim's chunk)
    lo: int  # first charge id
    hi: int  # last charge id
    after: int  # bills with ids above this one ...
    upto: int  # ... up to this one


_MYSQL_MARK = text(
    "UPDATE charge c STRAIGHT_JOIN bill b FORCE INDEX (uq_bill_payer_id_bill_date)"
    " ON b.payer_id = c.payer_id"
    " AND b.bill_date = :bill_date AND b.status = :building"
    " AND b.id > :after AND b.id <= :upto"
    " SET c.bill_id = b.id"
    " WHERE c.id BETWEEN :lo AND :hi AND c.bill_id = 0 AND c.entry_id = 0"
    " AND c.day < :bill_date"
)


def lowest_unbilled(conn: Connection, bill_date: date) -> int | None:
    """The lowest id of a charge a bill of ``bill_date`` could take (None: none).

    Walks the ids upwards and stops at the first one: the billed history before it
    is skipped by the mark ranges.
    """
    c = charge.c
    query = (select(c.id).where(c.bill_id == 0, c.entry_id == 0, c.day < bill_date)
             .order_by(c.id).limit(1))
    found = conn.execute(query).scalar()
    return None if found is None else int(found)


def highest_charge(conn: Connection) -> int:
    """The highest charge id (0: no charge)."""
    return int(conn.execute(select(func.max(charge.c.id))).scalar() or 0)


def newest_building(conn: Connection, bill_date: date) -> int:
    """The highest id of a BUILDING bill of ``bill_date`` (0: none)."""
    b = bill.c
    query = select(func.max(b.id)).where(b.bill_date == bill_date, b.status == BUILDING)
    return int(conn.execute(query).scalar() or 0)


def mark_range(conn: Connection, run: MarkPass) -> int:
    """Mark the range's charges with the pass's bills and sum them; charges marked."""
    if run.upto <= run.after:
        return 0
    marked = _mark(conn, run)
    if marked:
        _sum_parts(conn, run)
    return marked


def _mark(conn: Connection, run: MarkPass) -> int:
    """Step 1: the multi-table UPDATE; how many charges it marked."""
    if is_mysql(conn.dialect):
        result = conn.execute(_MYSQL_MARK, {**attrs.asdict(run), "building": BUILDING})
        return int(result.rowcount or 0)
    c, b = charge.c, bill.c
    statement = (
        update(charge)
        .values(bill_id=b.id)
        .where(b.payer_id == c.payer_id, b.bill_date == run.bill_date, b.status == BUILDING,
               b.id > run.after, b.id <= run.upto,
               c.id >= run.lo, c.id <= run.hi, c.bill_id == 0, c.entry_id == 0,
               c.day < run.bill_date)
    )
    return int(conn.execute(statement).rowcount or 0)


def _sum_parts(conn: Connection, run: MarkPass) -> None:
    """Step 2: the charges this pass marked, summed per (bill, order, product)."""
    c, b, part = charge.c, bill.c, bill_part.c
    # The pass's bills read once (a set), not once per charge: a join re-reading (and
    # share-locking) the bill of every charge crawls when two passes run at once.
    bills = select(b.id).where(b.bill_date == run.bill_date, b.status == BUILDING,
                               b.id > run.after, b.id <= run.upto)
    rows = (
        select(c.bill_id, literal(run.chunk), c.order_id, c.product_code, func.count(),
               func.sum(c.amount_fen), func.min(c.day), func.max(c.day))
        .where(c.id >= run.lo, c.id <= run.hi, c.bill_id > run.after, c.bill_id <= run.upto,
               c.bill_id.in_(bills))
        .group_by(c.bill_id, c.order_id, c.product_code)
        # Groups by a sort, not a hash table of wide string keys: several times faster.
        .prefix_with("SQL_BIG_RESULT", dialect="mysql")
    )
    conn.execute(insert(bill_part).from_select(
        [part.bill_id, part.chunk, part.order_id, part.product_code, part.charges,
         part.amount_fen, part.first_day, part.last_day],
        rows,
    ))
