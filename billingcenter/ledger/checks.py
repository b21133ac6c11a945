"""The ledger check: every invariant of billing as one set-based query, every breach listed.

Each ``Check`` is one ``SELECT`` that returns the rows breaking its invariant (so each
invariant is judged on one consistent snapshot of the tables it compares), and a
function that says, for a row, which ids are involved, what was expected and what
was found.  The invariants, by kind (``billingcenter.ledger.invariants``):

* which bill holds a charge (``billingcenter.ledger.coverage``): ``bill_bounds_grow``
  (a payer's bills take charge id bounds that never shrink), ``payer_bill_bounds`` (a
  payer row's billed bound and date are its latest bill's), ``charge_forgotten`` (no
  charge waits for a bill below its payer's ``unbilled_from``, where no run looks);
* bills equal their lines, lines their charges: ``bill_lines`` (a bill's total, line
  count, charge count and first/last day equal those of its lines),
  ``bill_line_charges`` (a line's amount, charge count and days equal those of the
  charges its bill holds for its order and product; a held charge paid from a balance
  since shows here), ``bill_charges_unlined`` (charges a bill holds that have no line
  for their order and product on it);
* bill status: ``bill_status`` (EMPTY exactly when the total is 0, no deduction on an
  EMPTY bill, a known status), ``bill_deduction_missing`` (OWED and ARREARS bills have a
  deduction id; SETTLED ones too unless settled from the balance),
  ``deduction_outbox`` (a deduction id has exactly one ``chargeAccount`` message to
  the account system with that key; once a ``payCallback`` named the deduction the
  message may be gone: delivered messages are purged after ``[outbox] keep_delivered``
  days), ``outbox_unknown_deduction`` (no ``chargeAccount``
  message for a deduction no bill has);
* payments: ``settled_unpaid`` (a SETTLED bill has a SUCCESS payment of its deduction
  or a ``bill:<id>`` balance entry), ``bill_paid_twice`` (not more than one of those),
  ``payment_unknown_deduction``, ``payment_mismatch`` (a stored payment's amount is its
  bill's total and its payer, when given, the bill's payer), ``topup_entry`` (a
  top-up that was applied, outcome ``TOPUP``, has its ``topup:<serial>`` entry of its
  amount and payer);
* balances: ``balance_sum`` (``payer_account.balance_fen`` is the sum of its entries),
  ``balance_last`` (and the last entry's ``balance_after_fen``), ``balance_chain``
  (each entry's balance after is the previous one plus its amount),
  ``balance_floor`` (no balance below its floor), ``entry_unknown_payer``,
  ``prepaid_entry`` (a prepaid charge's entry exists, is its payer's, is keyed
  ``charge:<id>`` and takes exactly the charge's amount), ``bill_entry`` (a
  ``bill:<id>`` entry names an existing SETTLED bill of its payer and takes its total).

``run_checks`` runs them in a read-only transaction and keeps at most ``limit``
breaches per kind, with the full count (counted only when the limit is passed).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import attrs
from sqlalchemy import func, select
from sqlalchemy.engine import Connection, Dialect, Engine, Row

from billingcenter.ledger import transact

Ids = tuple[tuple[str, Any], ...]


@attrs.frozen
class Breach:
    """One row that breaks an invariant: the ids involved, what was expected and found."""

    kind: str
    ids: Ids
    expected: str
    found: str


@attrs.frozen
class Check:
    """One invariant: a query for the rows that break it and how to describe one."""

    kind: str
    description: str
    query: Callable[[Dialect], Any]
    describe: Callable[[Row[Any]], tuple[Ids, str, str]]


@attrs.frozen
class CheckResult:
    """What one check found: the number of breaches and the first ``limit`` of them."""

    kind: str
    description: str
    count: int
    breaches: tuple[Breach, ...]


def run_check(conn: Connection, check: Check, limit: int) -> CheckResult:
    """Run one check, keeping at most ``limit`` breaches (all of them counted)."""
    query = check.query(conn.dialect)
    rows = conn.execute(query.limit(limit + 1)).all()
    count = len(rows)
    if count > limit:
        count = int(conn.execute(
            select(func.count()).select_from(query.order_by(None).subquery())).scalar_one())
    breaches = tuple(Breach(check.kind, *check.describe(row)) for row in rows[:limit])
    return CheckResult(check.kind, check.description, count, breaches)


def run_checks(engine: Engine, checks: Sequence[Check], limit: int) -> list[CheckResult]:
    """Run the checks, in order, in one read-only transaction."""
    def work(conn: Connection) -> list[CheckResult]:
        return [run_check(conn, check, limit) for check in checks]

    return transact.read(engine, work)


def choose(checks: Iterable[Check], kinds: Sequence[str]) -> list[Check]:
    """The checks of the named kinds (all of them when none is named)."""
    wanted = set(kinds)
    return [check for check in checks if not wanted or check.kind in wanted]
