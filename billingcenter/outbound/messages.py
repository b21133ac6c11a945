"""Outbox payloads as the Java DTOs of ``interfaces/`` (``AccountService``,
``BusinessService``).

A payload is the DTO's fields as JSON (``billingcenter.ledger.outbox``): ``long`` fields
go out as Hessian longs, ``java.util.Date`` fields (epoch milliseconds in the payload)
as Hessian dates, everything else as strings.  Fields are written in the order Caucho's
``JavaSerializer`` writes a POJO: primitives first, then ``java.lang`` types, then the
rest, each group in declaration order.  A payload field the DTO does not have is left
out; a missing one goes out as null (0 for a ``long``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs

from billingcenter.hessian import HessianObject, Long
from billingcenter.ledger.outbox import CHARGE_ACCOUNT, FEEDBACK_USER

PACKAGE = "org.billingcenter.api."
LONG, DATE, STRING = "long", "Date", "String"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@attrs.frozen
class Dto:
    """A Java DTO class: its name and its fields (name, Java type) in wire order."""

    java_type: str
    fields: tuple[tuple[str, str], ...]


DEDUCTION_REQUEST = Dto(PACKAGE + "DeductionRequest", (
    ("billId", LONG), ("amountFen", LONG),
    ("deductionId", STRING), ("payerId", STRING), ("billDate", STRING),
    ("firstDay", STRING), ("lastDay", STRING),
    ("createdAt", DATE),
))
SERVICE_NOTICE = Dto(PACKAGE + "ServiceNotice", (
    ("noticeId", STRING), ("payerId", STRING), ("orderId", STRING),
    ("productCode", STRING), ("action", STRING), ("reason", STRING),
    ("at", DATE),
))
# outbox method -> the DTO its one argument is
ARGUMENTS: Mapping[str, Dto] = {CHARGE_ACCOUNT: DEDUCTION_REQUEST, FEEDBACK_USER: SERVICE_NOTICE}


class BadMessage(ValueError):
    """An outbox message that cannot become a call (unknown method, wrong field type)."""


def call_arguments(method: str, payload: Mapping[str, Any]) -> list[Any]:
    """The Hessian arguments of an outbox message's call."""
    dto = ARGUMENTS.get(method)
    if dto is None:
        raise BadMessage(f"no outbound method {method!r} (known: {', '.join(sorted(ARGUMENTS))})")
    return [HessianObject(dto.java_type, {
        name: _field(name, kind, payload.get(name)) for name, kind in dto.fields
    })]


def _field(name: str, kind: str, value: Any) -> Any:
    if kind == LONG:
        if value is None:
            return Long(0)
        if isinstance(value, bool) or not isinstance(value, int):
            raise BadMessage(f"{name} must be an integer, got {value!r}")
        return Long(value)
    if value is None:
        return None
    if kind == DATE:
        if isinstance(value, bool) or not isinstance(value, int):
            raise BadMessage(f"{name} must be epoch milliseconds, got {value!r}")
        return EPOCH + timedelta(milliseconds=value)
    if not isinstance(value, str):
        raise BadMessage(f"{name} must be a string, got {value!r}")
    return value
