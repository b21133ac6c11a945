"""The method table: each Hessian method, its Caucho names, and its DTO mapping.

A method is found by its plain name, by ``name__N`` (what Caucho's proxy sends with
``setOverloadEnabled(true)``) or by Caucho's mangled name (``name_string_int_string``),
exactly the names ``HessianSkeleton`` registers for a Java interface.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from billingcenter.api import dto
from billingcenter.errors import InvalidArgument


@attrs.frozen
class Method:
    """One method of ``BillingService`` and how to call the service for it."""

    name: str
    params: tuple[str, ...]  # Caucho's mangled parameter types, e.g. "ServiceOp", "int"
    invoke: Callable[[Any, tuple[Any, ...]], Any]  # (service, args) -> Deferred of model
    render: Callable[[Any], Any] = lambda value: value  # model -> wire value

    @property
    def names(self) -> tuple[str, ...]:
        """Every name a Caucho client may use for this method."""
        mangled = "_".join((self.name, *self.params))
        return (self.name, f"{self.name}__{len(self.params)}", mangled)


def _dto_call(
    method: str, key_field: str, convert: Callable[[Any], Any], operation: str
) -> Callable[[Any, tuple[Any, ...]], Any]:
    def invoke(service: Any, args: tuple[Any, ...]) -> Any:
        (value,) = args
        try:
            model = convert(value)
        except InvalidArgument as error:
            return service.refuse(method, dto.key_of(value, key_field), value, error)
        return getattr(service, operation)(model)

    return invoke


def _change_account_num(service: Any, args: tuple[Any, ...]) -> Any:
    mm_id, count, product_code = args
    try:
        change = dto.to_account_change(mm_id, count, product_code, service.clock())
    except InvalidArgument as error:
        key = f"{mm_id}/{product_code}" if isinstance(mm_id, str) else ""
        return service.refuse("changeAccountNum", key, list(args), error)
    return service.change_account_num(change)


def _get_total_price(service: Any, args: tuple[Any, ...]) -> Any:
    (value,) = args
    return service.get_total_price(dto.to_quote_request(value, service.clock()))


METHODS: tuple[Method, ...] = (
    Method(
        "insertServiceOp", ("ServiceOp",),
        _dto_call("insertServiceOp", "opId", dto.to_usage, "insert_service_op"),
        dto.from_receipt,
    ),
    Method(
        "installOrder", ("Order",),
        _dto_call("installOrder", "orderId", dto.to_order, "install_order"),
        dto.from_receipt,
    ),
    Method(
        "updateOrderState", ("OrderStateChange",),
        _dto_call("updateOrderState", "eventId", dto.to_state_event, "update_order_state"),
        dto.from_receipt,
    ),
    Method("getTotalPrice", ("PriceRequest",), _get_total_price, dto.from_quote),
    Method(
        "payCallback", ("PayNotice",),
        _dto_call("payCallback", "serial", dto.to_pay_notice, "pay_callback"),
        dto.from_receipt,
    ),
    Method("changeAccountNum", ("string", "int", "string"), _change_account_num),
)


def method_table(methods: tuple[Method, ...] = METHODS) -> dict[str, Method]:
    """Every accepted name mapped to its method."""
    return {name: method for method in methods for name in method.names}
