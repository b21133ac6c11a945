"""Helpers of the outbound tests: messages, a deliverer in the reactor thread, waiting."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

from billingcenter.config import OutboxSettings, Remote
from billingcenter.ledger.outbox import (
    ACCOUNT,
    CHARGE_ACCOUNT,
    FEEDBACK_USER,
    OutboxMessage,
    business_target,
    enqueue,
)
from billingcenter.ledger.schema_billing import outbox
from billingcenter.outbound.delivery import Deliverer
from tests.reactor_thread import ReactorThread

CREATED_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
FAST = OutboxSettings(interval=0.05, batch=50, concurrency=8, max_attempts=4,
                      backoff_initial=0.1, backoff_max=0.4, lease=5)
TIMEOUT = 0.5  # seconds per call in these tests


def now() -> datetime:
    """The wall clock (the deliverer's clock in these tests)."""
    return datetime.now(UTC)


def deduction(n: int, payer: str | None = None) -> OutboxMessage:
    """A chargeAccount message for bill ``n``."""
    key = f"DED-{payer or f'P{n}'}-20260101"
    return OutboxMessage(key, ACCOUNT, CHARGE_ACCOUNT, {
        "deductionId": key, "billId": n, "payerId": payer or f"P{n}", "amountFen": 1000 + n,
        "billDate": "2026-01-01", "firstDay": "2025-12-01", "lastDay": "2025-12-31",
        "createdAt": CREATED_MS,
    })


def notice(event: int, order: str, action: str, product: str = "CRM") -> OutboxMessage:
    """A feedbackUser message for service event ``event`` of ``order``."""
    key = f"SE-{event}"
    return OutboxMessage(key, business_target(product), FEEDBACK_USER, {
        "noticeId": key, "payerId": "P1", "orderId": order, "productCode": product,
        "action": action, "reason": "ARREARS", "at": CREATED_MS + event,
    }, ordering_key=f"order:{order}")


def add(engine: Engine, *messages: OutboxMessage) -> None:
    """Enqueue messages in their own transaction."""
    with engine.begin() as conn:
        enqueue(conn, list(messages), now())


def rows(engine: Engine) -> dict[str, Any]:
    """message_key -> outbox row."""
    with engine.connect() as conn:
        return {r.message_key: r for r in conn.execute(select(outbox).order_by(outbox.c.id))}


def statuses(engine: Engine) -> dict[str, str]:
    """message_key -> status."""
    return {key: row.status for key, row in rows(engine).items()}


def remotes_for(account_url: str = "", business_url: str = "") -> Callable[[str], Remote]:
    """Targets -> remotes with the tests' short timeout."""
    def remote(target: str) -> Remote:
        url = account_url if target == ACCOUNT else business_url
        return Remote(url=url, timeout=TIMEOUT)

    return remote


@contextmanager
def delivering(rt: ReactorThread, engine: Engine, remotes: Callable[[str], Remote],
               settings: OutboxSettings = FAST, owner: str = "test:1") -> Iterator[Deliverer]:
    """A started Deliverer (in the reactor thread, its own thread pool), stopped after."""
    pool = ThreadPool(minthreads=1, maxthreads=4, name=f"outbox-{owner}")

    def start() -> Deliverer:
        pool.start()
        made = Deliverer(engine, partial(deferToThreadPool, rt.reactor, pool), settings,
                         remotes, owner, now, rt.reactor)
        made.startService()
        return made

    deliverer = rt.call(start)
    try:
        yield deliverer
    finally:
        rt.call(deliverer.stopService)
        pool.stop()


def wait_for(check: Callable[[], Any], timeout: float = 20.0, every: float = 0.05) -> Any:
    """Poll ``check`` until it returns something true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"still not true after {timeout} s: {check}")
        time.sleep(every)
