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
from billingcenter.hessian import HessianObject
from billingcenter.model import AccountNumChange, Order, Receipt, StateEvent, StateKind, Usage

PACKAGE = "org.billingcenter.api."
SERVICE_OP = PACKAGE + "ServiceOp"
ORDER = PACKAGE + "Order"
ORDER_STATE_CHANGE = PACKAGE + "OrderStateChange"
PRICE_REQUEST = PACKAGE + "PriceRequest"
PAY_NOTICE = PACKAGE + "PayNotice"
RECEIPT = PACKAGE + "Receipt"
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

