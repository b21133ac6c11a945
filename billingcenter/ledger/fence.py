"""The fence between charge inserts and bill runs: a bill run's charge id bound is exact.

A bill holds a payer's charges by their ids and days (``bill.upto_id``), so when a bill
run fixes its bound ``upto_id`` every charge with a lower id must already be committed:
an id handed out by a transaction that commits later would fall under the bound
without having been summed.  Auto-increment ids do not promise that by themselves.

So on MySQL every transaction that inserts charges first holds the single row of
``bill_fence`` in share mode (``hold``); a bill run takes it exclusively (``within``),
which waits for every such transaction in flight to commit, and reads the highest
charge id then, in a READ COMMITTED transaction.  Charge transactions that start while
it holds the row wait a moment, and their ids come out above the bound.  SQLite has one
writer at a time, so the highest committed id is the bound there already.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import func, insert, select
from sqlalchemy.engine import Connection, Engine

from billingcenter.ledger.coltypes import is_mysql
from billingcenter.ledger.schema_billing import bill_fence
from billingcenter.ledger.schema_rating import charge

FENCE_ROW = 1
T = TypeVar("T")
_ROW = select(bill_fence.c.id).where(bill_fence.c.id == FENCE_ROW)


def hold(conn: Connection) -> None:
    """Hold the fence in share mode until the caller's transaction ends (MySQL).

    A missing row (an emptied table) is put back first: under READ COMMITTED a lock on
    a row that is not there holds nothing.
    """
    if not is_mysql(conn.dialect):
        return
    if conn.execute(_ROW.with_for_update(read=True)).first() is None:
        conn.execute(insert(bill_fence).prefix_with("IGNORE"), {"id": FENCE_ROW})
        conn.execute(_ROW.with_for_update(read=True))


def within(engine: Engine, then: Callable[[Connection, int], T]) -> T:
    """``then(conn, bound)`` inside the fence, in one short transaction of its own.

    ``bound`` is the highest charge id, every charge up to it committed (0: no charge
    yet).  The fence is held exclusively until ``then`` returns, so two callers never
    overlap; the transaction commits after it.
    """
    if not is_mysql(engine.dialect):
        with engine.begin() as conn:
            return then(conn, _highest(conn))
    with engine.connect().execution_options(isolation_level="READ COMMITTED") as conn:
        with conn.begin():
            if conn.execute(_ROW.with_for_update()).first() is None:
                conn.execute(insert(bill_fence).prefix_with("IGNORE"), {"id": FENCE_ROW})
                conn.execute(_ROW.with_for_update())
            return then(conn, _highest(conn))


def _highest(conn: Connection) -> int:
    return int(conn.execute(select(func.max(charge.c.id))).scalar() or 0)
