"""Domain values of the ledger's intake: frozen attrs classes, validated on build.

Times are timezone-aware UTC ``datetime``; the business day is derived elsewhere
from the configured business time zone.  Nothing here reads the clock.
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import attrs


class StateKind(enum.Enum):
    """The kinds of order state change the order system reports."""

    ACTIVE = "ACTIVE"
    PAUSED = "PAUSED"
    RESUMED = "RESUMED"
    CANCELLED = "CANCELLED"
    EXPIRED = "EXPIRED"

    @property
    def resulting_status(self) -> OrderStatus:
        """The order status after an event of this kind."""
        return _RESULT[self]


class OrderStatus(enum.Enum):
    """Where an order stands after its latest state event."""

    ACTIVE = "ACTIVE"
    PAUSED = "PAUSED"
    CANCELLED = "CANCELLED"
    EXPIRED = "EXPIRED"


_RESULT = {
    StateKind.ACTIVE: OrderStatus.ACTIVE,
    StateKind.PAUSED: OrderStatus.PAUSED,
    StateKind.RESUMED: OrderStatus.ACTIVE,
    StateKind.CANCELLED: OrderStatus.CANCELLED,
    StateKind.EXPIRED: OrderStatus.EXPIRED,
}


def _utc(value: datetime) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise TypeError(f"expected an aware datetime, got {value!r}")
    return value.astimezone(UTC)


def _frozen_plans(value: Iterable[str]) -> frozenset[str]:
    return frozenset(value)


def _frozen_attributes(value: Any) -> tuple[tuple[str, str], ...]:
    if isinstance(value, dict):
        value = value.items()
    return tuple(sorted((str(k), str(v)) for k, v in value))


def content_digest(*parts: Any) -> str:
    """A stable digest of a record's content, used to tell a repeat from a conflict."""
    text = json.dumps([_jsonable(p) for p in parts], separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    return value


@attrs.frozen
class Product:
    """A product in the catalogue, with the plans it may be ordered on."""

    code: str
    name: str
    plans: frozenset[str] = attrs.field(converter=_frozen_plans, factory=frozenset)


@attrs.frozen
class Order:
    """The billing mirror of one order line."""

    order_id: str
    payer_id: str
    user_id: str
    product_code: str
    plan_code: str
    activated_at: datetime = attrs.field(converter=_utc)
    account_num: int = 0

    def digest(self) -> str:
        """Digest of the caller-supplied content."""
        return content_digest(*attrs.astuple(self, recurse=False))


@attrs.frozen
class StateEvent:
    """One state change of an order, kept forever."""

    event_id: str
    order_id: str
    kind: StateKind
    changed_at: datetime = attrs.field(converter=_utc)

    def digest(self) -> str:
        """Digest of the caller-supplied content."""
        return content_digest(self.event_id, self.order_id, self.kind, self.changed_at)


@attrs.frozen
class Usage:
    """One per-use consumption record (``insertServiceOp``)."""

    op_id: str
    order_id: str
    product_code: str
    item_code: str
    user_id: str
    payer_id: str  # as the caller sent it; empty means "the order's payer"
    quantity: int
    occurred_at: datetime = attrs.field(converter=_utc)
    attributes: tuple[tuple[str, str], ...] = attrs.field(
        converter=_frozen_attributes, factory=tuple
    )

    def digest(self) -> str:
        """Digest of the caller-supplied content."""
        return content_digest(*attrs.astuple(self, recurse=False))


@attrs.frozen
class AccountNumChange:
    """A product line set the number of authorized accounts of a payer's product."""

    payer_id: str
    product_code: str
    count: int
    changed_at: datetime = attrs.field(converter=_utc)


@attrs.frozen
class Receipt:
    """What an accepted intake call answers; a repeat answers the same receipt."""

    key: str
    status: str
    recorded_at: datetime = attrs.field(converter=_utc)


@attrs.frozen
class ErrorRecord:
    """A rejected inbound record, kept with its reason for correction and recycling."""

    method: str
    key: str
    code: str
    reason: str
    payload: str
    received_at: datetime = attrs.field(converter=_utc)


@attrs.frozen
class PayNotice:
    """A ``payCallback``: a deduction's outcome (``deduction_id`` set) or a top-up."""

    serial: str
    deduction_id: str
    payer_id: str
    amount_fen: int
    status: str  # SUCCESS, FAILED, INSUFFICIENT_FUNDS
    paid_at: datetime = attrs.field(converter=_utc)

    @property
    def is_topup(self) -> bool:
        """A top-up names no deduction."""
        return not self.deduction_id

    def digest(self) -> str:
        """Digest of the caller-supplied content."""
        return content_digest(*attrs.astuple(self, recurse=False))
