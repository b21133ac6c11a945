"""Shared by the bill-run tests: databases, charges written as rated, reading bills back.

The databases: a migrated SQLite file per test, or MariaDB database
``billingcenter_billing_jobs_test`` (tagged; dropped and migrated once per module,
emptied before each test, ids from 1 again).  Test modules import the ``engine``
fixture from here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from billingcenter.config import BillingSettings
from billingcenter.ledger.schema_billing import (
    bill,
    bill_line,
    bill_part,
    bill_run,
    outbox,
    payer_account,
)
from billingcenter.ledger.schema_rating import charge, job_claim
from tests.support import (
    empty_ledger,
    migrated_mysql_engine,
    mysql_test_url,
    sqlite_template,
)

MYSQL_URL = mysql_test_url("billing_jobs", "BILLINGCENTER_TEST_BILLING_JOBS_MYSQL_URL")
BILL_DATE = date(2026, 12, 1)
RUN_AT = datetime(2026, 11, 30, 18, 0, tzinfo=UTC)  # 2026-12-01 02:00 in Shanghai
SETTINGS = BillingSettings(day=1, chunk=2)


class Clock:
    """A clock that moves on ``step`` (a millisecond) at each reading (claims need
    distinct times)."""

    def __init__(self, now: datetime = RUN_AT) -> None:
        self.now = now
        self.step = timedelta(milliseconds=1)

    def __call__(self) -> datetime:
        self.now += self.step
        return self.now


def add_charge(engine: Engine, payer: str, order: str, day: date, fen: int,
               product: str = "CRM-BASIC", kind: str = "daily", entry_id: int = 0,
               key: str | None = None) -> int:
    """Store one rated charge as the rating jobs do; its id."""
    row = {
        "kind": kind, "source_key": key or f"{order}/{day.isoformat()}", "order_id": order,
        "payer_id": payer, "product_code": product, "day": day, "rule_set": "test-daily",
        "rule_set_version": "2026.11.1", "rule_id": f"{product.lower()}-rule",
        "units": Decimal(1), "unit_price": Decimal(fen) / 100, "amount_fen": fen,
        "explanation": '{"mode":"daily"}', "rated_at": RUN_AT, "run_id": "rating",
        "entry_id": entry_id,
    }
    with engine.begin() as conn:
        return int(conn.execute(charge.insert(), row).inserted_primary_key[0])


def month(engine: Engine, payer: str, order: str, first: date, days: int, fen: int,
          product: str = "CRM-BASIC") -> None:
    """Daily charges of ``fen`` for ``days`` days from ``first``."""
    for n in range(days):
        add_charge(engine, payer, order, first + timedelta(days=n), fen, product)


def set_payer(engine: Engine, payer: str, kind: str = "POSTPAID",
              billing_day: int | None = None) -> None:
    """A payer row as ``billingcenter payer set`` would write it."""
    with engine.begin() as conn:
        conn.execute(payer_account.insert(), {
            "payer_id": payer, "kind": kind, "billing_day": billing_day, "balance_fen": 0,
            "floor_fen": 0, "threshold_fen": 0, "service_state": "OPEN",
            "updated_at": RUN_AT,
        })


def select_all(engine: Engine, query: Any) -> list[Any]:
    """Rows of a query."""
    with engine.connect() as conn:
        return list(conn.execute(query))


def bills(engine: Engine) -> dict[tuple[str, date], Any]:
    """(payer, bill date) -> bill row, of the bills made."""
    query = sa.select(bill).order_by(bill.c.id)
    return {(row.payer_id, row.bill_date): row for row in select_all(engine, query)}


def lines(engine: Engine, bill_id: int) -> list[tuple[str, str, int, int, date, date]]:
    """(order, product, charges, fen, first day, last day) of a bill's lines."""
    b = bill_line.c
    query = sa.select(b.order_id, b.product_code, b.charges, b.amount_fen, b.first_day,
                      b.last_day).where(b.bill_id == bill_id).order_by(b.order_id, b.product_code)
    return [tuple(row) for row in select_all(engine, query)]  # type: ignore[misc]


def messages(engine: Engine) -> dict[str, Any]:
    """message_key -> outbox row."""
    return {row.message_key: row for row in select_all(engine, sa.select(outbox))}


def marks(engine: Engine) -> dict[int, int]:
    """charge id -> the id of the bill that holds it (0: none), by the bills' bounds:
    the payer's earliest bill with ``id <= upto_id`` and ``day < bill_date``, for a charge
    no balance entry paid (computed here in Python, apart from the SQL under test)."""
    by_payer: dict[str, list[Any]] = {}
    for row in select_all(engine, sa.select(bill).order_by(bill.c.bill_date)):
        by_payer.setdefault(row.payer_id, []).append(row)
    found = {}
    c = charge.c
    for charge_id, payer, day, entry in select_all(
            engine, sa.select(c.id, c.payer_id, c.day, c.entry_id)):
        found[charge_id] = 0 if entry else next(
            (b.id for b in by_payer.get(payer, []) if charge_id <= b.upto_id and day < b.bill_date),
            0)
    return found


def claims(engine: Engine) -> list[tuple[int, str]]:
    """(chunk, status) of the bill job's claims."""
    query = sa.select(job_claim.c.chunk, job_claim.c.status).where(
        job_claim.c.job == "bill").order_by(job_claim.c.chunk)
    return [tuple(row) for row in select_all(engine, query)]  # type: ignore[misc]


def check_invariants(engine: Engine) -> None:
    """Every bill equals its lines and the charges it holds; every OWED bill has exactly
    one chargeAccount message with its amount; nothing else is queued; a done run keeps
    no parts."""
    found = bills(engine)
    queued = messages(engine)
    held: dict[int, list[int]] = {}
    amounts = dict(select_all(engine, sa.select(charge.c.id, charge.c.amount_fen)))
    for charge_id, bill_id in marks(engine).items():
        held.setdefault(bill_id, []).append(amounts[charge_id])
    for row in found.values():
        mine = held.get(row.id, [])
        assert (row.charges, row.total_fen) == (len(mine), sum(mine))
        assert sum(line[3] for line in lines(engine, row.id)) == row.total_fen
        if row.status == "OWED":
            payload = json.loads(queued[row.deduction_id].payload)
            assert (payload["amountFen"], payload["billId"]) == (row.total_fen, row.id)
        else:
            assert row.deduction_id is None
    assert len(queued) == sum(1 for row in found.values() if row.status == "OWED")
    done_parts = sa.select(sa.func.count()).select_from(bill_part.join(
        bill_run, bill_run.c.bill_date == bill_part.c.bill_date)).where(bill_run.c.status == "DONE")
    assert select_all(engine, done_parts)[0][0] == 0  # a done run keeps no parts


@pytest.fixture(scope="module")
def billing_mysql_engine() -> Iterator[Engine]:
    """The migrated MariaDB database of these tests."""
    yield from migrated_mysql_engine(MYSQL_URL, pool_size=8)


@pytest.fixture(scope="module")
def billing_sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test."""
    return sqlite_template(tmp_path_factory, "billing-template")


@pytest.fixture(params=["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An empty migrated ledger on SQLite or MariaDB, ids from 1."""
    yield from empty_ledger(request, tmp_path, "billing_sqlite_template", "billing_mysql_engine")
