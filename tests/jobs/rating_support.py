"""Shared by the rating-job tests: databases, a clock, rule sets, ledger facts.

The databases: a migrated SQLite file per test, or MariaDB database
``billingcenter_rating_jobs_test`` (its own, so it never races other tests; dropped and
migrated once per module, emptied before each test).  Test modules import the
``engine`` fixture from here.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from billingcenter.ledger.schema_rating import charge, job_claim
from billingcenter.ledger.store import SqlLedger
from billingcenter.model import AccountNumChange, Order, Product, StateEvent, StateKind, Usage
from billingcenter.rating.model import RuleBook
from billingcenter.rating.ruleset import parse_rule_set
from tests.support import (
    empty_ledger,
    migrated_mysql_engine,
    mysql_test_url,
    sqlite_template,
)

MYSQL_URL = mysql_test_url("rating_jobs", "BILLINGCENTER_TEST_RATING_JOBS_MYSQL_URL")
TZ = ZoneInfo("Asia/Shanghai")
DAY = date(2026, 11, 10)
START = datetime(2026, 11, 9, 16, 0, tzinfo=UTC)  # 2026-11-10 00:00 +08:00
END = START + timedelta(days=1)
RECORDED = datetime(2026, 11, 12, tzinfo=UTC)  # when the ledger received the facts
# When it received state events and account changes: before the jobs run (RUN_AT), so a
# rerun sees nothing late; a test passes a later ``recorded`` to make one late.
EVENTS_RECORDED = datetime(2026, 11, 11, tzinfo=UTC)
RUN_AT = datetime(2026, 11, 11, 0, 30, tzinfo=UTC)  # when the jobs run

CATALOGUE = (
    Product("CRM-BASIC", "CRM", frozenset({"CRM-DAILY", "CRM-TRIAL-7D"})),
    Product("PC2", "PC2", frozenset({"PC2-DAILY-ACCOUNTS"})),
    Product("SMS-NOTIFY", "SMS", frozenset({"SMS-PER-USE", "SMS-TRIAL-5"})),
    Product("VOICE", "Voice", frozenset({"VOICE-60S"})),
    Product("FAX", "Fax, no rules", frozenset({"FAX"})),
)

DAILY_RULES = """
[rule_set]
name = "test-daily"
version = "2026.11.1"
author = "alice"
description = "per day"
effective_from = 2026-11-01T00:00:00+08:00
products = ["CRM-BASIC", "PC2"]

[[rule]]
id = "crm-trial-7d"
description = "CRM per day, 7 days free"
mode = "daily"
unit_price = "3.00"
trial_days = 7
[rule.when]
product_code = "CRM-BASIC"
plan_code = "CRM-TRIAL-7D"

[[rule]]
id = "crm-daily"
description = "CRM per day"
mode = "daily"
unit_price = "3.00"
[rule.when]
product_code = "CRM-BASIC"
plan_code = "CRM-DAILY"

[[rule]]
id = "pc2-accounts"
description = "PC2 per day by max accounts"
mode = "daily_accounts"
unit_price = "0.35"
trial_days = 7
[rule.when]
product_code = "PC2"
plan_code = "PC2-DAILY-ACCOUNTS"
"""

USAGE_RULES = """
[rule_set]
name = "test-usage"
version = "2026.11.1"
author = "alice"
description = "per use"
effective_from = 2026-11-01T00:00:00+08:00
products = ["SMS-NOTIFY", "VOICE"]

[[rule]]
id = "sms-trial-5"
description = "SMS, the first 5 of the order free"
mode = "per_use"
unit_price = "0.05"
trial_uses = 5
[rule.when]
product_code = "SMS-NOTIFY"
plan_code = "SMS-TRIAL-5"

[[rule]]
id = "sms"
description = "SMS, graduated"
mode = "per_use"
tiers = [ { upto = "10", price = "0.05" }, { price = "0.04" } ]
[rule.when]
product_code = "SMS-NOTIFY"
plan_code = "SMS-PER-USE"
channel = ["api", "web"]

[[rule]]
id = "voice-60s"
description = "Voice per started minute plus connect fee"
mode = "duration"
unit_price = "0.10"
increment = 60
connect_fee = "0.02"
[rule.when]
product_code = "VOICE"
"""


def book(*texts: str) -> RuleBook:
    """A rule book of these rule set texts (default: the daily and usage sets)."""
    return RuleBook(tuple(parse_rule_set(t) for t in (texts or (DAILY_RULES, USAGE_RULES))))


def local(text: str) -> datetime:
    """A moment written in business time (+08:00), as aware UTC."""
    return datetime.fromisoformat(text + "+08:00").astimezone(UTC)


class Clock:
    """A settable clock; each reading moves it on a microsecond (claims need distinct times)."""

    def __init__(self, now: datetime = RUN_AT) -> None:
        self._now = now
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            self._now += timedelta(microseconds=1)
            return self._now

    def advance(self, delta: timedelta) -> None:
        """Move the clock on."""
        with self._lock:
            self._now += delta


class Facts:
    """Writes orders, events, account changes and usage through the real ledger."""

    def __init__(self, engine: Engine) -> None:
        self.ledger = SqlLedger(engine)
        self.ledger.sync_products(CATALOGUE)

    def order(self, order_id: str, product: str = "CRM-BASIC", plan: str = "CRM-DAILY",
              activated: str = "2026-11-02T09:00:00", payer: str | None = None,
              accounts: int = 1) -> str:
        """Install an order (activated at business time ``activated``)."""
        self.ledger.add_order(Order(order_id, payer or f"p-{order_id}", "u-1", product, plan,
                                    local(activated), accounts), RECORDED)
        return order_id

    def event(self, order_id: str, kind: StateKind, at: str,
              recorded: datetime = EVENTS_RECORDED) -> None:
        """Record a state change of an order at business time ``at``."""
        self.ledger.add_state_event(
            StateEvent(f"{order_id}-{kind.value}-{at}", order_id, kind, local(at)), recorded
        )

    def accounts(self, payer: str, product: str, count: int, at: str,
                 recorded: datetime = EVENTS_RECORDED) -> None:
        """Record an authorized-account count change."""
        self.ledger.add_account_change(AccountNumChange(payer, product, count, local(at)),
                                       recorded)

    def usage(self, op_id: str, order_id: str, at: str, quantity: int = 1,
              product: str = "SMS-NOTIFY", item: str = "SMS", **attributes: str) -> None:
        """Record a usage record of an order at business time ``at``."""
        self.ledger.add_usage(Usage(op_id, order_id, product, item, "u-9", "", quantity,
                                    local(at), attributes), RECORDED)


def charges(engine: Engine, kind: str | None = None) -> dict[str, int]:
    """source_key -> amount_fen of the stored charges (of one kind, if given)."""
    query = sa.select(charge.c.source_key, charge.c.amount_fen)
    if kind is not None:
        query = query.where(charge.c.kind == kind)
    with engine.connect() as conn:
        return {key: amount for key, amount in conn.execute(query)}


def rows(engine: Engine, table: sa.Table) -> list[Any]:
    """Every row of ``table`` in id order, as tuples."""
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(sa.select(table).order_by(table.c.id))]


def claims(engine: Engine) -> list[tuple[str, int, str, str]]:
    """(job, chunk, status, owner) of every claim, by job and chunk."""
    query = sa.select(job_claim.c.job, job_claim.c.chunk, job_claim.c.status,
                      job_claim.c.owner).order_by(job_claim.c.job, job_claim.c.chunk)
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(query)]  # type: ignore[misc]


@pytest.fixture(scope="module")
def rating_mysql_engine() -> Iterator[Engine]:
    """The migrated MariaDB database of these tests."""
    yield from migrated_mysql_engine(MYSQL_URL, pool_size=8)


@pytest.fixture(scope="module")
def rating_sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test."""
    return sqlite_template(tmp_path_factory, "rating-template")


@pytest.fixture(params=["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An empty migrated ledger on SQLite or MariaDB, ids from 1."""
    yield from empty_ledger(request, tmp_path, "rating_sqlite_template", "rating_mysql_engine")
