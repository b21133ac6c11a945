"""Invariants of charges, bills and bill lines (see ``billingcenter.ledger.checks``).

Every query is set-based (joins and ``GROUP BY`` over whole tables, lookups through
indexes), ordered by the ids it reports, and returns only the rows that break it.

Which bill holds a charge follows from the bills' bounds and dates
(``billingcenter.ledger.coverage``); the checks hold that rule to the bills, their
lines and the payer rows.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.engine import Dialect, Row
from sqlalchemy.sql.elements import ColumnElement

from billingcenter.ledger import coverage
from billingcenter.ledger.checks import Check
from billingcenter.ledger.schema_billing import bill, bill_line, payer_account
from billingcenter.ledger.schema_rating import charge

# -- bounds and payers -----------------------------------------------------------------


def _shrinking(dialect: Dialect) -> Any:
    """Bills whose bound is below that of an earlier bill of the same payer."""
    earlier = bill.alias("earlier")
    return (select(bill.c.id, bill.c.payer_id, bill.c.upto_id,
                   earlier.c.id.label("earlier_id"), earlier.c.upto_id.label("earlier_upto"))
            .select_from(bill.join(earlier, and_(earlier.c.payer_id == bill.c.payer_id,
                                                 earlier.c.bill_date < bill.c.bill_date)))
            .where(earlier.c.upto_id > bill.c.upto_id).order_by(bill.c.id, earlier.c.id))


def _latest_bills() -> Any:
    return (select(bill.c.payer_id, func.max(bill.c.bill_date).label("bill_date"),
                   func.max(bill.c.upto_id).label("upto_id"))
            .group_by(bill.c.payer_id).subquery("latest"))


def _payer_bounds(dialect: Dialect) -> Any:
    """Payer rows whose billed bound and date are not those of their latest bill."""
    p, latest = payer_account.c, _latest_bills()
    differs = or_(
        and_(latest.c.payer_id.is_(None), or_(p.billed_upto != 0, p.billed_before.isnot(None))),
        and_(latest.c.payer_id.isnot(None), or_(
            p.billed_upto != latest.c.upto_id, p.billed_before.is_(None),
            p.billed_before != latest.c.bill_date)))
    return (select(p.id, p.payer_id, p.billed_upto, p.billed_before,
                   latest.c.upto_id.label("l_upto"), latest.c.bill_date.label("l_date"))
            .select_from(payer_account.outerjoin(latest, latest.c.payer_id == p.payer_id))
            .where(differs).order_by(p.id))


def _forgotten(dialect: Dialect) -> Any:
    """Charges waiting for a bill below their payer's ``unbilled_from``: no run reads them."""
    c, p = charge.c, payer_account.c
    return (select(c.id, c.payer_id, p.unbilled_from)
            .select_from(charge.join(payer_account, p.payer_id == c.payer_id))
            .where(coverage.waiting(), c.id < p.unbilled_from).order_by(c.id))


def _bound_text(upto: Any, before: Any) -> str:
    return "never billed" if not upto else f"charges up to id {upto} before {before}"


CHARGE_CHECKS = (
    Check("bill_bounds_grow", "a payer's bills take charge id bounds that never shrink",
          _shrinking,
          lambda r: ((("bill", r.id), ("bill", r.earlier_id)),
                     f"a bound of at least {r.earlier_upto}", f"bound {r.upto_id}")),
    Check("payer_bill_bounds", "a payer row's billed bound and date are its latest bill's",
          _payer_bounds,
          lambda r: ((("payer", r.payer_id),), _bound_text(r.l_upto, r.l_date),
                     _bound_text(r.billed_upto, r.billed_before))),
    Check("charge_forgotten", "no charge waits for a bill below its payer's unbilled_from",
          _forgotten,
          lambda r: ((("charge", r.id), ("payer", r.payer_id)),
                     f"a charge id of at least {r.unbilled_from}", f"charge {r.id}")),
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
            .where(differs).order_by(bill.c.id))


def _totals(amount: Any, lines: Any, charges: Any, first: Any, last: Any) -> str:
    if amount is None:
        return "no lines"
    return (f"total {int(amount)} fen, {int(lines or 0)} lines, {int(charges or 0)} charges, "
            f"days {first} to {last}")


def _charge_sums() -> Any:
    """Per (bill, order, product): the charges the bill holds by its bound and date."""
    earlier = bill.alias("earlier")
    def before(column: Any) -> Any:
        return (select(func.max(column)).where(earlier.c.payer_id == bill.c.payer_id,
                                               earlier.c.bill_date < bill.c.bill_date)
                .scalar_subquery())
    held = select(bill.c.id.label("bill_id"), bill.c.payer_id, bill.c.bill_date,
                  bill.c.upto_id, before(earlier.c.upto_id).label("prev_upto"),
                  before(earlier.c.bill_date).label("prev_before")).subquery("held")
    c = charge.c
    on_bill = and_(c.payer_id == held.c.payer_id, c.day < held.c.bill_date,
                   coverage.on_bill(held.c.upto_id, held.c.bill_date, held.c.prev_upto,
                                    held.c.prev_before))
    return (select(held.c.bill_id, c.order_id, c.product_code,
                   func.count().label("charges"), func.sum(c.amount_fen).label("amount"),
                   func.min(c.day).label("first_day"), func.max(c.day).label("last_day"))
            .select_from(held.join(charge, on_bill))
            .group_by(held.c.bill_id, c.order_id, c.product_code).subquery())


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
            .select_from(sums.outerjoin(lines, _same_group(lines, sums)))
            .where(lines.c.bill_id.is_(None))
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
    Check("bill_charges_unlined", "the charges a bill holds have a line on it",
          _unlined,
          lambda r: ((("bill", r.bill_id), ("order", r.order_id), ("product", r.product_code)),
                     f"a line of {r.charges} charges, {int(r.amount)} fen", "no line")),
)
