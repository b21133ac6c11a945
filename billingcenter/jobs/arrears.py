"""The arrears check and the prepaid sweep: service control that waits for time to pass.

``check`` finds, with indexed or small queries:

* payers with bills in ``ARREARS`` that are ``OPEN`` and whose ``arrears_since + grace``
  has passed (they STOP, reason ``ARREARS``);
* ``STOPPED`` payers (they REOPEN once nothing is owed any more);
* ``PREPAID`` payers with charges neither paid nor billed (file loads write charges
  without paying them; a balance too low leaves charges unpaid), and prepaid payers that
  are ``OPEN`` at or below their threshold;

then, ``batch`` payers per transaction in payer order, pays the prepaid ones' unpaid
charges from their balances (never below the floor) and applies the service rules of
``billingcenter.ledger.control`` (STOP / REOPEN with ``feedbackUser`` notices).  It is
idempotent and safe in several processes at once: every decision is taken again under
the payer's row lock.

``ArrearsTimer`` runs ``check`` in the daemon every ``[arrears] interval`` seconds
(first at start), in the database thread pool; runs never overlap and a failure is
logged and tried again at the next tick.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import attrs
from sqlalchemy import and_, or_, select
from sqlalchemy.engine import Connection
from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from billingcenter.ledger import coverage, transact
from billingcenter.ledger.payments import AccountStore
from billingcenter.ledger.schema_billing import (
    ARREARS,
    OPEN,
    PREPAID,
    STOP,
    STOPPED,
    bill,
    payer_account,
)
from billingcenter.ledger.schema_rating import charge
from billingcenter.periodic import Periodic

log = Logger()

BATCH = 500
Clock = Callable[[], datetime]


@attrs.frozen
class CheckSummary:
    """What one check did."""

    payers: int = 0  # payers looked at under lock
    charges: int = 0  # prepaid charges paid
    amount_fen: int = 0
    stopped: int = 0  # payers stopped
    reopened: int = 0  # payers reopened
    notices: int = 0  # feedbackUser notices queued


def check(store: AccountStore, now: datetime, batch: int = BATCH) -> CheckSummary:
    """Run the arrears check and the prepaid sweep once (blocking)."""
    payer_ids = transact.read(store.engine, lambda conn: candidates(conn, store, now))
    total = CheckSummary()
    for start in range(0, len(payer_ids), batch):
        done = store.refresh(payer_ids[start:start + batch], now)
        stops = sum(1 for c in done.changes if c.action == STOP)
        total = CheckSummary(
            total.payers + done.payers, total.charges + done.charges,
            total.amount_fen + done.amount_fen, total.stopped + stops,
            total.reopened + len(done.changes) - stops,
            total.notices + sum(c.orders for c in done.changes),
        )
    return total


def candidates(conn: Connection, store: AccountStore, now: datetime) -> list[str]:
    """The payers a check may change (decided again under lock), sorted."""
    p = payer_account.c
    owing = select(bill.c.payer_id).where(bill.c.status == ARREARS).distinct().subquery()
    due = select(p.payer_id).join(owing, owing.c.payer_id == p.payer_id).where(
        p.service_state == OPEN,
        or_(p.arrears_since.is_(None), p.arrears_since <= now - store.policy.grace))
    stopped = select(p.payer_id).where(p.service_state == STOPPED)
    prepaid = select(p.payer_id).where(p.kind == PREPAID)
    low = prepaid.where(p.service_state == OPEN, p.balance_fen <= p.threshold_fen)
    unpaid = prepaid.where(select(charge.c.id).where(and_(
        charge.c.payer_id == p.payer_id, coverage.waiting(),
    )).exists())
    found: set[str] = set()
    for query in (due, stopped, low, unpaid):
        found.update(conn.execute(query).scalars())
    return sorted(found)


class ArrearsTimer(Periodic):
    """Runs the arrears check every ``interval`` seconds in the daemon.

    ``run_check(now)`` runs ``check`` off the reactor thread; a non-positive
    ``interval`` disables the timer.  Stopping waits for a check in progress.
    """

    def __init__(self, reactor: Any, clock: Clock, interval: float,
                 run_check: Callable[[datetime], Deferred[CheckSummary]]) -> None:
        super().__init__(reactor, clock)
        self._interval = interval
        self._run_check = run_check

    def _enabled(self) -> bool:
        if self._interval <= 0:
            log.info("arrears timer disabled ([arrears] interval <= 0)")
        return self._interval > 0

    def _run(self, now: datetime) -> Deferred[CheckSummary]:
        return self._run_check(now)

    def _succeeded(self, summary: CheckSummary, now: datetime) -> float:
        if summary.stopped or summary.reopened or summary.charges:
            log.info("arrears check: {payers} payers, {stopped} stopped, {reopened} "
                     "reopened, {notices} notices, {charges} prepaid charges paid "
                     "({fen} fen)", payers=summary.payers, stopped=summary.stopped,
                     reopened=summary.reopened, notices=summary.notices,
                     charges=summary.charges, fen=summary.amount_fen)
        return self._interval

    def _failed(self, failure: Failure, now: datetime) -> float:
        log.failure("arrears check failed; trying again in {interval} s", failure,
                    interval=self._interval)
        return self._interval
