"""Pure checks of inbound records: what makes a record acceptable to the ledger.

Two kinds of check live here.  ``validate_*`` look at the record alone (and the
time it arrived); ``check_*_against`` look at the facts the ledger already holds
(the order, the product), which the ledger reads and passes in.  Neither does
I/O nor reads the clock.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import attrs

from billingcenter.errors import InvalidArgument, UnknownOrder, UnknownProduct
from billingcenter.model import AccountNumChange, Order, PayNotice, Product, StateEvent, Usage

KEY_MAX = 64
TEXT_MAX = 128
ATTRIBUTES_MAX = 32
INT32_MAX = 2**31 - 1


@attrs.frozen
class Limits:
    """Bounds on inbound records; configurable under ``[intake]``."""

    max_future: timedelta = timedelta(days=1)
    earliest: datetime = datetime(2000, 1, 1, tzinfo=UTC)
    max_quantity: int = 10**12


def _require_key(name: str, value: str) -> None:
    if not value or not value.strip():
        raise InvalidArgument(f"{name} is required")
    if len(value) > KEY_MAX:
        raise InvalidArgument(f"{name} is longer than {KEY_MAX} characters")


def _require_text(name: str, value: str, required: bool = True) -> None:
    if required and (not value or not value.strip()):
        raise InvalidArgument(f"{name} is required")
    if len(value) > TEXT_MAX:
        raise InvalidArgument(f"{name} is longer than {TEXT_MAX} characters")


def _check_time(name: str, value: datetime, now: datetime, limits: Limits) -> None:
    if value < limits.earliest:
        raise InvalidArgument(f"{name} {value.isoformat()} is before {limits.earliest.date()}")
    if value > now + limits.max_future:
        raise InvalidArgument(
            f"{name} {value.isoformat()} is more than {limits.max_future} in the future"
        )


def validate_order(order: Order, now: datetime, limits: Limits) -> None:
    """Reject an ``installOrder`` record that is malformed on its own."""
    _require_key("orderId", order.order_id)
    _require_key("payerId", order.payer_id)
    _require_text("userId", order.user_id, required=False)
    _require_text("productCode", order.product_code)
    _require_text("planCode", order.plan_code, required=False)
    _check_time("activatedAt", order.activated_at, now, limits)
    if not 0 <= order.account_num <= INT32_MAX:
        raise InvalidArgument(f"accountNum must be 0 or more, got {order.account_num}")


def check_order_against(order: Order, product: Product | None) -> None:
    """Reject an order whose product or plan is not in the catalogue."""
    if product is None:
        raise UnknownProduct(f"product {order.product_code!r} is not in the catalogue")
    if order.plan_code and product.plans and order.plan_code not in product.plans:
        raise UnknownProduct(
            f"plan {order.plan_code!r} is not a plan of product {order.product_code!r}"
        )


def validate_event(event: StateEvent, now: datetime, limits: Limits) -> None:
    """Reject an ``updateOrderState`` record that is malformed on its own."""
    _require_key("eventId", event.event_id)
    _require_key("orderId", event.order_id)
    _check_time("changedAt", event.changed_at, now, limits)


def check_event_against(event: StateEvent, order: Order | None) -> None:
    """Reject a state change of an order billing does not know."""
    if order is None:
        raise UnknownOrder(f"order {event.order_id!r} is unknown")
    if event.changed_at < order.activated_at:
        raise InvalidArgument(
            f"changedAt {event.changed_at.isoformat()} is before the order's activation "
            f"{order.activated_at.isoformat()}"
        )


def validate_usage(usage: Usage, now: datetime, limits: Limits) -> None:
    """Reject an ``insertServiceOp`` record that is malformed on its own."""
    _require_key("opId", usage.op_id)
    _require_key("orderId", usage.order_id)
    _require_text("productCode", usage.product_code)
    _require_text("itemCode", usage.item_code, required=False)
    _require_text("userId", usage.user_id)
    _require_text("payerId", usage.payer_id, required=False)
    if usage.quantity < 0:
        raise InvalidArgument(f"quantity must not be negative, got {usage.quantity}")
    if usage.quantity > limits.max_quantity:
        raise InvalidArgument(f"quantity {usage.quantity} is over {limits.max_quantity}")
    _check_time("occurredAt", usage.occurred_at, now, limits)
    if len(usage.attributes) > ATTRIBUTES_MAX:
        raise InvalidArgument(f"more than {ATTRIBUTES_MAX} attributes")
    for key, value in usage.attributes:
        _require_text("attribute name", key)
        _require_text(f"attribute {key!r}", value, required=False)


def check_usage_against(usage: Usage, order: Order | None) -> Usage:
    """Check a usage record against its order and return it with the payer resolved.

    The payer of a usage record is always the payer of the order (mode 6, the actual
    payer); a caller that names a different payer is refused rather than guessed at.
    """
    if order is None:
        raise UnknownOrder(f"order {usage.order_id!r} is unknown")
    if usage.product_code != order.product_code:
        raise UnknownProduct(
            f"product {usage.product_code!r} is not the product of order {order.order_id!r}"
        )
    if usage.payer_id and usage.payer_id != order.payer_id:
        raise InvalidArgument(
            f"payerId {usage.payer_id!r} is not the payer of order {order.order_id!r}"
        )
    if usage.occurred_at < order.activated_at:
        raise InvalidArgument(
            f"occurredAt {usage.occurred_at.isoformat()} is before the order's activation"
        )
    return attrs.evolve(usage, payer_id=order.payer_id)


def validate_account_change(change: AccountNumChange, now: datetime, limits: Limits) -> None:
    """Reject a ``changeAccountNum`` call that is malformed on its own."""
    _require_key("mmId", change.payer_id)
    _require_text("productCode", change.product_code)
    if change.count < 0:
        raise InvalidArgument(f"currentNum must not be negative, got {change.count}")
    _check_time("changedAt", change.changed_at, now, limits)


# payCallback statuses; INSUFFICIENT_FUNDS is a failure like FAILED.
PAY_SUCCESS, PAY_FAILED, PAY_INSUFFICIENT = "SUCCESS", "FAILED", "INSUFFICIENT_FUNDS"
PAY_STATUSES = (PAY_SUCCESS, PAY_FAILED, PAY_INSUFFICIENT)
DEDUCTION_ID_MAX = 128
AMOUNT_MAX = 10**15  # fen; far above any real payment, far below a BIGINT


def validate_pay_notice(notice: PayNotice, now: datetime, limits: Limits) -> None:
    """Reject a ``payCallback`` that is malformed on its own."""
    _require_key("serial", notice.serial)
    if len(notice.deduction_id) > DEDUCTION_ID_MAX:
        raise InvalidArgument(f"deductionId is longer than {DEDUCTION_ID_MAX} characters")
    if len(notice.payer_id) > KEY_MAX:
        raise InvalidArgument(f"payerId is longer than {KEY_MAX} characters")
    if notice.status not in PAY_STATUSES:
        raise InvalidArgument(
            f"status must be one of {', '.join(PAY_STATUSES)}, got {notice.status!r}")
    if not 0 <= notice.amount_fen <= AMOUNT_MAX:
        raise InvalidArgument(f"amountFen must be 0 to {AMOUNT_MAX}, got {notice.amount_fen}")
    _check_time("paidAt", notice.paid_at, now, limits)
    if notice.is_topup:
        _require_key("payerId (of a top-up)", notice.payer_id)
        if notice.amount_fen <= 0:
            raise InvalidArgument("amountFen of a top-up must be more than 0")
