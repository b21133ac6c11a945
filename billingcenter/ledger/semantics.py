"""The rules both ledgers share, kept pure so SQL and memory cannot drift apart.

Receipts and repeats (same key: same content answers the first receipt, other
content is a conflict), the latest-event rule for an order's status, and the
clipping of refused records before they are kept, the catalogue merge.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import attrs

from billingcenter.errors import DuplicateConflict, InvalidArgument, UnknownOrder
from billingcenter.intake import TEXT_MAX
from billingcenter.ledger.schema import ERROR_KEY_MAX, PRODUCT_NAME_MAX
from billingcenter.model import ErrorRecord, Product, Receipt

ACCEPTED = "ACCEPTED"


def accepted(key: str, now: datetime) -> Receipt:
    """The receipt of a record stored now."""
    return Receipt(key=key, status=ACCEPTED, recorded_at=now)


def repeat(label: str, key: str, stored_digest: str, digest: str, recorded_at: datetime) -> Receipt:
    """Answer a repeat of ``key``: the first receipt, or ``DuplicateConflict``."""
    if stored_digest != digest:
        raise DuplicateConflict(f"{label} {key!r} was already recorded with other content")
    return accepted(key, recorded_at)


def supersedes(
    changed_at: datetime,
    event_id: str,
    current_changed_at: datetime | None,
    current_event_id: str | None,
) -> bool:
    """Whether an event decides the order's status over the one that set it so far.

    The latest ``changed_at`` wins and ties go to the greater ``event_id``, so
    the status does not depend on the order in which events arrive.
    """
    if current_changed_at is None or current_event_id is None:
        return True
    return (changed_at, event_id) > (current_changed_at, current_event_id)


def clip_error(record: ErrorRecord) -> ErrorRecord:
    """The record as it is kept: a key longer than the column is cut, not refused."""
    if len(record.key) <= ERROR_KEY_MAX:
        return record
    return attrs.evolve(record, key=record.key[:ERROR_KEY_MAX])


def merge_products(products: Iterable[Product]) -> dict[str, Product]:
    """The catalogue to sync, one entry per code: last name wins, plans are united."""
    merged: dict[str, Product] = {}
    for item in products:
        _check_product(item)
        known = merged.get(item.code)
        plans = item.plans | known.plans if known else item.plans
        merged[item.code] = Product(code=item.code, name=item.name, plans=plans)
    return merged


def _check_product(item: Product) -> None:
    if not item.code or len(item.code) > TEXT_MAX:
        raise InvalidArgument(f"product code {item.code!r} is empty or too long")
    if len(item.name) > PRODUCT_NAME_MAX:
        raise InvalidArgument(f"name of product {item.code!r} is over {PRODUCT_NAME_MAX}")
    for plan in item.plans:
        if not plan or len(plan) > TEXT_MAX:
            raise InvalidArgument(f"plan {plan!r} of product {item.code!r} is empty or too long")


def no_order_of(payer_id: str, product_code: str) -> UnknownOrder:
    """The refusal of an account change for a (payer, product) without an order."""
    return UnknownOrder(f"payer {payer_id!r} has no order of product {product_code!r}")
