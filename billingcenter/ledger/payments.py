"""Payments (``payCallback``), payer settings and the payer-level sweep, each one transaction.

``AccountStore.pay_callback`` (key: the notice's ``serial``):

* a serial already stored: the same content answers the first receipt, other content
  is ``DUPLICATE_CONFLICT``; nothing changes;
* a deduction outcome (``deductionId`` set): the bill with that deduction id is looked up
  (none: ``UNKNOWN_DEDUCTION``), ``amountFen`` must be its total and ``payerId``, when
  given, its payer (else ``AMOUNT_MISMATCH``); then the payer row is locked, then the bill.
  ``SUCCESS`` on ``OWED``/``ARREARS`` -> ``SETTLED``; a failure on ``OWED`` -> ``ARREARS``
  (the payer's ``arrears_since`` set if unset); a failure on ``ARREARS`` is recorded and
  changes nothing (outcome ``ARREARS``); any other outcome for a ``SETTLED`` bill is
  ``INVALID_STATE`` (see ``CREDITED`` below);
* a top-up (no ``deductionId``): ``SUCCESS`` adds ``amountFen`` to the payer's balance
  (entry ``topup:<serial>``), settles its bills in arrears from the balance oldest first
  while it covers a whole bill above the floor, then (prepaid) pays its unpaid charges;
  outcome ``TOPUP``.  A failed top-up is recorded and changes nothing (``IGNORED``);
* a deduction ``SUCCESS`` for a bill a top-up already settled from the balance (the
  account system took the money as well): the amount is credited to the payer's
  balance like a top-up (entry ``topup:<serial>``), outcome ``CREDITED``;
* then service control reviews the payer (``billingcenter.ledger.control``): with grace 0
  a failure stops its orders in this same transaction; a settled debt reopens them.

A refused notice stores nothing.  The ``payment`` row (with the outcome and the digest)
is written last, in the same transaction, so a receipt exists exactly when its effects do.
"""

from __future__ import annotations

from datetime import datetime

import attrs
from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection, Engine

from billingcenter.errors import AmountMismatch, InvalidArgument, InvalidState, UnknownDeduction
from billingcenter.intake import PAY_SUCCESS, Limits, validate_pay_notice
from billingcenter.ledger import accounts, transact
from billingcenter.ledger.accounts import Payer
from billingcenter.ledger.control import Change, ServicePolicy, review
from billingcenter.ledger.schema_billing import (
    ARREARS,
    OWED,
    POSTPAID,
    PREPAID,
    RUNNING,
    SETTLED,
    balance_entry,
    bill,
    bill_run,
    payment,
)
from billingcenter.ledger.semantics import repeat
from billingcenter.model import PayNotice, Receipt

# Receipt.status of a payCallback (payment.outcome)
TOPUP, IGNORED, CREDITED = "TOPUP", "IGNORED", "CREDITED"
KINDS = (POSTPAID, PREPAID)
DEFAULT_POLICY = ServicePolicy()
DEFAULT_LIMITS = Limits()


@attrs.frozen
class PayerSettings:
    """What ``payer set`` changes; None leaves a field as it is."""

    kind: str | None = None
    billing_day: int | None = None
    floor_fen: int | None = None
    threshold_fen: int | None = None

    def check(self) -> None:
        """Refuse values the ledger cannot hold."""
        if self.kind is not None and self.kind not in KINDS:
            raise InvalidArgument(f"kind must be one of {', '.join(KINDS)}")
        if self.billing_day is not None and not 1 <= self.billing_day <= 28:
            raise InvalidArgument("billing day must be 1 to 28")
        floor = self.floor_fen
        if self.threshold_fen is not None and floor is not None and self.threshold_fen < floor:
            raise InvalidArgument("the threshold must not be below the floor")


@attrs.frozen
class Refreshed:
    """What ``refresh`` did to a batch of payers."""

    payers: int = 0
    charges: int = 0
    amount_fen: int = 0
    changes: tuple[Change, ...] = ()


class AccountStore:
    """Payer accounts, payments and service control in SQL; call it from pool threads."""

    def __init__(self, engine: Engine, policy: ServicePolicy = DEFAULT_POLICY,
                 limits: Limits = DEFAULT_LIMITS) -> None:
        self.engine = engine
        self.policy = policy
        self._limits = limits

    def pay_callback(self, notice: PayNotice, now: datetime) -> Receipt:
        """Apply a ``payCallback`` (see the module doc); its receipt."""
        validate_pay_notice(notice, now, self._limits)
        digest = notice.digest()
        return transact.write(self.engine,
                              lambda conn: self._pay(conn, notice, digest, now))

    def payer(self, payer_id: str) -> Payer | None:
        """The payer's account row, or None."""
        return transact.read(self.engine, lambda conn: accounts.read_payer(conn, payer_id))

    def set_payer(self, payer_id: str, settings: PayerSettings, now: datetime) -> Payer:
        """Create or change a payer's settings, then pay (prepaid) and review it."""
        settings.check()
        if not payer_id or len(payer_id) > 64:
            raise InvalidArgument("a payer id is 1 to 64 characters")

        def work(conn: Connection) -> Payer:
            accounts.ensure_payers(conn, [payer_id], now)
            before = accounts.lock_payers(conn, [payer_id])[payer_id]
            changed = attrs.evolve(before, **{
                k: v for k, v in attrs.asdict(settings).items() if v is not None})
            if changed.kind != before.kind:
                _no_bill_run_unfinished(conn)
            if changed.floor_fen > changed.threshold_fen:
                raise InvalidArgument("the threshold must not be below the floor")
            accounts.save_payer(conn, before, changed, now)
            found = self._refresh(conn, {payer_id: changed}, now)
            return found[0][payer_id]

        return transact.write(self.engine, work)

    def refresh(self, payer_ids: list[str], now: datetime) -> Refreshed:
        """Lock the payers, pay prepaid ones' unpaid charges, review their service."""
        def work(conn: Connection) -> Refreshed:
            locked = accounts.lock_payers(conn, payer_ids)
            after, paid, amount, changes = self._refresh(conn, locked, now)
            return Refreshed(len(after), paid, amount, tuple(changes))

        return transact.write(self.engine, work)

    def _refresh(self, conn: Connection, locked: dict[str, Payer], now: datetime
                 ) -> tuple[dict[str, Payer], int, int, list[Change]]:
        prepaid = accounts.by_payer(locked, PREPAID)
        unpaid = accounts.unpaid_charges(conn, prepaid) if prepaid else {}
        paid = amount = 0
        current = dict(locked)  # as saved: pay_charges saves what it changes
        for payer_id in prepaid:
            done = accounts.pay_charges(conn, current[payer_id], unpaid.get(payer_id, []), now)
            current[payer_id] = done.payer
            paid, amount = paid + done.paid, amount + done.amount_fen
        after, changes = review(conn, current, self.policy, now)
        return after, paid, amount, changes

    def _pay(self, conn: Connection, notice: PayNotice, digest: str, now: datetime) -> Receipt:
        stored = conn.execute(select(payment.c.digest, payment.c.outcome, payment.c.recorded_at)
                              .where(payment.c.serial == notice.serial)).first()
        if stored is not None:
            first = repeat("serial", notice.serial, stored.digest, digest, stored.recorded_at)
            return attrs.evolve(first, status=stored.outcome)
        if notice.is_topup:
            payer_id, outcome = notice.payer_id, self._topup(conn, notice, now)
        else:
            payer_id, outcome = self._deduction(conn, notice, now)
        conn.execute(insert(payment).values(
            serial=notice.serial, deduction_id=notice.deduction_id, payer_id=payer_id,
            amount_fen=notice.amount_fen, status=notice.status, paid_at=notice.paid_at,
            outcome=outcome, digest=digest, recorded_at=now))
        return Receipt(key=notice.serial, status=outcome, recorded_at=now)

    def _deduction(self, conn: Connection, notice: PayNotice, now: datetime) -> tuple[str, str]:
        found = conn.execute(select(bill.c.id, bill.c.payer_id, bill.c.total_fen)
                             .where(bill.c.deduction_id == notice.deduction_id)).first()
        if found is None:
            raise UnknownDeduction(f"no bill has deductionId {notice.deduction_id!r}")
        if notice.payer_id and notice.payer_id != found.payer_id:
            raise AmountMismatch(f"payerId {notice.payer_id!r} is not the payer of "
                                 f"deduction {notice.deduction_id!r}")
        if notice.amount_fen != found.total_fen:
            raise AmountMismatch(f"amountFen {notice.amount_fen} is not the bill's "
                                 f"{found.total_fen} fen")
        payer_id = found.payer_id
        accounts.ensure_payers(conn, [payer_id], now)
        locked = accounts.lock_payers(conn, [payer_id])
        status = conn.execute(select(bill.c.status).where(
            bill.c.deduction_id == notice.deduction_id).with_for_update()).scalar_one()
        if (status == SETTLED and notice.status == PAY_SUCCESS
                and _settled_from_balance(conn, found.id, notice.deduction_id)):
            # The account system deducted a bill a top-up had already settled: the money
            # is the payer's, kept as balance (and used like a top-up).
            self._credit(conn, locked[payer_id], notice, now)
            return payer_id, CREDITED
        outcome = _bill_outcome(status, notice.status == PAY_SUCCESS, notice.deduction_id)
        if outcome != status:
            conn.execute(update(bill).where(bill.c.deduction_id == notice.deduction_id).values(
                status=outcome, settled_at=now if outcome == SETTLED else None))
            review(conn, locked, self.policy, now)
        return payer_id, outcome

    def _topup(self, conn: Connection, notice: PayNotice, now: datetime) -> str:
        if notice.status != PAY_SUCCESS:
            return IGNORED
        accounts.ensure_payers(conn, [notice.payer_id], now)
        locked = accounts.lock_payers(conn, [notice.payer_id])
        self._credit(conn, locked[notice.payer_id], notice, now)
        return TOPUP

    def _credit(self, conn: Connection, payer: Payer, notice: PayNotice, now: datetime) -> None:
        """Add the notice's amount to the locked payer's balance (entry ``topup:<serial>``),
        settle its bills in arrears from it, pay its unpaid prepaid charges, review it."""
        payer = accounts.topup(conn, payer, notice.serial, notice.amount_fen, now)
        payer = accounts.settle_bills(conn, payer, now).payer
        # The rows are saved; _refresh reviews from the saved state.
        self._refresh(conn, {payer.payer_id: payer}, now)


def _settled_from_balance(conn: Connection, bill_id: int, deduction_id: str) -> bool:
    """Whether a settled bill was settled from the balance (not by its deduction)."""
    entry = conn.execute(select(balance_entry.c.id).where(
        balance_entry.c.entry_key == f"bill:{bill_id}")).first()
    paid = conn.execute(select(payment.c.id).where(
        payment.c.deduction_id == deduction_id, payment.c.outcome == SETTLED)).first()
    return entry is not None and paid is None


def _bill_outcome(status: str, success: bool, deduction_id: str) -> str:
    """The bill's status after a deduction outcome (OWED/ARREARS only)."""
    if status == SETTLED:
        raise InvalidState(f"the bill of deduction {deduction_id!r} is already settled")
    if status not in (OWED, ARREARS):
        raise InvalidState(f"the bill of deduction {deduction_id!r} is {status}")
    return SETTLED if success else ARREARS


def _no_bill_run_unfinished(conn: Connection) -> None:
    """Refuse a payer's change of kind while a bill run is unfinished: its sums were
    made for the kinds they saw (a charge paid from the balance while the payer was
    prepaid must never reach a bill); after the run, the change is safe."""
    running = conn.execute(select(func.min(bill_run.c.bill_date))
                           .where(bill_run.c.status == RUNNING)).scalar()
    if running is not None:
        raise InvalidState(f"the bill run of {running} is not finished: change the payer's "
                           "kind after it (billingcenter bill --date finishes it)")
