"""Payer accounts and their balances: rows, locks, balance entries, paying from a balance.

Everything here runs inside the caller's transaction and never commits.  The rules:

* a payer row is created with the defaults (``POSTPAID``, billing day NULL, balance,
  floor and threshold 0, ``OPEN``) the first time something needs it (``ensure_payers``);
* payer rows are locked with ``SELECT ... FOR UPDATE`` in ``payer_id`` order
  (``lock_payers``), so two transactions locking several payers cannot deadlock on them;
* a balance changes only together with its ``balance_entry`` row (signed fen, the
  balance after it, a unique ``entry_key``), under the payer's lock, and never below
  ``floor_fen``: money is taken only while ``balance - amount >= floor``;
* charges of a payer are paid from its balance oldest (lowest id) first, each with an
  entry ``charge:<charge id>`` and ``charge.entry_id`` set; the first charge that does not
  fit stops the payment (it and the later ones stay unpaid, ``entry_id = 0``);
* bills in ``ARREARS`` are settled from the balance oldest first while the balance covers
  a whole bill (entry ``bill:<bill id>``; the bill becomes ``SETTLED``).

Charges are read with ``FOR UPDATE`` under the payer's lock, which a bill run takes too
before it bills the payer, and marked with ``entry_id = 0`` in the ``WHERE``: a charge
a bill holds (``billingcenter.ledger.coverage``) or a payment took is never paid.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import attrs
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.engine import Connection

from billingcenter.ledger import coverage
from billingcenter.ledger.schema_billing import (
    ARREARS,
    OPEN,
    POSTPAID,
    PREPAID,
    SETTLED,
    balance_entry,
    bill,
    payer_account,
)
from billingcenter.ledger.schema_rating import charge

TOPUP, CHARGE, BILL = "TOPUP", "CHARGE", "BILL"  # balance_entry.kind
IN_LIST = 5000  # keys per IN (...) list
PREPAID_SCAN = 2000  # prepaid payers read whole by the rating hook (more: looked up)


class BalanceError(Exception):
    """A balance would go below its floor, or locked rows changed: a bug; never committed."""


@attrs.frozen
class Payer:
    """One ``payer_account`` row."""

    payer_id: str
    kind: str = POSTPAID
    billing_day: int | None = None
    balance_fen: int = 0
    floor_fen: int = 0
    threshold_fen: int = 0
    service_state: str = OPEN
    arrears_since: datetime | None = None
    state_changed_at: datetime | None = None
    updated_at: datetime | None = None


FIELDS = tuple(f.name for f in attrs.fields(Payer))
COLUMNS = tuple(payer_account.c[name] for name in FIELDS)


@attrs.frozen
class Paid:
    """What paying from one payer's balance did."""

    payer: Payer  # after the payment
    paid: int = 0  # charges or bills paid
    amount_fen: int = 0  # taken from the balance
    short: bool = False  # something was left unpaid because the balance did not cover it


def payer_of(row: Any) -> Payer:
    """A ``payer_account`` row (selected with ``COLUMNS``) as a value."""
    return Payer(**{name: row._mapping[name] for name in FIELDS})


def ensure_payers(conn: Connection, payer_ids: Iterable[str], now: datetime) -> None:
    """Create the default row of each payer that has none (a concurrent insert is fine)."""
    wanted = sorted(set(payer_ids))
    for start in range(0, len(wanted), IN_LIST):
        chunk = wanted[start:start + IN_LIST]
        known = set(conn.execute(select(payer_account.c.payer_id)
                                 .where(payer_account.c.payer_id.in_(chunk))).scalars())
        rows = [_default_row(p, now) for p in chunk if p not in known]
        if rows:
            statement = (insert(payer_account).prefix_with("IGNORE", dialect="mysql")
                         .prefix_with("OR IGNORE", dialect="sqlite"))
            conn.execute(statement, rows)


def _default_row(payer_id: str, now: datetime) -> dict[str, Any]:
    row = attrs.asdict(Payer(payer_id))
    row["updated_at"] = now
    return row


def lock_payers(conn: Connection, payer_ids: Iterable[str]) -> dict[str, Payer]:
    """Lock the rows of the payers (in ``payer_id`` order) and read them.

    Always through the ``payer_id`` index: a scan of the primary key (MariaDB's choice
    on a small table) would lock the rows but not their index entries, which an UPDATE
    by ``payer_id`` then takes, while another transaction holding those entries waits
    for the rows: a deadlock.
    """
    wanted = sorted(set(payer_ids))
    found: dict[str, Payer] = {}
    for start in range(0, len(wanted), IN_LIST):
        query = (select(*COLUMNS).where(payer_account.c.payer_id.in_(wanted[start:start + IN_LIST]))
                 .with_hint(payer_account, "FORCE INDEX (uq_payer_account_payer_id)", "mysql")
                 .order_by(payer_account.c.payer_id).with_for_update())
        found.update((row.payer_id, payer_of(row)) for row in conn.execute(query))
    return found


def read_payer(conn: Connection, payer_id: str) -> Payer | None:
    """A payer's row without locking it, or None."""
    row = conn.execute(select(*COLUMNS).where(payer_account.c.payer_id == payer_id)).first()
    return payer_of(row) if row is not None else None


def save_payer(conn: Connection, before: Payer, after: Payer, now: datetime) -> None:
    """Write the fields of ``after`` that differ from ``before`` (the row is locked)."""
    changes = {name: getattr(after, name) for name in FIELDS
               if getattr(after, name) != getattr(before, name) and name != "updated_at"}
    if changes:
        changes["updated_at"] = now
        conn.execute(update(payer_account).where(payer_account.c.payer_id == after.payer_id)
                     .values(**changes))


def append_entries(
    conn: Connection, payer: Payer, moves: Sequence[tuple[str, str, int]], now: datetime
) -> tuple[Payer, dict[str, int]]:
    """Append ``(entry_key, kind, amount_fen)`` entries to a locked payer's balance.

    Answers the payer with its new balance (not yet saved: ``save_payer``) and the new
    entries' ids by key.  Money out never takes the balance below the floor.
    """
    balance, rows = payer.balance_fen, []
    for key, kind, amount in moves:
        balance += amount
        if amount < 0 and balance < payer.floor_fen:
            raise BalanceError(f"{key} would take {payer.payer_id} to {balance} fen")
        rows.append({"entry_key": key, "payer_id": payer.payer_id, "kind": kind,
                     "amount_fen": amount, "balance_after_fen": balance, "created_at": now})
    if not rows:
        return payer, {}
    conn.execute(insert(balance_entry), rows)
    keys = [row["entry_key"] for row in rows]
    ids = {key: int(entry_id) for key, entry_id in conn.execute(
        select(balance_entry.c.entry_key, balance_entry.c.id)
        .where(balance_entry.c.entry_key.in_(keys)))}
    return attrs.evolve(payer, balance_fen=balance), ids


def unpaid_charges(conn: Connection, payer_ids: Sequence[str]) -> dict[str, list[tuple[int, int]]]:
    """``(charge id, amount_fen)`` of the payers' charges neither billed nor paid, oldest
    first, locked."""
    found: dict[str, list[tuple[int, int]]] = {}
    wanted = sorted(set(payer_ids))
    for start in range(0, len(wanted), IN_LIST):
        query = (select(charge.c.id, charge.c.payer_id, charge.c.amount_fen)
                 .select_from(charge.join(payer_account,
                                          payer_account.c.payer_id == charge.c.payer_id))
                 .where(charge.c.payer_id.in_(wanted[start:start + IN_LIST]),
                        coverage.waiting())
                 .order_by(charge.c.id).with_for_update(of=charge))
        for charge_id, payer_id, amount in conn.execute(query):
            found.setdefault(payer_id, []).append((int(charge_id), int(amount)))
    return found


def pay_charges(
    conn: Connection, payer: Payer, unpaid: Sequence[tuple[int, int]], now: datetime
) -> Paid:
    """Pay a locked payer's ``unpaid`` charges from its balance while it stays >= floor."""
    room = payer.balance_fen - payer.floor_fen
    taken: list[tuple[int, int]] = []
    for charge_id, amount in unpaid:
        if amount > room:
            break
        room -= amount
        taken.append((charge_id, amount))
    short = len(taken) < len(unpaid)
    if not taken:
        return Paid(payer, short=short)
    moves = [(f"charge:{cid}", CHARGE, -amount) for cid, amount in taken]
    after, ids = append_entries(conn, payer, moves, now)
    marked = conn.execute(
        update(charge).where(charge.c.id == bindparam("cid"), charge.c.entry_id == 0)
        .values(entry_id=bindparam("eid")),
        [{"cid": cid, "eid": ids[f"charge:{cid}"]} for cid, _ in taken],
    ).rowcount
    if marked != len(taken):
        raise BalanceError(f"charges of {payer.payer_id} changed while locked")
    save_payer(conn, payer, after, now)
    return Paid(after, len(taken), sum(amount for _, amount in taken), short)


def settle_bills(conn: Connection, payer: Payer, now: datetime) -> Paid:
    """Settle a locked payer's ``ARREARS`` bills from its balance, oldest first, while the
    balance covers a whole bill without going below the floor."""
    bills = conn.execute(
        select(bill.c.id, bill.c.total_fen)
        .where(bill.c.payer_id == payer.payer_id, bill.c.status == ARREARS)
        .order_by(bill.c.bill_date, bill.c.id).with_for_update()
    ).all()
    room = payer.balance_fen - payer.floor_fen
    taken: list[tuple[int, int]] = []
    for bill_id, total in bills:
        if total > room:
            break
        room -= total
        taken.append((int(bill_id), int(total)))
    if not taken:
        return Paid(payer, short=bool(bills))
    moves = [(f"bill:{bid}", BILL, -total) for bid, total in taken]
    after, _ = append_entries(conn, payer, moves, now)
    conn.execute(update(bill).where(bill.c.id.in_([bid for bid, _ in taken]))
                 .values(status=SETTLED, settled_at=now))
    save_payer(conn, payer, after, now)
    return Paid(after, len(taken), sum(total for _, total in taken), len(taken) < len(bills))


def topup(conn: Connection, payer: Payer, serial: str, amount_fen: int, now: datetime) -> Payer:
    """Add a top-up (entry ``topup:<serial>``) to a locked payer's balance."""
    after, _ = append_entries(conn, payer, [(f"topup:{serial}", TOPUP, amount_fen)], now)
    save_payer(conn, payer, after, now)
    return after


def by_payer(payers: Mapping[str, Payer], kind: str) -> list[str]:
    """The ids of the payers of one kind, sorted."""
    return sorted(p for p, payer in payers.items() if payer.kind == kind)



def lock_prepaid(conn: Connection, payer_ids: Iterable[str]) -> dict[str, Payer]:
    """The rating jobs' hook, before their charges are inserted: lock the prepaid payers
    among ``payer_ids`` (none: one indexed SELECT, nothing locked)."""
    wanted = sorted(set(payer_ids))
    # Few payers are prepaid: read them all along the (kind, payer_id) index and intersect
    # here; with more than PREPAID_SCAN of them, look up the chunk's payers instead.
    every = list(conn.execute(
        select(payer_account.c.payer_id).where(payer_account.c.kind == PREPAID)
        .limit(PREPAID_SCAN + 1)).scalars())
    prepaid: list[str] = []
    if len(every) <= PREPAID_SCAN:
        prepaid = sorted(set(every).intersection(wanted))
    else:
        for start in range(0, len(wanted), IN_LIST):
            prepaid.extend(conn.execute(select(payer_account.c.payer_id).where(
                payer_account.c.payer_id.in_(wanted[start:start + IN_LIST]),
                payer_account.c.kind == PREPAID)).scalars())
    if not prepaid:
        return {}
    locked = lock_payers(conn, prepaid)
    return {p: payer for p, payer in locked.items() if payer.kind == PREPAID}


def pay_prepaid(conn: Connection, locked: Mapping[str, Payer], now: datetime) -> int:
    """The rating jobs' hook, after their charges are inserted: pay the unpaid charges of
    the ``locked`` prepaid payers from their balances; how many were paid.

    Stopping a payer whose balance ran low is left to the arrears check
    (``billingcenter.jobs.arrears``), which knows which orders to stop.
    """
    unpaid = unpaid_charges(conn, sorted(locked))
    return sum(pay_charges(conn, locked[p], unpaid.get(p, []), now).paid for p in sorted(locked))
