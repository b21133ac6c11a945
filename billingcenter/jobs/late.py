"""Facts recorded after their day was rated: which chunks to rate again, what now differs.

A state event (``updateOrderState``) may be recorded long after the time it carries,
and so after the business days it changes were rated; an account change
(``changeAccountNum``, stamped with its arrival time) only when its day was rated
before it closed.  ``late_chunks`` finds, for the chunks of a day's daily job, the
latest ``recorded_at`` of such facts: state events of the chunk's orders and account
changes of their (payer, product) pairs dated before the day's end.  The job rates a
done chunk again when that time is after the chunk was claimed, less ``LATE_MARGIN``
(a fact recorded just before the claim may have been committed after the chunk was
read, or on a host whose clock is behind).  Two grouped queries per rerun of a day
that has done chunks, none on a day's first run.

Rating a chunk again inserts the charges that are missing (a day the order now turns
out to have been active).  Stored charges are never changed: ``compare`` sets each
stored charge of the chunk's orders against what the current history prices and
returns those that differ (no charge now, or another amount) as ``Difference``
values, for an operator to credit or bill by hand.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any

import attrs
from sqlalchemy import and_, case, func, select
from sqlalchemy.engine import Connection

from billingcenter.jobs.claims import chunk_number
from billingcenter.jobs.reading import utc
from billingcenter.ledger import coverage
from billingcenter.ledger.charges import Claim
from billingcenter.ledger.coltypes import is_mysql
from billingcenter.ledger.schema import account_num_change, order_mirror, order_state_event
from billingcenter.ledger.schema_billing import payer_account
from billingcenter.ledger.schema_rating import charge
from billingcenter.rating.model import ChargeKind

# A fact recorded less than this before a chunk was claimed may not have been seen.
LATE_MARGIN = timedelta(minutes=5)


@attrs.frozen
class Difference:
    """A stored day charge that the current history prices otherwise."""

    day: date
    source_key: str
    order_id: str
    payer_id: str
    stored_fen: int
    current_fen: int | None  # None: the current history charges nothing for the day
    billed: bool  # the stored charge is on a bill (``billingcenter.ledger.coverage``)

    @property
    def over_fen(self) -> int:
        """How much more was charged than the current history supports (0 if less)."""
        return max(0, self.stored_fen - (self.current_fen or 0))

    @property
    def under_fen(self) -> int:
        """How much less was charged than the current history prices (0 if more)."""
        return max(0, (self.current_fen or 0) - self.stored_fen)


def is_late(recorded: datetime | None, held: Claim) -> bool:
    """Whether a fact recorded at ``recorded`` may be missing from the chunk ``held``."""
    return recorded is not None and recorded >= held.claimed_at - LATE_MARGIN


def late_chunks(
    conn: Connection,
    size: int,
    end: datetime,
    products: Sequence[str],
    accounts_products: Sequence[str],
    since: datetime,
) -> dict[int, datetime]:
    """Chunk -> latest ``recorded_at`` (at or after ``since``) of facts before ``end``.

    ``products`` are the day's daily products; ``accounts_products`` those priced by
    account counts.  No index leads with ``recorded_at``: each query reads its table
    through once.
    """
    number = chunk_number(order_mirror.c.id, size, is_mysql(conn.dialect))
    e, a, o = order_state_event.c, account_num_change.c, order_mirror.c
    queries = [
        select(number, func.max(e.recorded_at))
        .select_from(order_state_event.join(order_mirror, o.order_id == e.order_id))
        .where(e.recorded_at >= since, e.changed_at < end, o.product_code.in_(products))
        .group_by(number)
    ]
    if accounts_products:
        pair = and_(o.payer_id == a.payer_id, o.product_code == a.product_code)
        queries.append(
            select(number, func.max(a.recorded_at))
            .select_from(account_num_change.join(order_mirror, pair))
            .where(a.recorded_at >= since, a.changed_at < end,
                   a.product_code.in_(accounts_products))
            .group_by(number)
        )
    found: dict[int, datetime] = {}
    for query in queries:
        for chunk, recorded in conn.execute(query):
            at = recorded if isinstance(recorded, datetime) else utc(recorded)
            found[int(chunk)] = max(at, found.get(int(chunk), at))
    return found


def stored_charges(conn: Connection, day: date, lo: int, hi: int) -> list[tuple[Any, ...]]:
    """(source_key, order_id, payer_id, amount_fen, billed) of the day charges stored for
    the orders with ids in ``(lo, hi]`` (through the unique key of ``charge``)."""
    o, c = order_mirror.c, charge.c
    key = and_(c.kind == ChargeKind.DAILY.value, c.source_key == o.order_id + f"/{day.isoformat()}")
    query = (
        select(c.source_key, c.order_id, c.payer_id, c.amount_fen,
               case((coverage.billed(), 1), else_=0))
        .select_from(order_mirror.join(charge, key).outerjoin(
            payer_account, payer_account.c.payer_id == c.payer_id))
        .where(o.id > lo, o.id <= hi)
    )
    return [tuple(row) for row in conn.execute(query)]


def compare(
    day: date, stored: Sequence[tuple[Any, ...]], current: Mapping[str, int]
) -> list[Difference]:
    """The stored charges whose amount the current one (by source key) does not match.

    A stored 0 fen charge (a trial day) that the current history no longer supports
    moves no money and is left out."""
    found = []
    for source_key, order_id, payer_id, amount_fen, billed in stored:
        now = current.get(source_key)
        if now != amount_fen and not (now is None and amount_fen == 0):
            found.append(Difference(day, source_key, order_id, payer_id, int(amount_fen), now,
                                    bool(billed)))
    return found
