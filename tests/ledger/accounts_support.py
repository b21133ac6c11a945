"""Shared by the payment, arrears and prepaid tests: orders, bills and charges row by row.

The bill run lives in another module; these tests insert bill rows directly, the way
``billingcenter.ledger.schema_billing`` says a bill run leaves them: with the charge id
bound of their run, which their payer row's ``billed_upto`` / ``billed_before`` repeat
(a bill holds the payer's charges up to the bound and before its date).
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Engine

from billingcenter.ledger import charges
from billingcenter.ledger.accounts import Payer, ensure_payers
from billingcenter.ledger.schema_billing import (
    OWED,
    balance_entry,
    bill,
    outbox,
    payer_account,
    service_event,
)
from billingcenter.ledger.schema_rating import charge
from billingcenter.ledger.store import SqlLedger
from billingcenter.ledger.tables import metadata
from billingcenter.model import Order, PayNotice, Product, StateEvent, StateKind
from tests.ledger.billing_rows import bill_of

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
PRODUCTS = (
    Product("CRM-BASIC", "CRM", frozenset({"CRM-DAILY"})),
    Product("SMS-NOTIFY", "SMS", frozenset({"SMS-PER-USE"})),
)
ACTIVATED = datetime(2026, 10, 1, tzinfo=UTC)


def add_orders(engine: Engine) -> None:
    """Payer p1: o1 (CRM), o2 (SMS), o3 (CRM, cancelled); payer p2: o4 (CRM)."""
    ledger = SqlLedger(engine)
    ledger.sync_products(PRODUCTS)
    for order_id, payer, product in (("o1", "p1", "CRM-BASIC"), ("o2", "p1", "SMS-NOTIFY"),
                                     ("o3", "p1", "CRM-BASIC"), ("o4", "p2", "CRM-BASIC")):
        ledger.add_order(Order(order_id, payer, "u", product, "", ACTIVATED), NOW)
    ledger.add_state_event(StateEvent("e3", "o3", StateKind.CANCELLED, ACTIVATED), NOW)


def deduction_id(payer_id: str, bill_date: date) -> str:
    """The bill run's deduction id."""
    return f"DED-{payer_id}-{bill_date:%Y%m%d}"


def add_bill(engine: Engine, payer_id: str, bill_date: date, total_fen: int,
             status: str = OWED, upto: int | None = None) -> int:
    """A bill row as the bill run leaves it, with the charge id bound ``upto`` (default
    the highest charge id so far, as a run reads it), and the payer row (made if
    missing) billed up to that bound and date; the bill's id."""
    with engine.begin() as conn:
        if upto is None:
            upto = int(conn.execute(select(func.coalesce(func.max(charge.c.id), 0))).scalar_one())
        key = conn.execute(insert(bill).values(
            payer_id=payer_id, bill_date=bill_date, first_day=bill_date - timedelta(days=30),
            last_day=bill_date - timedelta(days=1), total_fen=total_fen, lines=1, charges=1,
            status=status, deduction_id=deduction_id(payer_id, bill_date), created_at=NOW,
            settled_at=None, run_id="test", upto_id=upto)).inserted_primary_key
        ensure_payers(conn, [payer_id], NOW)
        conn.execute(update(payer_account).where(payer_account.c.payer_id == payer_id)
                     .values(billed_upto=upto, billed_before=bill_date))
    assert key is not None
    return int(key[0])


def notice(serial: str, deduction: str = "", amount: int = 0, status: str = "SUCCESS",
           payer: str = "") -> PayNotice:
    """A payCallback."""
    return PayNotice(serial, deduction, payer, amount, status, NOW - timedelta(minutes=5))


def charge_rows(payer_id: str, amounts: list[int], prefix: str = "c", order_id: str = "o1",
                day: date = date(2026, 11, 30)) -> list[tuple[Any, ...]]:
    """Rated charge rows (``charges.CHARGE_COLUMNS`` order) of one payer."""
    return [
        ("daily", f"{prefix}{i}", order_id, payer_id, "CRM-BASIC", day, "rs", "1", "r",
         Decimal(1), Decimal(amount) / 100, amount, "{}", NOW, "test")
        for i, amount in enumerate(amounts)
    ]


def rate(engine: Engine, rows: list[tuple[Any, ...]]) -> int:
    """Insert charges the way the rating jobs do (one transaction)."""
    with engine.begin() as conn:
        return charges.insert_charges(conn, rows)


def snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, for 'nothing changed' checks."""
    with engine.connect() as conn:
        return {t.name: sorted(map(tuple, conn.execute(select(t))), key=repr)
                for t in metadata.sorted_tables}


def payer_row(engine: Engine, payer_id: str) -> Payer:
    """The payer's row."""
    from billingcenter.ledger.accounts import COLUMNS, payer_of

    with engine.connect() as conn:
        row = conn.execute(select(*COLUMNS).where(payer_account.c.payer_id == payer_id)).one()
    return payer_of(row)


def notices(engine: Engine) -> list[dict[str, Any]]:
    """The feedbackUser payloads queued, in id order, with their target and ordering key."""
    with engine.connect() as conn:
        rows = conn.execute(select(outbox.c.message_key, outbox.c.target, outbox.c.ordering_key,
                                   outbox.c.payload)
                            .where(outbox.c.method == "feedbackUser").order_by(outbox.c.id))
        return [dict(json.loads(p), _key=k, _target=t, _ordering=o) for k, t, o, p in rows]


def events(engine: Engine) -> list[tuple[str, str, str, str]]:
    """(payer, order, action, reason) of every service event, in id order."""
    e = service_event.c
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(
            select(e.payer_id, e.order_id, e.action, e.reason).order_by(e.id))]


def entries(engine: Engine, payer_id: str) -> list[tuple[str, int, int]]:
    """(entry_key, amount_fen, balance_after_fen) of a payer, in id order."""
    b = balance_entry.c
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(
            select(b.entry_key, b.amount_fen, b.balance_after_fen)
            .where(b.payer_id == payer_id).order_by(b.id))]


def entry_sum(engine: Engine, payer_id: str) -> int:
    """The sum of a payer's balance entries."""
    with engine.connect() as conn:
        return int(conn.execute(select(func.coalesce(func.sum(balance_entry.c.amount_fen), 0))
                                .where(balance_entry.c.payer_id == payer_id)).scalar_one())


def unpaid(engine: Engine, payer_id: str) -> list[int]:
    """Amounts of a payer's charges neither paid nor held by a bill (by the bills' bounds
    and dates, ``billing_rows.bill_of``), in id order."""
    c = charge.c
    held = bill_of(engine)
    with engine.connect() as conn:
        rows = conn.execute(select(c.id, c.amount_fen).where(
            c.payer_id == payer_id, c.entry_id == 0).order_by(c.id)).all()
    return [int(amount) for charge_id, amount in rows if charge_id not in held]


def bill_status(engine: Engine, bill_id: int) -> str:
    """A bill's status."""
    with engine.connect() as conn:
        return str(conn.execute(select(bill.c.status).where(bill.c.id == bill_id)).scalar_one())
