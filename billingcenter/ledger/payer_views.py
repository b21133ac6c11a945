"""Read-only views of payers for ``billingcenter payer show|list``."""

from __future__ import annotations

from typing import Any

import attrs
from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine

from billingcenter.ledger import transact
from billingcenter.ledger.accounts import COLUMNS, Payer, payer_of, read_payer
from billingcenter.ledger.schema_billing import (
    ARREARS,
    balance_entry,
    bill,
    payment,
    service_event,
)


@attrs.frozen
class PayerView:
    """A payer with its latest entries, bills, payments and service events (newest first)."""

    payer: Payer
    entries: tuple[tuple[Any, ...], ...]  # (id, entry_key, kind, amount, balance after, at)
    bills: tuple[tuple[Any, ...], ...]  # (id, bill_date, total_fen, status, deduction_id)
    payments: tuple[tuple[Any, ...], ...]  # (serial, deduction_id, amount, status, outcome, at)
    events: tuple[tuple[Any, ...], ...]  # (id, order_id, product, action, reason, at)


def show(engine: Engine, payer_id: str, limit: int = 20) -> PayerView | None:
    """The payer's view, or None if billing has no account for it."""
    def work(conn: Connection) -> PayerView | None:
        payer = read_payer(conn, payer_id)
        if payer is None:
            return None
        b, e, p, s = balance_entry.c, bill.c, payment.c, service_event.c
        return PayerView(
            payer,
            _rows(conn, select(b.id, b.entry_key, b.kind, b.amount_fen, b.balance_after_fen,
                               b.created_at).where(b.payer_id == payer_id)
                  .order_by(b.id.desc()).limit(limit)),
            _rows(conn, select(e.id, e.bill_date, e.total_fen, e.status, e.deduction_id)
                  .where(e.payer_id == payer_id).order_by(e.bill_date.desc()).limit(limit)),
            _rows(conn, select(p.serial, p.deduction_id, p.amount_fen, p.status, p.outcome,
                               p.recorded_at).where(p.payer_id == payer_id)
                  .order_by(p.id.desc()).limit(limit)),
            _rows(conn, select(s.id, s.order_id, s.product_code, s.action, s.reason, s.at)
                  .where(s.payer_id == payer_id).order_by(s.id.desc()).limit(limit)),
        )

    return transact.read(engine, work)


def _rows(conn: Connection, query: Any) -> tuple[tuple[Any, ...], ...]:
    return tuple(tuple(row) for row in conn.execute(query))


def payers(engine: Engine, state: str | None = None, kind: str | None = None,
           arrears: bool = False, limit: int = 1000) -> list[Payer]:
    """Payers in ``payer_id`` order, optionally of a service state, a kind, or in arrears."""
    query = select(*COLUMNS).order_by(COLUMNS[0]).limit(limit)
    table = COLUMNS[0].table
    if state is not None:
        query = query.where(table.c.service_state == state)
    if kind is not None:
        query = query.where(table.c.kind == kind)
    if arrears:
        owing = select(bill.c.payer_id).where(bill.c.status == ARREARS)
        query = query.where(COLUMNS[0].in_(owing))
    return transact.read(engine, lambda conn: [payer_of(r) for r in conn.execute(query)])
