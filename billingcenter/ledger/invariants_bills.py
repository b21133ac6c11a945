"""Invariants of charges, bills and bill lines (see ``billingcenter.ledger.checks``).

Every query is set-based (joins and ``GROUP BY`` over whole tables, lookups through
indexes), ordered by the ids it reports, and returns only the rows that break it.

A ``BUILDING`` bill is a bill run in progress (``billingcenter.jobs.billing``): its
charges are marked but it has no lines and no totals yet, so the checks of lines and
totals leave it out; the checks of marked charges (bill exists, payer, date) hold for
it as for any bill.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.engine import Dialect, Row
from sqlalchemy.sql.elements import ColumnElement

from billingcenter.ledger.checks import Check, Ids
from billingcenter.ledger.schema_billing import BUILDING, bill, bill_line
from billingcenter.ledger.schema_rating import charge

# -- charges and their bills ---------------------------------------------------------


def _charge_bill(where: ColumnElement[bool]) -> Any:
    return (select(charge.c.id, charge.c.bill_id, charge.c.payer_id, charge.c.day,
                   bill.c.payer_id.label("bill_payer"), bill.c.bill_date)
            .select_from(charge.outerjoin(bill, bill.c.id == charge.c.bill_id))
            .where(charge.c.bill_id != 0, where).order_by(charge.c.id))


def _charge_ids(row: Row[Any]) -> Ids:
    return (("charge", row.id), ("bill", row.bill_id))


CHARGE_CHECKS = (
    Check("charge_bill_missing", "the bill a charge is marked with exists",
          lambda d: _charge_bill(bill.c.id.is_(None)),
          lambda r: (_charge_ids(r), "an existing bill", "no such bill")),
    Check("charge_bill_payer", "a charge's bill is its payer's",
          lambda d: _charge_bill(bill.c.payer_id != charge.c.payer_id),
          lambda r: (_charge_ids(r), f"a bill of {r.payer_id}", f"a bill of {r.bill_payer}")),
    Check("charge_bill_date", "a charge's bill date is after the charge's day",
          lambda d: _charge_bill(bill.c.bill_date <= charge.c.day),
          lambda r: (_charge_ids(r), f"bill date after {r.day}",
                     f"bill date {r.bill_date}")),
    Check("charge_billed_and_prepaid", "no charge is both billed and paid from a balance",
          lambda d: select(charge.c.id, charge.c.bill_id, charge.c.entry_id)
          .where(charge.c.bill_id != 0, charge.c.entry_id != 0).order_by(charge.c.id),
          lambda r: ((("charge", r.id),), "bill_id or entry_id, not both",
                     f"bill {r.bill_id} and entry {r.entry_id}")),
)


# -- bills, lines and charges ----------------------------------------------------------


def _line_sums() -> Any:
    return (select(bill_line.c.bill_id, func.count().label("lines"),
                   func.sum(bill_line.c.charges).label("charges"),
                   func.sum(bill_line.c.amount_fen).label("amount"),
                   func.min(bill_line.c.first_day).label("first_day"),
                   func.max(bill_line.c.last_day).label("last_day"))
            .group_by(bill_line.c.bill_id).subquery())


def _bill_lines(dialect: Dialect) -> Any:
    sums = _line_sums()
    differs = or_(sums.c.bill_id.is_(None), bill.c.total_fen != sums.c.amount,
                  bill.c.lines != sums.c.lines, bill.c.charges != sums.c.charges,
                  bill.c.first_day.is_(None), bill.c.first_day != sums.c.first_day,
                  bill.c.last_day.is_(None), bill.c.last_day != sums.c.last_day)
    return (select(bill.c.id, bill.c.total_fen, bill.c.lines, bill.c.charges,
                   bill.c.first_day, bill.c.last_day,
                   sums.c.amount.label("s_amount"), sums.c.lines.label("s_lines"),
                   sums.c.charges.label("s_charges"), sums.c.first_day.label("s_first"),
                   sums.c.last_day.label("s_last"))
            .select_from(bill.outerjoin(sums, sums.c.bill_id == bill.c.id))
            .where(differs, bill.c.status != BUILDING).order_by(bill.c.id))


def _totals(amount: Any, lines: Any, charges: Any, first: Any, last: Any) -> str:
    if amount is None:
        return "no lines"
    return (f"total {int(amount)} fen, {int(lines or 0)} lines, {int(charges or 0)} charges, "
            f"days {first} to {last}")


def _charge_sums() -> Any:
    return (select(charge.c.bill_id, charge.c.order_id, charge.c.product_code,
                   func.count().label("charges"), func.sum(charge.c.amount_fen).label("amount"),
                   func.min(charge.c.day).label("first_day"),
                   func.max(charge.c.day).label("last_day"))
            .where(charge.c.bill_id != 0)
            .group_by(charge.c.bill_id, charge.c.order_id, charge.c.product_code).subquery())


def _line_groups() -> Any:
    return (select(bill_line.c.bill_id, bill_line.c.order_id, bill_line.c.product_code,
                   func.min(bill_line.c.id).label("id"), func.count().label("lines"),
                   func.sum(bill_line.c.charges).label("charges"),
                   func.sum(bill_line.c.amount_fen).label("amount"),
                   func.min(bill_line.c.first_day).label("first_day"),
                   func.max(bill_line.c.last_day).label("last_day"))
            .group_by(bill_line.c.bill_id, bill_line.c.order_id, bill_line.c.product_code)
            .subquery())


def _same_group(a: Any, b: Any) -> ColumnElement[bool]:
    return and_(a.c.bill_id == b.c.bill_id, a.c.order_id == b.c.order_id,
                a.c.product_code == b.c.product_code)


def _line_charges(dialect: Dialect) -> Any:
    lines, sums = _line_groups(), _charge_sums()
    differs = or_(sums.c.bill_id.is_(None), lines.c.lines != 1,
                  lines.c.amount != sums.c.amount, lines.c.charges != sums.c.charges,
                  lines.c.first_day != sums.c.first_day, lines.c.last_day != sums.c.last_day)
    return (select(lines.c.id, lines.c.bill_id, lines.c.order_id, lines.c.product_code,
                   lines.c.lines, lines.c.amount, lines.c.charges, lines.c.first_day,
                   lines.c.last_day, sums.c.amount.label("s_amount"),
                   sums.c.charges.label("s_charges"), sums.c.first_day.label("s_first"),
                   sums.c.last_day.label("s_last"))
            .select_from(lines.outerjoin(sums, _same_group(lines, sums)))
            .where(differs).order_by(lines.c.bill_id, lines.c.id))


def _unlined(dialect: Dialect) -> Any:
    lines, sums = _line_groups(), _charge_sums()
    return (select(sums.c.bill_id, sums.c.order_id, sums.c.product_code, sums.c.charges,
                   sums.c.amount)
            .select_from(sums.outerjoin(lines, _same_group(lines, sums))
                         .outerjoin(bill, bill.c.id == sums.c.bill_id))
            .where(lines.c.bill_id.is_(None), or_(bill.c.status.is_(None),
                                                  bill.c.status != BUILDING))
            .order_by(sums.c.bill_id, sums.c.order_id, sums.c.product_code))


def _sums(amount: Any, charges: Any, first: Any, last: Any) -> str:
    if amount is None:
        return "no charges"
    return f"amount {int(amount)} fen, {int(charges or 0)} charges, days {first} to {last}"


def _line_found(r: Row[Any]) -> str:
    extra = f" ({r.lines} lines for this order and product)" if r.lines != 1 else ""
    return _sums(r.amount, r.charges, r.first_day, r.last_day) + extra


BILL_LINE_CHECKS = (
    Check("bill_lines", "a bill's total, counts and days equal those of its lines",
          _bill_lines,
          lambda r: ((("bill", r.id),),
                     _totals(r.s_amount, r.s_lines, r.s_charges, r.s_first, r.s_last),
                     _totals(r.total_fen, r.lines, r.charges, r.first_day, r.last_day))),
    Check("bill_line_charges", "a line's amount, count and days equal its charges'",
          _line_charges,
          lambda r: ((("bill", r.bill_id), ("line", r.id), ("order", r.order_id),
                      ("product", r.product_code)),
                     _sums(r.s_amount, r.s_charges, r.s_first, r.s_last),
                     _line_found(r))),
    Check("bill_charges_unlined", "charges marked with a bill have a line on it",
          _unlined,
          lambda r: ((("bill", r.bill_id), ("order", r.order_id), ("product", r.product_code)),
                     f"a line of {r.charges} charges, {int(r.amount)} fen", "no line")),
)
