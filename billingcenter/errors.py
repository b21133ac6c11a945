"""Domain errors: one module, each with a stable code; nothing here knows the wire.

The code is what a caller sees (as ``BillingException.getCode()`` in Java) and
must never change meaning once released.  The catalogue is in
``interfaces/README.md``.
"""

from __future__ import annotations

from typing import ClassVar

import attrs


@attrs.define(eq=False, str=False)
class BillingError(Exception):
    """Base of every deliberate, caller-visible error."""

    message: str
    code: ClassVar[str] = "INTERNAL_ERROR"

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class InvalidArgument(BillingError):
    """A field is missing, malformed or out of range."""

    code = "INVALID_ARGUMENT"


class UnknownOrder(BillingError):
    """The record names an order that billing has never been told about."""

    code = "UNKNOWN_ORDER"


class UnknownProduct(BillingError):
    """The record names a product (or plan) that is not in the catalogue."""

    code = "UNKNOWN_PRODUCT"


class DuplicateConflict(BillingError):
    """A repeat of a caller key arrived with content different from the first."""

    code = "DUPLICATE_CONFLICT"


class InvalidState(BillingError):
    """The change is not allowed in the order's current state."""

    code = "INVALID_STATE"


class UnknownDeduction(BillingError):
    """A payment names a deduction billing never asked for."""

    code = "UNKNOWN_DEDUCTION"


class AmountMismatch(BillingError):
    """A payment's amount (or payer) differs from the deduction it reports on."""

    code = "AMOUNT_MISMATCH"


class NotImplementedYet(BillingError):
    """The method is part of the contract but its behaviour has not landed yet."""

    code = "NOT_IMPLEMENTED"


class Unauthorized(BillingError):
    """The calling system may not call this method."""

    code = "FORBIDDEN"


class NoRule(BillingError):
    """No published rule prices this record or request (at that time)."""

    code = "NO_RULE"


class Unavailable(BillingError):
    """A dependency (the database) failed; the call may be retried with the same key."""

    code = "UNAVAILABLE"


class InvalidRuleSet(BillingError):
    """A rule set's TOML cannot be parsed or does not fit the ledger (names a field)."""

    code = "INVALID_RULE_SET"


class UnknownRuleVersion(BillingError):
    """No version of that rule set with that label has been imported."""

    code = "UNKNOWN_RULE_VERSION"


class RuleWorkflowError(BillingError):
    """The rule set version's status does not allow this (publish a draft, edit a published)."""

    code = "RULE_WORKFLOW"


class RoleForbidden(BillingError):
    """This user may not do this to rule sets (lacks the role, or reviews their own version)."""

    code = "ROLE_FORBIDDEN"


ALL_CODES: tuple[str, ...] = tuple(
    cls.code
    for cls in (
        BillingError,
        InvalidArgument,
        UnknownOrder,
        UnknownProduct,
        DuplicateConflict,
        InvalidState,
        NotImplementedYet,
        Unauthorized,
        NoRule,
        Unavailable,
        InvalidRuleSet,
        UnknownRuleVersion,
        RuleWorkflowError,
        RoleForbidden,
    )
)
