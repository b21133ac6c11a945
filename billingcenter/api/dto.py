"""Mapping between the Java DTOs of ``interfaces/`` and the domain model.

Inbound, a DTO arrives as a ``HessianObject`` (Hessian 2 object or Hessian 1 typed
map) or as a plain map; outbound, model values become ``HessianObject`` with the
Java class name and field types (``Long`` for Java ``long``) of ``interfaces/``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from billingcenter.errors import BillingError, InvalidArgument
from billingcenter.hessian import HessianObject, Long
from billingcenter.model import (
    AccountNumChange,
    Order,
    PayNotice,
    Receipt,
    StateEvent,
    StateKind,
    Usage,
)
from billingcenter.rating.model import Quote, QuoteRequest

PACKAGE = "org.billingcenter.api."
SERVICE_OP = PACKAGE + "ServiceOp"
ORDER = PACKAGE + "Order"
ORDER_STATE_CHANGE = PACKAGE + "OrderStateChange"
PRICE_REQUEST = PACKAGE + "PriceRequest"
PAY_NOTICE = PACKAGE + "PayNotice"
RECEIPT = PACKAGE + "Receipt"
PRICE_QUOTE = PACKAGE + "PriceQuote"
PRICE_LINE = PACKAGE + "PriceLine"
BILLING_EXCEPTION = PACKAGE + "BillingException"


class Fields:
    """Typed access to the fields of one inbound DTO; wrong types are INVALID_ARGUMENT."""

    def __init__(self, value: Any, java_type: str) -> None:
        if isinstance(value, HessianObject):
            if value.type not in (java_type, ""):
                raise InvalidArgument(f"expected a {java_type}, got a {value.type}")
            self.values: Mapping[str, Any] = value.fields
        elif isinstance(value, Mapping):
            self.values = value
        else:
            raise InvalidArgument(f"expected a {java_type}, got {_describe(value)}")
        self.java_type = java_type

    def text(self, name: str) -> str:
        """A String field; null reads as empty."""
        value = self.values.get(name)
        if value is None:
            return ""
        if not isinstance(value, str):
            raise InvalidArgument(f"{name} must be a String, got {_describe(value)}")
        return value

    def integer(self, name: str) -> int:
        """An int or long field; null reads as 0 (a Java primitive's default)."""
        value = self.values.get(name)
        if value is None:
            return 0
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidArgument(f"{name} must be an integer, got {_describe(value)}")
        return value

    def date(self, name: str) -> datetime:
        """A required java.util.Date field."""
        value = self.values.get(name)
        if value is None:
            raise InvalidArgument(f"{name} is required")
        if not isinstance(value, datetime):
            raise InvalidArgument(f"{name} must be a Date, got {_describe(value)}")
        return value

    def string_map(self, name: str) -> dict[str, str]:
        """A Map<String, String> field; null reads as empty."""
        value = self.values.get(name)
        if value is None:
            return {}
        entries = value.entries if hasattr(value, "entries") else value
        if not isinstance(entries, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in entries.items()
        ):
            raise InvalidArgument(f"{name} must be a Map<String, String>")
        return dict(entries)


def _describe(value: Any) -> str:
    if isinstance(value, HessianObject):
        return f"a {value.type}"
    return "null" if value is None else f"a {type(value).__name__}"


def key_of(value: Any, name: str) -> str:
    """Best-effort caller key of a DTO that could not be read, for the error store."""
    fields = value.fields if isinstance(value, HessianObject) else value
    key = fields.get(name) if isinstance(fields, Mapping) else None
    return key if isinstance(key, str) else ""


def to_order(value: Any) -> Order:
    """An ``Order`` DTO as a model value."""
    f = Fields(value, ORDER)
    return Order(
        order_id=f.text("orderId"),
        payer_id=f.text("payerId"),
        user_id=f.text("userId"),
        product_code=f.text("productCode"),
        plan_code=f.text("planCode"),
        activated_at=f.date("activatedAt"),
        account_num=f.integer("accountNum"),
    )


def to_state_event(value: Any) -> StateEvent:
    """An ``OrderStateChange`` DTO as a model value."""
    f = Fields(value, ORDER_STATE_CHANGE)
    state = f.text("state").strip().upper()
    try:
        kind = StateKind(state)
    except ValueError:
        allowed = ", ".join(k.value for k in StateKind)
        raise InvalidArgument(f"state must be one of {allowed}, got {state!r}") from None
    return StateEvent(
        event_id=f.text("eventId"),
        order_id=f.text("orderId"),
        kind=kind,
        changed_at=f.date("changedAt"),
    )


def to_usage(value: Any) -> Usage:
    """A ``ServiceOp`` DTO as a model value."""
    f = Fields(value, SERVICE_OP)
    return Usage(
        op_id=f.text("opId"),
        order_id=f.text("orderId"),
        product_code=f.text("productCode"),
        item_code=f.text("itemCode"),
        user_id=f.text("userId"),
        payer_id=f.text("payerId"),
        quantity=f.integer("quantity"),
        occurred_at=f.date("occurredAt"),
        attributes=f.string_map("attributes"),
    )


def to_account_change(mm_id: Any, count: Any, product_code: Any, now: datetime) -> AccountNumChange:
    """The arguments of ``changeAccountNum`` as a model value stamped with arrival time."""
    if not isinstance(mm_id, str) or not isinstance(product_code, str):
        raise InvalidArgument("mmId and productCode must be Strings")
    if isinstance(count, bool) or not isinstance(count, int):
        raise InvalidArgument(f"currentNum must be an int, got {_describe(count)}")
    if not -(2**31) <= count < 2**31:
        raise InvalidArgument(f"currentNum {count} does not fit a Java int")
    return AccountNumChange(mm_id, product_code, count, now)


def to_quote_request(value: Any, now: datetime) -> QuoteRequest:
    """A ``PriceRequest`` DTO as a model value; a null ``at`` means now."""
    f = Fields(value, PRICE_REQUEST)
    at = f.values.get("at")
    request = QuoteRequest(
        payer_id=f.text("payerId"),
        product_code=f.text("productCode"),
        plan_code=f.text("planCode"),
        order_id=f.text("orderId"),
        quantity=f.integer("quantity"),
        days=f.integer("days"),
        account_num=f.integer("accountNum"),
        at=now if at is None else f.date("at"),
        attributes=f.string_map("attributes"),
    )
    if not request.product_code:
        raise InvalidArgument("productCode is required")
    if min(request.quantity, request.days, request.account_num) < 0:
        raise InvalidArgument("quantity, days and accountNum must not be negative")
    return request


def to_pay_notice(value: Any) -> PayNotice:
    """A ``PayNotice`` DTO as a model value (the status upper-cased)."""
    f = Fields(value, PAY_NOTICE)
    return PayNotice(
        serial=f.text("serial"),
        deduction_id=f.text("deductionId"),
        payer_id=f.text("payerId"),
        amount_fen=f.integer("amountFen"),
        status=f.text("status").strip().upper(),
        paid_at=f.date("paidAt"),
    )


def from_quote(quote: Quote) -> HessianObject:
    """A ``Quote`` as the Java ``PriceQuote`` (fields in Caucho's order: primitives first)."""
    lines = [
        HessianObject(PRICE_LINE, {
            "units": Long(int(line.units)),
            "amountFen": Long(line.amount_fen),
            "ruleId": line.rule_id,
            "description": line.description,
            "unitPrice": str(line.unit_price),
        })
        for line in quote.lines
    ]
    return HessianObject(PRICE_QUOTE, {
        "totalFen": Long(quote.total_fen),
        "ruleSet": quote.rule_set,
        "ruleSetVersion": quote.rule_set_version,
        "lines": lines,
    })


def from_receipt(receipt: Receipt) -> HessianObject:
    """A ``Receipt`` model value as the Java DTO."""
    return HessianObject(
        RECEIPT,
        {"key": receipt.key, "status": receipt.status, "recordedAt": receipt.recorded_at},
    )


def exception_detail(error: BillingError) -> HessianObject:
    """A domain error as the Java ``BillingException`` a caller catches."""
    return HessianObject(
        BILLING_EXCEPTION, {"detailMessage": error.message, "code": error.code}
    )

