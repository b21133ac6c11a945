"""Service control: stopping a payer's orders when it owes, reopening them when it does not.

``review`` looks at locked payers (inside the caller's transaction) and applies the
rules:

* **STOP, reason ARREARS**: the payer is ``OPEN``, has bills in ``ARREARS`` and
  ``arrears_since + grace <= now``.
* **STOP, reason LOW_BALANCE**: the payer is ``OPEN``, ``PREPAID``, and its balance is at
  or below ``threshold_fen`` or a charge is left unpaid (it did not fit above the floor).
* **REOPEN, reason SETTLED**: the payer is ``STOPPED``, has no bill in ``ARREARS`` and,
  if prepaid, its balance is above the threshold and no charge is left unpaid.

A STOP sets ``service_state = STOPPED`` and, for each order of the payer that is not
``CANCELLED`` or ``EXPIRED`` and whose product is in ``ServicePolicy.products`` (empty:
every product), appends a ``service_event`` row and queues a ``feedbackUser`` call in the
outbox (noticeId ``SE-<service_event id>``, ordering key ``order:<order id>``).  A REOPEN
sets ``OPEN`` and does the same, with action ``REOPEN``, for the orders the last STOP
stopped (those still not cancelled or expired).  The order mirror's own state does not
change: charging goes on unless the business system reports a pause.
``arrears_since`` is set when a payer first has a bill in arrears and cleared when none
is left.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

import attrs
from sqlalchemy import func, insert, select
from sqlalchemy.engine import Connection

from billingcenter.ledger import coverage
from billingcenter.ledger.accounts import Payer, save_payer
from billingcenter.ledger.outbox import (
    FEEDBACK_USER,
    OutboxMessage,
    business_target,
    enqueue,
    epoch_ms,
)
from billingcenter.ledger.schema import order_mirror
from billingcenter.ledger.schema_billing import (
    ARREARS,
    OPEN,
    PREPAID,
    REOPEN,
    STOP,
    STOPPED,
    bill,
    payer_account,
    service_event,
)
from billingcenter.ledger.schema_rating import charge
from billingcenter.model import OrderStatus

REASON_ARREARS, REASON_LOW_BALANCE, REASON_SETTLED = "ARREARS", "LOW_BALANCE", "SETTLED"
_ENDED = (OrderStatus.CANCELLED.value, OrderStatus.EXPIRED.value)


@attrs.frozen
class ServicePolicy:
    """``[arrears]``: how long after a failed deduction service stops, and which orders."""

    grace: timedelta = timedelta(0)
    products: frozenset[str] = frozenset()  # empty: every product


@attrs.frozen
class Standing:
    """What a payer owes, as far as service control cares."""

    in_arrears: bool = False  # a bill in ARREARS
    unpaid: bool = False  # a prepaid charge left unpaid


@attrs.frozen
class Change:
    """One STOP or REOPEN of a payer, and how many orders it concerned."""

    payer_id: str
    action: str
    reason: str
    orders: int


def standings(conn: Connection, payers: Mapping[str, Payer]) -> dict[str, Standing]:
    """The standing of each payer, in two indexed queries."""
    ids = sorted(payers)
    if not ids:
        return {}
    owing = set(conn.execute(select(bill.c.payer_id).distinct()
                             .where(bill.c.status == ARREARS, bill.c.payer_id.in_(ids))).scalars())
    prepaid = [p for p in ids if payers[p].kind == PREPAID]
    unpaid: set[str] = set()
    if prepaid:
        unpaid = set(conn.execute(
            select(charge.c.payer_id).distinct()
            .select_from(charge.join(payer_account,
                                     payer_account.c.payer_id == charge.c.payer_id))
            .where(charge.c.payer_id.in_(prepaid), coverage.waiting())
        ).scalars())
    return {p: Standing(p in owing, p in unpaid) for p in ids}


def decide(payer: Payer, standing: Standing, policy: ServicePolicy, now: datetime
           ) -> tuple[str, str] | None:
    """The action and reason the rules call for (see the module doc), or None."""
    prepaid = payer.kind == PREPAID
    low = prepaid and (standing.unpaid or payer.balance_fen <= payer.threshold_fen)
    if payer.service_state == OPEN:
        since = payer.arrears_since
        if standing.in_arrears and since is not None and since + policy.grace <= now:
            return STOP, REASON_ARREARS
        if low:
            return STOP, REASON_LOW_BALANCE
        return None
    if not standing.in_arrears and not low:
        return REOPEN, REASON_SETTLED
    return None


def review(conn: Connection, payers: Mapping[str, Payer], policy: ServicePolicy,
           now: datetime) -> tuple[dict[str, Payer], list[Change]]:
    """Apply the rules to locked payers; their rows as saved and the changes made."""
    facts = standings(conn, payers)
    after: dict[str, Payer] = {}
    changes: list[Change] = []
    for payer_id in sorted(payers):
        before = payers[payer_id]
        standing = facts[payer_id]
        payer = _arrears_since(before, standing, now)
        action = decide(payer, standing, policy, now)
        if action is not None:
            payer, change = _apply(conn, payer, action, policy, now)
            changes.append(change)
        save_payer(conn, before, payer, now)
        after[payer_id] = payer
    return after, changes


def _arrears_since(payer: Payer, standing: Standing, now: datetime) -> Payer:
    if standing.in_arrears and payer.arrears_since is None:
        return attrs.evolve(payer, arrears_since=now)
    if not standing.in_arrears and payer.arrears_since is not None:
        return attrs.evolve(payer, arrears_since=None)
    return payer


def _apply(conn: Connection, payer: Payer, action: tuple[str, str], policy: ServicePolicy,
           now: datetime) -> tuple[Payer, Change]:
    verb, reason = action
    if verb == STOP:
        orders = _live_orders(conn, payer.payer_id, policy.products)
        state = STOPPED
    else:
        orders = _last_stopped(conn, payer.payer_id)
        state = OPEN
    _record(conn, payer.payer_id, orders, verb, reason, now)
    changed = attrs.evolve(payer, service_state=state, state_changed_at=now)
    return changed, Change(payer.payer_id, verb, reason, len(orders))


def _live_orders(conn: Connection, payer_id: str, products: frozenset[str]
                 ) -> list[tuple[str, str]]:
    """(order, product) of the payer's orders that are not cancelled or expired."""
    query = (select(order_mirror.c.order_id, order_mirror.c.product_code)
             .where(order_mirror.c.payer_id == payer_id, order_mirror.c.status.not_in(_ENDED))
             .order_by(order_mirror.c.order_id))
    if products:
        query = query.where(order_mirror.c.product_code.in_(sorted(products)))
    return [(o, p) for o, p in conn.execute(query)]


def _last_stopped(conn: Connection, payer_id: str) -> list[tuple[str, str]]:
    """(order, product) stopped by the payer's last STOP and still live."""
    e = service_event.c
    last_reopen = conn.execute(select(func.coalesce(func.max(e.id), 0))
                               .where(e.payer_id == payer_id, e.action == REOPEN)).scalar_one()
    stopped = conn.execute(
        select(e.order_id, e.product_code)
        .select_from(service_event.join(order_mirror, order_mirror.c.order_id == e.order_id))
        .where(e.payer_id == payer_id, e.action == STOP, e.id > last_reopen,
               order_mirror.c.status.not_in(_ENDED))
        .order_by(e.id)
    ).all()
    return list(dict.fromkeys((o, p) for o, p in stopped))


def _record(conn: Connection, payer_id: str, orders: Sequence[tuple[str, str]], action: str,
            reason: str, now: datetime) -> None:
    """The service events of one STOP or REOPEN and their feedbackUser notices."""
    messages = []
    for order_id, product in orders:
        key = conn.execute(insert(service_event).values(
            payer_id=payer_id, order_id=order_id, product_code=product, action=action,
            reason=reason, at=now)).inserted_primary_key
        assert key is not None
        event_id = key[0]
        notice = {"noticeId": f"SE-{event_id}", "payerId": payer_id, "orderId": order_id,
                  "productCode": product, "action": action, "reason": reason,
                  "at": epoch_ms(now)}
        messages.append(OutboxMessage(f"SE-{event_id}", business_target(product), FEEDBACK_USER,
                                      notice, ordering_key=f"order:{order_id}"))
    enqueue(conn, messages, now)
