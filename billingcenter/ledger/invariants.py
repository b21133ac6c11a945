"""Every invariant of the ledger, in the order ``billingcenter check`` runs them."""

from __future__ import annotations

from billingcenter.ledger.invariants_bills import BILL_LINE_CHECKS, CHARGE_CHECKS
from billingcenter.ledger.invariants_money import BALANCE_CHECKS, BILL_CHECKS, PAYMENT_CHECKS

CHECKS = CHARGE_CHECKS + BILL_LINE_CHECKS + BILL_CHECKS + PAYMENT_CHECKS + BALANCE_CHECKS
KINDS = tuple(check.kind for check in CHECKS)
