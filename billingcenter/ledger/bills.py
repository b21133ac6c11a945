"""Bill runs in SQL: the run's bounds, payers registered, charges summed, bills written.

Every function runs inside the caller's transaction and never commits.  Which bill
holds a charge follows from the charge's id and day (``billingcenter.ledger.coverage``),
so a run never writes to ``charge``.  A run of date X (``billingcenter.jobs.billing``
drives it) has these steps:

* ``insert_run``: the ``bill_run`` row of X, with the charge id bound ``upto_id`` read
  under the fence (``billingcenter.ledger.fence``), status RUNNING.  One run at a
  time: ``running_other`` names another date's unfinished run (its sums would miss the
  bills this one writes).  A DONE date is final: charges rated later wait for the
  payers' next bills.
* ``register_payers``: on a date the default billing day is due, a default
  ``payer_account`` (POSTPAID, billing day NULL = ``[billing] day``, balance, floor and
  threshold 0, OPEN) for every payer with a charge and no row yet, ``unbilled_from``
  its lowest charge id (of any day);
  a row never billed whose ``unbilled_from`` is unknown (0) gets it the same way.
* ``plan_run``: ``start_id``, the lowest ``unbilled_from`` of the due payers
  (``DueRule``) not billed on X yet: below it every charge of theirs is billed or paid;
  ``carry_id``, the lowest id up to the bound of a charge dated X or later (those wait
  for the next bills), else the bound + 1; ``joined_upto``, up to which the sums join
  each charge's payer row: the highest bound of the due payers' earlier bills (above it
  none of their charges is billed), or the run's bound when fewer than half the payers
  are due (payers spread over many billing days: the join is cheaper than summing the
  charges of payers billed on other dates).
* ``sum_range``: one range of charge ids, in ``charge``'s own (clustered) order: the
  range's unbilled, unpaid charges dated before X, summed per (payer, order, product)
  into ``bill_part``.  Up to ``joined_upto`` each charge's payer row is joined to leave
  out what earlier bills hold and the payers this run does not bill.
* ``finish_chunk`` (once every range is summed): for one chunk of ``payer_account`` ids,
  the due payers still unbilled on X whose ``unbilled_from`` is at or above the run's
  ``start_id`` are locked; each with parts gets its bill (total, lines per (order,
  product), status OWED with ``deduction_id = DED-<payer_id>-<yyyymmdd>`` and its
  ``chargeAccount`` outbox message, or EMPTY), its payer row the bill's bound and date;
  every locked payer's ``unbilled_from`` becomes the run's ``carry_id``; the parts go.
* ``close_run``: the remaining parts (payers not billed) go; status DONE.

A payer is due on X when its billing day (own, else the default) is X's day of the
month; on the last day of a shorter month, payers whose day the month lacks are due
too (a day of 31 bills on 30 April).  Prepaid payers are never billed.
"""

from __future__ import annotations

import calendar
from datetime import date, datetime

import attrs
from sqlalchemy import (
    and_,
    case,
    func,
    insert,
    literal,
    literal_column,
    not_,
    null,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from billingcenter.ledger.coltypes import UtcDateTime, is_mysql
from billingcenter.ledger.coverage import covered
from billingcenter.ledger.outbox import ACCOUNT, CHARGE_ACCOUNT, epoch_ms
from billingcenter.ledger.schema_billing import (
    DONE,
    EMPTY,
    OPEN,
    OWED,
    PENDING,
    POSTPAID,
    RUNNING,
    bill,
    bill_line,
    bill_part,
    bill_run,
    outbox,
    payer_account,
)
from billingcenter.ledger.schema_rating import charge

# MariaDB sorts a GROUP BY's rows with their columns when they fit this many bytes,
# else it sorts row pointers and reads every row again: the sums' rows (two 64- and
# one 128-character key, utf8mb4) need more than the default 1024.
_SORT_DATA = 8192
_SORT_BUFFER = 32 * 2**20  # bytes: fewer merge passes for a range's millions of rows


@attrs.frozen
class DueRule:
    """Which payers are due on a bill date: the date and the default billing day."""

    bill_date: date
    default_day: int

    def condition(self) -> ColumnElement[bool]:
        """Payer rows that are postpaid and due on the date."""
        p = payer_account.c
        day = func.coalesce(p.billing_day, self.default_day)
        on_day = day >= self.bill_date.day if self._last_of_month else (
            day == self.bill_date.day)
        return and_(p.kind == POSTPAID, on_day)

    @property
    def default_due(self) -> bool:
        """Whether a payer on the default billing day (a new one) is due on the date."""
        day = self.bill_date.day
        return self.default_day >= day if self._last_of_month else self.default_day == day

    @property
    def _last_of_month(self) -> bool:
        last = calendar.monthrange(self.bill_date.year, self.bill_date.month)[1]
        return self.bill_date.day == last

    def unbilled(self) -> ColumnElement[bool]:
        """Payer rows due on the date and not billed on it (or later) yet."""
        p = payer_account.c
        return and_(self.condition(),
                    or_(p.billed_before.is_(None), p.billed_before < self.bill_date))


@attrs.frozen
class BillRun:
    """A ``bill_run`` row."""

    bill_date: date
    upto_id: int  # the charge id bound, read under the fence
    start_id: int  # the first charge id the sums read (0: not planned yet)
    carry_id: int  # the billed payers' unbilled_from afterwards
    joined_upto: int  # the sums join payer rows for charge ids up to this one
    status: str
    run_id: str

    @property
    def planned(self) -> bool:
        """``plan_run`` has fixed the start."""
        return self.start_id > 0


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


# ---------------------------------------------------------------------------- the run row

def find_run(conn: Connection, bill_date: date, lock: bool = False) -> BillRun | None:
    """The run of ``bill_date``, or None; ``lock``: its row FOR UPDATE."""
    r = bill_run.c
    query = select(r.bill_date, r.upto_id, r.start_id, r.carry_id, r.joined_upto, r.status,
                   r.run_id).where(r.bill_date == bill_date)
    row = conn.execute(query.with_for_update() if lock else query).first()
    return None if row is None else BillRun(*row)


def running_other(conn: Connection, bill_date: date) -> date | None:
    """The date of another run still RUNNING (the earliest), or None."""
    r = bill_run.c
    return conn.execute(select(func.min(r.bill_date))
                        .where(r.status == RUNNING, r.bill_date != bill_date)).scalar()


def insert_run(conn: Connection, bill_date: date, upto_id: int, run_id: str,
               now: datetime) -> None:
    """Start the run of ``bill_date`` with the bound ``upto_id`` (not planned yet)."""
    conn.execute(insert(bill_run), {
        "bill_date": bill_date, "upto_id": upto_id, "start_id": 0, "carry_id": 0,
        "joined_upto": 0, "status": RUNNING, "run_id": run_id, "started_at": now,
        "finished_at": None})


def register_payers(conn: Connection, run: BillRun, due: DueRule, now: datetime) -> int:
    """Add default payer rows for payers with charges and none yet, and fix
    ``unbilled_from`` of rows never billed; how many rows were added.

    The payers and their lowest charge ids come from the ``(payer_id, day)`` index, read
    whole: only on a date new payers are due on (the default billing day); on other
    dates they would not be billed anyway, and a later run adds them.
    """
    c, p = charge.c, payer_account.c
    added = _add_payers(conn, now) if due.default_due else 0
    # Rows made before their payer's first charge (a payment, ``payer set``): every
    # charge of theirs up to the bound counts; none: the next one is above the bound.
    first = (select(func.min(c.id)).where(c.payer_id == p.payer_id, c.id <= run.upto_id)
             .scalar_subquery())
    conn.execute(update(payer_account)
                 .where(p.billed_upto == 0, p.unbilled_from == 0)
                 .values(unbilled_from=func.coalesce(first, run.upto_id + 1)))
    return added


def _add_payers(conn: Connection, now: datetime) -> int:
    """Default rows for payers with charges and no row, ``unbilled_from`` their lowest
    charge id; how many."""
    c, p = charge.c, payer_account.c
    # Every charge of a payer counts for its lowest id, whatever its day: one dated on
    # or after the date, rated before an older one, waits below it for a later bill.
    charged = (
        select(c.payer_id.label("payer_id"), func.min(c.id).label("first_id"))
        .group_by(c.payer_id)
        # the index alone, in payer order (MariaDB may pick a scan of the table)
        .with_hint(charge, "FORCE INDEX (ix_charge_payer_id_day)", "mysql")
    ).subquery("charged")
    known = select(p.id).where(p.payer_id == charged.c.payer_id).exists()
    rows = select(
        charged.c.payer_id, literal(POSTPAID), null(), literal(0), literal(0), literal(0),
        literal(OPEN), null(), null(), literal(now, UtcDateTime()), charged.c.first_id,
    ).where(~known)
    return int(conn.execute(insert(payer_account).prefix_with(_ignore_prefix(conn)).from_select(
        [p.payer_id, p.kind, p.billing_day, p.balance_fen, p.floor_fen, p.threshold_fen,
         p.service_state, p.arrears_since, p.state_changed_at, p.updated_at, p.unbilled_from],
        rows,
    )).rowcount or 0)


def plan_run(conn: Connection, run: BillRun, due: DueRule) -> BillRun:
    """Fix the run's start, carry and joined bound (see the module doc)."""
    p, c = payer_account.c, charge.c
    low, covered_upto, due_payers = conn.execute(
        select(func.min(p.unbilled_from), func.max(p.billed_upto), func.count())
        .where(due.unbilled())).one()
    payers = conn.execute(select(func.count()).select_from(payer_account)).scalar_one()
    sparse = 2 * int(due_payers) < int(payers)
    start = run.upto_id + 1 if low is None else max(int(low), 1)
    later = conn.execute(select(func.min(c.id)).where(c.day >= run.bill_date,
                                                      c.id <= run.upto_id)).scalar()
    carry = run.upto_id + 1 if later is None else int(later)
    planned = attrs.evolve(run, start_id=start, carry_id=carry,
                           joined_upto=run.upto_id if sparse else int(covered_upto or 0))
    conn.execute(update(bill_run).where(bill_run.c.bill_date == run.bill_date).values(
        start_id=planned.start_id, carry_id=planned.carry_id,
        joined_upto=planned.joined_upto))
    return planned


def close_run(conn: Connection, run: BillRun, now: datetime) -> None:
    """Drop the parts left (payers not billed) and mark the run DONE."""
    conn.execute(bill_part.delete().where(bill_part.c.bill_date == run.bill_date))
    conn.execute(update(bill_run).where(bill_run.c.bill_date == run.bill_date,
                                        bill_run.c.status == RUNNING)
                 .values(status=DONE, finished_at=now))


# ---------------------------------------------------------------------------- the sums

def sum_range(conn: Connection, run: BillRun, due: DueRule, chunk: int, lo: int, hi: int
              ) -> int:
    """Sum the unbilled charges with ids ``lo..hi`` into ``bill_part``; rows added."""
    c, part = charge.c, bill_part.c
    rows = (
        select(literal(run.bill_date), c.payer_id, literal(chunk), c.order_id, c.product_code,
               func.count(), func.sum(c.amount_fen), func.min(c.day), func.max(c.day))
        .where(c.id >= lo, c.id <= hi, c.entry_id == 0, c.day < run.bill_date)
        .group_by(c.payer_id, c.order_id, c.product_code)
        .prefix_with("SQL_BIG_RESULT", dialect="mysql")  # a sort, not a hash of wide keys
    )
    if lo <= run.joined_upto:
        p = payer_account.c
        rows = (rows.select_from(charge.join(payer_account, p.payer_id == c.payer_id))
                .where(not_(covered()), due.unbilled(), p.unbilled_from >= run.start_id))
    statement = insert(bill_part).from_select(
        [part.bill_date, part.payer_id, part.chunk, part.order_id, part.product_code,
         part.charges, part.amount_fen, part.first_day, part.last_day],
        rows,
    )
    if not is_mysql(conn.dialect):
        return int(conn.execute(statement).rowcount or 0)
    conn.exec_driver_sql(f"SET SESSION max_length_for_sort_data = {_SORT_DATA}, "
                         f"sort_buffer_size = {_SORT_BUFFER}")
    try:
        return int(conn.execute(statement).rowcount or 0)
    finally:
        conn.exec_driver_sql("SET SESSION max_length_for_sort_data = DEFAULT, "
                             "sort_buffer_size = DEFAULT")


# ---------------------------------------------------------------------------- the bills

def finish_chunk(conn: Connection, run: BillRun, due: DueRule, lo: int, hi: int,
                 now: datetime) -> ChunkBills:
    """Bill the payers with ``lo < payer_account.id <= hi`` (see the module doc)."""
    p = payer_account.c
    locked = conn.execute(
        select(p.id, p.payer_id).where(p.id > lo, p.id <= hi, due.unbilled(),
                                       p.unbilled_from >= run.start_id)
        .order_by(p.id).with_for_update()).all()
    if not locked:
        return ChunkBills()
    # Lists, not subqueries: MariaDB runs an UPDATE's or DELETE's IN (SELECT ...) as a
    # dependent subquery per row of the date's parts.
    ids = [int(row.id) for row in locked]
    payers = [row.payer_id for row in locked]
    _insert_bills(conn, run, payers, now)
    # The chunk's bills: all made just now (a payer billed on the date was not locked).
    made_now = and_(bill.c.bill_date == run.bill_date, bill.c.payer_id.in_(payers))
    _insert_lines(conn, made_now)
    if not is_mysql(conn.dialect):  # MySQL counted them in the INSERT
        line = bill_line.c
        conn.execute(update(bill).where(made_now).values(
            lines=select(func.count()).where(line.bill_id == bill.c.id).scalar_subquery()))
    made = _queue_deductions(conn, made_now, now)
    has_bill = (select(bill.c.id).where(bill.c.payer_id == p.payer_id,
                                        bill.c.bill_date == run.bill_date).exists())
    conn.execute(update(payer_account).where(p.id.in_(ids)).values(
        billed_upto=case((has_bill, run.upto_id), else_=p.billed_upto),
        billed_before=case((has_bill, run.bill_date), else_=p.billed_before),
        updated_at=case((has_bill, literal(now, UtcDateTime())), else_=p.updated_at),
        unbilled_from=run.carry_id))
    conn.execute(bill_part.delete().where(bill_part.c.bill_date == run.bill_date,
                                          bill_part.c.payer_id.in_(payers)))
    return made


def _insert_bills(conn: Connection, run: BillRun, payers: list[str], now: datetime) -> None:
    """One bill per payer with parts: totals of its parts; OWED with a deduction id when
    the total is above 0, else EMPTY."""
    part, b = bill_part.c, bill.c
    total = func.sum(part.amount_fen)
    key = literal("DED-") + part.payer_id + literal(f"-{run.bill_date:%Y%m%d}")
    # The lines: distinct (order, product) pairs of the parts; SQLite's COUNT(DISTINCT)
    # takes one expression, so there they are counted once the lines are written.
    lines = (literal_column("COUNT(DISTINCT bill_part.order_id, bill_part.product_code)")
             if is_mysql(conn.dialect) else literal(0))
    rows = (
        select(part.payer_id, literal(run.bill_date), func.min(part.first_day),
               func.max(part.last_day), total, lines, func.sum(part.charges),
               case((total > 0, OWED), else_=EMPTY), case((total > 0, key), else_=null()),
               literal(now, UtcDateTime()), null(), literal(run.run_id), literal(run.upto_id))
        .where(part.bill_date == run.bill_date, part.payer_id.in_(payers))
        .group_by(part.payer_id)
    )
    conn.execute(insert(bill).from_select(
        [b.payer_id, b.bill_date, b.first_day, b.last_day, b.total_fen, b.lines, b.charges,
         b.status, b.deduction_id, b.created_at, b.settled_at, b.run_id, b.upto_id],
        rows,
    ))


def _insert_lines(conn: Connection, made_now: ColumnElement[bool]) -> None:
    """One line per (bill, order, product): the sum of its parts."""
    part, line, b = bill_part.c, bill_line.c, bill.c
    rows = (
        select(b.id, part.order_id, part.product_code, func.sum(part.charges),
               func.sum(part.amount_fen), func.min(part.first_day), func.max(part.last_day))
        .select_from(bill.join(bill_part, and_(part.bill_date == b.bill_date,
                                               part.payer_id == b.payer_id)))
        .where(made_now)
        .group_by(b.id, part.order_id, part.product_code)
    )
    conn.execute(insert(bill_line).from_select(
        [line.bill_id, line.order_id, line.product_code, line.charges, line.amount_fen,
         line.first_day, line.last_day],
        rows,
    ))


def _queue_deductions(conn: Connection, made_now: ColumnElement[bool], now: datetime
                      ) -> ChunkBills:
    """The ``chargeAccount`` outbox message of each new OWED bill (a ``DeductionRequest``,
    built in SQL); what the chunk made."""
    b, o = bill.c, outbox.c
    payload = func.json_object(
        "deductionId", b.deduction_id, "billId", b.id, "payerId", b.payer_id,
        "amountFen", b.total_fen, "billDate", b.bill_date, "firstDay", b.first_day,
        "lastDay", b.last_day, "createdAt", literal(epoch_ms(now)),
    )
    stamp = literal(now, UtcDateTime())
    rows = select(
        b.deduction_id, literal(ACCOUNT), literal(CHARGE_ACCOUNT), literal(""), payload,
        literal(PENDING), literal(0), stamp, null(), null(), literal(""), stamp, null(),
    ).where(made_now, b.status == OWED)
    queued = int(conn.execute(insert(outbox).from_select(
        [o.message_key, o.target, o.method, o.ordering_key, o.payload, o.status, o.attempts,
         o.next_attempt_at, o.lease_owner, o.lease_until, o.last_error, o.created_at,
         o.delivered_at],
        rows,
    )).rowcount or 0)
    bills, owed, charges, total = conn.execute(
        select(func.count(), func.count(b.deduction_id), func.coalesce(func.sum(b.charges), 0),
               func.coalesce(func.sum(b.total_fen), 0)).where(made_now)
    ).one()
    return ChunkBills(bills=int(bills), owed=int(owed), empty=int(bills) - int(owed),
                      charges=int(charges), total_fen=int(total), messages=queued)
