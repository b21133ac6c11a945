"""Invariants of bill status, deductions, payments and balances (``billingcenter.ledger.checks``).

Every query is set-based, ordered by the ids it reports, and returns only the rows
that break it.  Balance entry keys are ``bill:<bill id>``, ``charge:<charge id>`` and
``topup:<serial>``; a key is matched to its row through the row's primary key.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, String, and_, cast, exists, func, literal, or_, select
from sqlalchemy.engine import Dialect, Row
from sqlalchemy.sql.elements import ColumnElement

from billingcenter.ledger.checks import Check
from billingcenter.ledger.outbox import ACCOUNT, CHARGE_ACCOUNT
from billingcenter.ledger.schema_billing import (
    ARREARS,
    EMPTY,
    OWED,
    SETTLED,
    balance_entry,
    bill,
    outbox,
    payer_account,
    payment,
)
from billingcenter.ledger.schema_rating import charge

SUCCESS = "SUCCESS"
BILL_STATUSES = (OWED, SETTLED, ARREARS, EMPTY)
BILL_KEY, CHARGE_KEY, TOPUP_KEY = "bill:", "charge:", "topup:"
TOPUP = "TOPUP"  # payment.outcome of a top-up that moved the balance
CREDITED = "CREDITED"  # payment.outcome of a deduction credited to the balance
SETTLED_OUTCOME = "SETTLED"  # payment.outcome of a deduction that settled its bill


def _key(prefix: str, row_id: ColumnElement[Any]) -> ColumnElement[Any]:
    """``'<prefix><id>'``: the ``entry_key`` of a row id."""
    return literal(prefix, String) + cast(row_id, String)


def _deduction(column: ColumnElement[Any]) -> ColumnElement[bool]:
    return and_(column.is_not(None), column != "")


def _from_balance() -> ColumnElement[bool]:
    return exists().where(balance_entry.c.entry_key == _key(BILL_KEY, bill.c.id))


def _successes() -> Any:
    return (select(func.count()).where(payment.c.deduction_id == bill.c.deduction_id,
                                       payment.c.deduction_id != "",
                                       payment.c.status == SUCCESS,
                                       payment.c.outcome == SETTLED_OUTCOME)
            .correlate(bill).scalar_subquery())


def _bills(where: ColumnElement[bool], *extra: Any) -> Any:
    return (select(bill.c.id, bill.c.payer_id, bill.c.status, bill.c.total_fen,
                   bill.c.deduction_id, *extra).where(where).order_by(bill.c.id))


def _bill_status(dialect: Dialect) -> Any:
    return _bills(or_(
        bill.c.status.not_in(BILL_STATUSES),
        and_(bill.c.status == EMPTY, or_(bill.c.total_fen != 0, _deduction(bill.c.deduction_id))),
        and_(bill.c.status != EMPTY, bill.c.total_fen == 0)))


def _status_expected(r: Row[Any]) -> str:
    if r.status not in BILL_STATUSES:
        return f"one of {', '.join(BILL_STATUSES)}"
    if r.status == EMPTY and r.total_fen == 0:
        return "EMPTY without a deduction id"
    return "EMPTY" if r.total_fen == 0 else f"{OWED}, {ARREARS} or {SETTLED} (total != 0)"


def _deduction_missing(dialect: Dialect) -> Any:
    return _bills(and_(~_deduction(bill.c.deduction_id), or_(
        bill.c.status.in_((OWED, ARREARS)), and_(bill.c.status == SETTLED, ~_from_balance()))))


def _deduction_outbox(dialect: Dialect) -> Any:
    joined = bill.outerjoin(outbox, outbox.c.message_key == bill.c.deduction_id)
    # A payment naming the deduction proves the call was delivered; its DELIVERED
    # message may have been purged since ([outbox] keep_delivered).
    answered = exists().where(payment.c.deduction_id == bill.c.deduction_id)
    wrong = or_(and_(outbox.c.id.is_(None), ~answered), outbox.c.method != CHARGE_ACCOUNT,
                outbox.c.target != ACCOUNT)
    return (select(bill.c.id, bill.c.deduction_id, outbox.c.id.label("message"),
                   outbox.c.method, outbox.c.target)
            .select_from(joined).where(_deduction(bill.c.deduction_id), wrong)
            .order_by(bill.c.id))


def _outbox_unknown(dialect: Dialect) -> Any:
    known = exists().where(bill.c.deduction_id == outbox.c.message_key)
    return (select(outbox.c.id, outbox.c.message_key)
            .where(outbox.c.method == CHARGE_ACCOUNT, ~known).order_by(outbox.c.id))


BILL_CHECKS = (
    Check("bill_status", "EMPTY exactly when the total is 0; no deduction on EMPTY",
          _bill_status,
          lambda r: ((("bill", r.id),), _status_expected(r),
                     f"{r.status}, total {r.total_fen} fen, deduction {r.deduction_id or '-'}")),
    Check("bill_deduction_missing", "an owed, arrears or settled bill has a deduction id "
          "(a settled one unless settled from the balance)", _deduction_missing,
          lambda r: ((("bill", r.id),), "a deduction id", f"{r.status} without one")),
    Check("deduction_outbox", "a deduction has its chargeAccount message to the account system "
          "(once paid or failed, its delivered message may have been purged)",
          _deduction_outbox,
          lambda r: ((("bill", r.id), ("deduction", r.deduction_id)),
                     f"{CHARGE_ACCOUNT} to {ACCOUNT}",
                     "no message" if r.message is None
                     else f"message {r.message}: {r.method} to {r.target}")),
    Check("outbox_unknown_deduction", "a chargeAccount message is for a bill's deduction",
          _outbox_unknown,
          lambda r: ((("message", r.id), ("deduction", r.message_key)),
                     "a bill with this deduction id", "no such bill")),
)


# -- payments --------------------------------------------------------------------------


def _settled_unpaid(dialect: Dialect) -> Any:
    return _bills(and_(bill.c.status == SETTLED, _successes() == 0, ~_from_balance()))


def _paid_twice(dialect: Dialect) -> Any:
    entries = (select(func.count()).where(balance_entry.c.entry_key == _key(BILL_KEY, bill.c.id))
               .correlate(bill).scalar_subquery())
    successes = _successes()
    return _bills(successes + entries > 1, successes.label("successes"),
                  entries.label("entries"))


def _payment_bill(where: ColumnElement[bool]) -> Any:
    joined = payment.outerjoin(bill, bill.c.deduction_id == payment.c.deduction_id)
    return (select(payment.c.id, payment.c.serial, payment.c.deduction_id, payment.c.payer_id,
                   payment.c.amount_fen, bill.c.id.label("bill"),
                   bill.c.payer_id.label("bill_payer"), bill.c.total_fen)
            .select_from(joined).where(payment.c.deduction_id != "", where)
            .order_by(payment.c.id))


def _payment_ids(r: Row[Any]) -> Any:
    return (("payment", r.id), ("serial", r.serial), ("deduction", r.deduction_id))


def _topup_entry(dialect: Dialect) -> Any:
    joined = payment.outerjoin(balance_entry, balance_entry.c.entry_key == literal(
        TOPUP_KEY, String) + payment.c.serial)
    wrong = or_(balance_entry.c.id.is_(None), balance_entry.c.amount_fen != payment.c.amount_fen,
                balance_entry.c.payer_id != payment.c.payer_id)
    return (select(payment.c.id, payment.c.serial, payment.c.payer_id, payment.c.amount_fen,
                   balance_entry.c.id.label("entry"),
                   balance_entry.c.payer_id.label("entry_payer"),
                   balance_entry.c.amount_fen.label("entry_amount"))
            .select_from(joined)
            .where(payment.c.outcome.in_((TOPUP, CREDITED)), wrong)
            .order_by(payment.c.id))


PAYMENT_CHECKS = (
    Check("settled_unpaid", "a settled bill has a successful deduction or a balance entry",
          _settled_unpaid,
          lambda r: ((("bill", r.id), ("deduction", r.deduction_id or "-")),
                     f"a {SUCCESS} payment or a {BILL_KEY}{r.id} balance entry", "neither")),
    Check("bill_paid_twice", "a bill is paid at most once", _paid_twice,
          lambda r: ((("bill", r.id), ("deduction", r.deduction_id or "-")), "paid once",
                     f"{r.successes} {SUCCESS} payments, {r.entries} balance entries")),
    Check("payment_unknown_deduction", "a payment names a bill's deduction",
          lambda d: _payment_bill(bill.c.id.is_(None)),
          lambda r: (_payment_ids(r), "a bill with this deduction id", "no such bill")),
    Check("payment_mismatch", "a payment's amount and payer are its bill's",
          lambda d: _payment_bill(or_(payment.c.amount_fen != bill.c.total_fen, and_(
              payment.c.payer_id != "", payment.c.payer_id != bill.c.payer_id))),
          lambda r: (_payment_ids(r) + (("bill", r.bill),),
                     f"{r.total_fen} fen from {r.bill_payer}",
                     f"{r.amount_fen} fen from {r.payer_id or '-'}")),
    Check("topup_entry", "a top-up (or credited) payment has its topup:<serial> entry",
          _topup_entry,
          lambda r: ((("payment", r.id), ("serial", r.serial)),
                     f"{TOPUP_KEY}{r.serial}: {r.amount_fen} fen to {r.payer_id}",
                     "no such entry" if r.entry is None
                     else f"entry {r.entry}: {r.entry_amount} fen to {r.entry_payer}")),
)


# -- balances --------------------------------------------------------------------------


def _entry_sums() -> Any:
    last = func.max(balance_entry.c.id)
    return (select(balance_entry.c.payer_id, func.sum(balance_entry.c.amount_fen).label("total"),
                   func.count().label("entries"), last.label("last_id"))
            .group_by(balance_entry.c.payer_id).subquery())


def _balance_sum(dialect: Dialect) -> Any:
    sums = _entry_sums()
    total = func.coalesce(sums.c.total, 0)
    return (select(payer_account.c.id, payer_account.c.payer_id, payer_account.c.balance_fen,
                   total.label("total"), func.coalesce(sums.c.entries, 0).label("entries"))
            .select_from(payer_account.outerjoin(
                sums, sums.c.payer_id == payer_account.c.payer_id))
            .where(payer_account.c.balance_fen != total).order_by(payer_account.c.id))


def _balance_last(dialect: Dialect) -> Any:
    sums = _entry_sums()
    joined = payer_account.join(sums, sums.c.payer_id == payer_account.c.payer_id).join(
        balance_entry, balance_entry.c.id == sums.c.last_id)
    return (select(payer_account.c.id, payer_account.c.payer_id, payer_account.c.balance_fen,
                   balance_entry.c.id.label("entry"), balance_entry.c.balance_after_fen)
            .select_from(joined)
            .where(payer_account.c.balance_fen != balance_entry.c.balance_after_fen)
            .order_by(payer_account.c.id))


def _balance_chain(dialect: Dialect) -> Any:
    before = func.coalesce(func.lag(balance_entry.c.balance_after_fen).over(
        partition_by=balance_entry.c.payer_id, order_by=balance_entry.c.id), 0)
    chained = select(balance_entry.c.id, balance_entry.c.payer_id, balance_entry.c.amount_fen,
                     balance_entry.c.balance_after_fen, before.label("before")).subquery()
    return (select(chained)
            .where(chained.c.balance_after_fen != chained.c.before + chained.c.amount_fen)
            .order_by(chained.c.id))


def _entry_unknown_payer(dialect: Dialect) -> Any:
    known = exists().where(payer_account.c.payer_id == balance_entry.c.payer_id)
    return (select(balance_entry.c.id, balance_entry.c.payer_id, balance_entry.c.entry_key)
            .where(~known).order_by(balance_entry.c.id))


def _prepaid_entry(dialect: Dialect) -> Any:
    joined = charge.outerjoin(balance_entry, balance_entry.c.id == charge.c.entry_id)
    wrong = or_(balance_entry.c.id.is_(None),
                balance_entry.c.amount_fen != -charge.c.amount_fen,
                balance_entry.c.payer_id != charge.c.payer_id,
                balance_entry.c.entry_key != _key(CHARGE_KEY, charge.c.id))
    return (select(charge.c.id, charge.c.entry_id, charge.c.payer_id, charge.c.amount_fen,
                   balance_entry.c.id.label("entry"), balance_entry.c.entry_key,
                   balance_entry.c.payer_id.label("entry_payer"),
                   balance_entry.c.amount_fen.label("entry_amount"))
            .select_from(joined).where(charge.c.entry_id != 0, wrong).order_by(charge.c.id))


def _bill_entry(dialect: Dialect) -> Any:
    bill_id = cast(func.substr(balance_entry.c.entry_key, len(BILL_KEY) + 1), BigInteger)
    joined = balance_entry.outerjoin(bill, bill.c.id == bill_id)
    wrong = or_(bill.c.id.is_(None), bill.c.status != SETTLED,
                bill.c.payer_id != balance_entry.c.payer_id,
                balance_entry.c.amount_fen != -bill.c.total_fen)
    return (select(balance_entry.c.id, balance_entry.c.entry_key, balance_entry.c.payer_id,
                   balance_entry.c.amount_fen, bill.c.id.label("bill"),
                   bill.c.payer_id.label("bill_payer"), bill.c.total_fen, bill.c.status)
            .select_from(joined)
            .where(balance_entry.c.entry_key.like(BILL_KEY + "%"), wrong)
            .order_by(balance_entry.c.id))


def _entry_found(r: Row[Any]) -> str:
    if r.entry is None:
        return "no such entry"
    return f"{r.entry_key}: {r.entry_amount} fen from {r.entry_payer}"


def _bill_entry_found(r: Row[Any]) -> str:
    if r.bill is None:
        return "no such bill"
    return f"{r.status} bill of {r.bill_payer}, total {r.total_fen} fen"


BALANCE_CHECKS = (
    Check("balance_sum", "a balance is the sum of its entries", _balance_sum,
          lambda r: ((("payer", r.payer_id),), f"{int(r.total)} fen ({r.entries} entries)",
                     f"{r.balance_fen} fen")),
    Check("balance_last", "a balance is its last entry's balance after", _balance_last,
          lambda r: ((("payer", r.payer_id), ("entry", r.entry)),
                     f"{r.balance_after_fen} fen", f"{r.balance_fen} fen")),
    Check("balance_chain", "an entry's balance after is the one before plus its amount",
          _balance_chain,
          lambda r: ((("entry", r.id), ("payer", r.payer_id)),
                     f"{int(r.before) + r.amount_fen} fen", f"{r.balance_after_fen} fen")),
    Check("balance_floor", "no balance is below its floor",
          lambda d: select(payer_account.c.id, payer_account.c.payer_id,
                           payer_account.c.balance_fen, payer_account.c.floor_fen)
          .where(payer_account.c.balance_fen < payer_account.c.floor_fen)
          .order_by(payer_account.c.id),
          lambda r: ((("payer", r.payer_id),), f"at least {r.floor_fen} fen",
                     f"{r.balance_fen} fen")),
    Check("entry_unknown_payer", "a balance entry's payer has an account",
          _entry_unknown_payer,
          lambda r: ((("entry", r.id), ("payer", r.payer_id)), "a payer_account row",
                     "none")),
    Check("prepaid_entry", "a prepaid charge's entry is its own and takes its amount",
          _prepaid_entry,
          lambda r: ((("charge", r.id), ("entry", r.entry_id)),
                     f"{CHARGE_KEY}{r.id}: {-r.amount_fen} fen from {r.payer_id}",
                     _entry_found(r))),
    Check("bill_entry", "a bill:<id> entry pays an existing settled bill of its payer",
          _bill_entry,
          lambda r: ((("entry", r.id), ("key", r.entry_key)),
                     f"SETTLED bill of {r.payer_id}, total {-r.amount_fen} fen",
                     _bill_entry_found(r))),
)
