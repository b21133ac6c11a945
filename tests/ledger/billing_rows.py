"""Billing ledgers built row by row, for the report and check tests.

The bill run and the payments are written by other modules; these tests must not
depend on them, so ``Rows`` inserts charges, bills, lines, outbox messages, payments,
payers and balance entries directly, the way those modules are meant to leave them
(``billingcenter.ledger.schema_billing``).

Nothing marks a charge with its bill: a bill takes a charge id bound ``upto_id``, and
which bill holds a charge follows from the bounds and dates (``bill_of`` computes it
here from the bill rows, by the rule of ``billingcenter.ledger.coverage``).  ``Rows.bill``
writes a bill the way the bill run does: its bound, its lines and deduction, and its
payer row's ``billed_upto`` / ``billed_before`` / ``unbilled_from``.

Databases: a migrated SQLite file per test, or the MariaDB database
``billingcenter_report_test`` (tagged by ``BILLINGCENTER_TEST_DB_TAG``), migrated once
per session and emptied, ids back to 1, before each test.  Test modules import the
``engine`` fixture from here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Engine

from billingcenter.ledger.schema_billing import (
    ARREARS,
    EMPTY,
    OPEN,
    OWED,
    POSTPAID,
    PREPAID,
    SETTLED,
    balance_entry,
    bill,
    bill_line,
    outbox,
    payer_account,
    payment,
)
from billingcenter.ledger.schema_rating import charge
from tests.support import (
    empty_ledger,
    migrated_mysql_engine,
    mysql_test_url,
    sqlite_template,
)

MYSQL_URL = mysql_test_url("report", "BILLINGCENTER_TEST_REPORT_MYSQL_URL")
AT = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def report_mysql_engine() -> Iterator[Engine]:
    """The migrated MariaDB database of these tests."""
    yield from migrated_mysql_engine(MYSQL_URL, pool_size=4)


@pytest.fixture(scope="session")
def report_sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test."""
    return sqlite_template(tmp_path_factory, "report")


@pytest.fixture(params=["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An empty migrated ledger on SQLite or MariaDB, ids from 1."""
    yield from empty_ledger(request, tmp_path, "report_sqlite_template", "report_mysql_engine")


def day(text: str) -> date:
    """``date.fromisoformat``, short."""
    return date.fromisoformat(text)


class Rows:
    """Inserts ledger rows directly; every method returns the new row's id."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._keys = 0

    def _insert(self, table: Any, **values: Any) -> int:
        with self.engine.begin() as conn:
            return int(conn.execute(insert(table).values(**values)).inserted_primary_key[0])

    def charge(self, payer: str, order: str, product: str, on: str, amount: int,
               rule_set: str = "rs-a", entry_id: int = 0) -> int:
        """A rated charge of ``amount`` fen on business day ``on``."""
        self._keys += 1
        return self._insert(
            charge, kind="daily", source_key=f"{order}/{on}/{self._keys}", order_id=order,
            payer_id=payer, product_code=product, day=day(on), rule_set=rule_set,
            rule_set_version="1", rule_id="r1", units=Decimal(1), unit_price=Decimal(0),
            amount_fen=amount, explanation="{}", rated_at=AT, run_id="test",
            entry_id=entry_id)

    def bill(self, payer: str, bill_date: str, charge_ids: Sequence[int],
             status: str | None = None, upto: int | None = None) -> int:
        """A bill as the bill run makes it: bound ``upto`` (default the highest charge id
        so far, as a run reads it), lines, deduction, and the payer row's bounds (the row
        made if missing).  ``charge_ids`` are the charges the bound and date must hold
        (by the rule, not by a mark): a guard that the test says what it means."""
        when = day(bill_date)
        if upto is None:
            with self.engine.begin() as conn:
                upto = int(conn.execute(
                    select(func.coalesce(func.max(charge.c.id), 0))).scalar_one())
        held = bill_of(self.engine)
        c = charge.c
        with self.engine.begin() as conn:
            rows = [r for r in conn.execute(
                select(charge).where(c.payer_id == payer, c.entry_id == 0, c.id <= upto,
                                     c.day < when).order_by(c.id)).all()
                    if r.id not in held]
        assert [r.id for r in rows] == sorted(charge_ids), (
            f"a bill of {payer} on {bill_date} up to charge {upto} holds charges "
            f"{[r.id for r in rows]}, not {sorted(charge_ids)}")
        total = sum(r.amount_fen for r in rows)
        groups: dict[tuple[str, str], list[Any]] = {}
        for r in rows:
            groups.setdefault((r.order_id, r.product_code), []).append(r)
        deduction = f"DED-{payer}-{bill_date.replace('-', '')}" if total else None
        bill_id = self._insert(
            bill, payer_id=payer, bill_date=when,
            first_day=min(r.day for r in rows), last_day=max(r.day for r in rows),
            total_fen=total, lines=len(groups), charges=len(rows),
            status=status or (OWED if total else EMPTY), deduction_id=deduction,
            created_at=AT, run_id="test", upto_id=upto)
        for (order, product), members in sorted(groups.items()):
            self._insert(bill_line, bill_id=bill_id, order_id=order, product_code=product,
                         charges=len(members), amount_fen=sum(m.amount_fen for m in members),
                         first_day=min(m.day for m in members),
                         last_day=max(m.day for m in members))
        self.billed(payer, upto, when)
        if deduction:
            self.message(deduction, {"deductionId": deduction, "billId": bill_id,
                                     "payerId": payer, "amountFen": total})
        return bill_id

    def billed(self, payer: str, upto: int, before: date) -> None:
        """The payer row after a bill of bound ``upto`` and date ``before``, as the bill
        run leaves it (the row made if missing): ``billed_upto`` / ``billed_before`` that
        bill's, ``unbilled_from`` the lowest id up to the bound of a charge of the payer
        still waiting (dated on the bill date or later), else the bound + 1."""
        with self.engine.begin() as conn:
            known = conn.execute(select(payer_account.c.id)
                                 .where(payer_account.c.payer_id == payer)).first()
        if known is None:
            self.payer(payer)
        held = bill_of(self.engine)
        c = charge.c
        with self.engine.begin() as conn:
            ids = conn.execute(select(c.id).where(c.payer_id == payer, c.entry_id == 0,
                                                  c.id <= upto)).scalars()
            waiting = [i for i in ids if i not in held]
            conn.execute(update(payer_account).where(payer_account.c.payer_id == payer).values(
                billed_upto=upto, billed_before=before,
                unbilled_from=min(waiting, default=upto + 1)))

    def message(self, key: str, payload: dict[str, Any], method: str = "chargeAccount",
                target: str = "account") -> int:
        """An outbox message."""
        return self._insert(
            outbox, message_key=key, target=target, method=method, ordering_key="",
            payload=json.dumps(payload), status="PENDING", attempts=0, next_attempt_at=AT,
            last_error="", created_at=AT)

    def payment(self, serial: str, deduction: str, payer: str, amount: int,
                status: str = "SUCCESS", outcome: str = "SETTLED") -> int:
        """A stored payCallback."""
        return self._insert(
            payment, serial=serial, deduction_id=deduction, payer_id=payer,
            amount_fen=amount, status=status, paid_at=AT, outcome=outcome,
            digest="0" * 64, recorded_at=AT)

    def payer(self, payer: str, kind: str = POSTPAID, floor: int = 0) -> int:
        """A payer account with a zero balance."""
        return self._insert(
            payer_account, payer_id=payer, kind=kind, billing_day=None, balance_fen=0,
            floor_fen=floor, threshold_fen=0, service_state=OPEN, updated_at=AT)

    def entry(self, payer: str, key: str, amount: int, kind: str = "TOPUP") -> int:
        """A balance entry, the payer's balance moved with it."""
        with self.engine.begin() as conn:
            balance = conn.execute(select(payer_account.c.balance_fen)
                                   .where(payer_account.c.payer_id == payer)).scalar_one()
            entry_id = conn.execute(insert(balance_entry).values(
                entry_key=key, payer_id=payer, kind=kind, amount_fen=amount,
                balance_after_fen=balance + amount, created_at=AT)).inserted_primary_key[0]
            conn.execute(update(payer_account).where(payer_account.c.payer_id == payer)
                         .values(balance_fen=balance + amount))
        return int(entry_id)

    def prepaid_charge(self, payer: str, order: str, product: str, on: str,
                       amount: int) -> int:
        """A charge of a prepaid payer, paid from its balance (entry ``charge:<id>``)."""
        charge_id = self.charge(payer, order, product, on, amount)
        entry_id = self.entry(payer, f"charge:{charge_id}", -amount, "CHARGE")
        self.set(charge, charge_id, entry_id=entry_id)
        return charge_id

    def set(self, table: Any, row_id: int, **values: Any) -> None:
        """Change one row (a corruption, or a later state)."""
        with self.engine.begin() as conn:
            conn.execute(update(table).where(table.c.id == row_id).values(**values))

    def count(self, table: Any) -> int:
        """How many rows ``table`` has."""
        with self.engine.begin() as conn:
            return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def bill_of(engine: Engine) -> dict[int, int]:
    """Charge id -> the id of the bill that holds it (charges on no bill left out), by the
    rule, from the bill rows alone: a payer's bill ``b`` holds its charges with
    ``entry_id = 0``, ``id <= b.upto_id`` and ``day < b.bill_date`` that no earlier bill
    (by date) of the payer holds."""
    c = charge.c
    with engine.begin() as conn:
        bills: dict[str, list[Any]] = {}
        for b in conn.execute(select(bill.c.id, bill.c.payer_id, bill.c.bill_date,
                                     bill.c.upto_id).order_by(bill.c.bill_date, bill.c.id)):
            bills.setdefault(b.payer_id, []).append(b)
        charges = conn.execute(select(c.id, c.payer_id, c.day).where(c.entry_id == 0)).all()
    held: dict[int, int] = {}
    for r in charges:
        for b in bills.get(r.payer_id, []):
            if r.id <= b.upto_id and r.day < b.bill_date:
                held[int(r.id)] = int(b.id)
                break
    return held


def clean_ledger(rows: Rows) -> None:
    """Bills 1-4, charges 1-9, entries 1-5, payments 1-3 (ids are fixed).

    p-1: bill 1 (615 fen: o-1 CRM 300+300, o-2 SMS 15; bound 4) settled by a SUCCESS
    payment; charge 8, of the bill date and rated after the bill, waits.  p-2: bill 2
    (300; bound 4) failed into arrears, then a top-up of 1000 settled it from the balance
    (entries 1, 2); bill 4 of 2026-12-01 (bound 9) holds only charge 9, not charge 4 that
    bill 2 holds, and is owed.  p-3: prepaid, a top-up of 500 (entry 3) and charges 5 and
    6 of 20 paid from it (entries 4, 5), never billed.  p-4: bill 3, EMPTY (a 0 fen
    charge; bound 7).  Payer rows: ``billed_upto`` / ``billed_before`` those of the latest
    bill; ``unbilled_from`` 5 (p-1), 10 (p-2), 8 (p-4), 0 (p-3: unknown).
    """
    for payer in ("p-1", "p-2", "p-4"):
        rows.payer(payer)
    rows.payer("p-3", PREPAID)
    c1 = rows.charge("p-1", "o-1", "CRM", "2026-10-30", 300)
    c2 = rows.charge("p-1", "o-1", "CRM", "2026-10-31", 300)
    c3 = rows.charge("p-1", "o-2", "SMS", "2026-10-31", 15, "rs-b")
    c4 = rows.charge("p-2", "o-3", "CRM", "2026-10-31", 300)
    b1 = rows.bill("p-1", "2026-11-01", [c1, c2, c3])
    rows.payment("s-1", "DED-p-1-20261101", "p-1", 615)
    rows.set(bill, b1, status=SETTLED, settled_at=AT)
    b2 = rows.bill("p-2", "2026-11-01", [c4])
    rows.payment("s-2", "DED-p-2-20261101", "", 300, "FAILED", ARREARS)
    rows.set(bill, b2, status=ARREARS)
    rows.payment("s-3", "", "p-2", 1000, "SUCCESS", "TOPUP")
    rows.entry("p-2", "topup:s-3", 1000)
    rows.entry("p-2", f"bill:{b2}", -300, "BILL")
    rows.set(bill, b2, status=SETTLED, settled_at=AT)
    rows.entry("p-3", "topup:s-9", 500)
    rows.prepaid_charge("p-3", "o-4", "SMS", "2026-11-02", 20)
    rows.prepaid_charge("p-3", "o-4", "SMS", "2026-11-03", 20)
    c7 = rows.charge("p-4", "o-5", "FREE", "2026-10-31", 0)
    rows.bill("p-4", "2026-11-01", [c7])
    rows.charge("p-1", "o-1", "CRM", "2026-11-01", 300)
    c9 = rows.charge("p-2", "o-3", "CRM", "2026-11-30", 300)
    rows.bill("p-2", "2026-12-01", [c9])
