"""The outbox: outbound calls written in the transaction of the change that needs them.

``enqueue`` runs inside the caller's transaction (a bill run's chunk, a payment, a
service stop) and never commits, so the call exists exactly when the change does.  A
message's ``message_key`` is its idempotency key (the ``deductionId`` of a
``chargeAccount``, the ``noticeId`` of a ``feedbackUser``); enqueueing a key that is
already there is a no-op, so a rerun of the same change never queues a call twice.

Targets: ``ACCOUNT`` (the account system, ``[account_system]``) or
``business_target(product_code)`` (``[feedback]`` / ``[feedback:PRODUCT]``).
The payload is the call's DTO as a JSON object with the Java field names; instants
are integers of epoch milliseconds, business days ``yyyy-mm-dd`` text, fen integers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import attrs
from sqlalchemy import select
from sqlalchemy.engine import Connection

from billingcenter.ledger.schema_billing import PENDING, outbox

ACCOUNT = "account"
CHARGE_ACCOUNT = "chargeAccount"
FEEDBACK_USER = "feedbackUser"


def business_target(product_code: str) -> str:
    """The target naming the business system of a product."""
    return f"business:{product_code}"


def epoch_ms(moment: datetime) -> int:
    """An aware datetime as whole epoch milliseconds (a java.util.Date's value)."""
    return int(moment.timestamp() * 1000)


@attrs.frozen
class OutboxMessage:
    """One outbound call to make."""

    message_key: str
    target: str
    method: str
    payload: Mapping[str, Any]
    ordering_key: str = ""


def enqueue(conn: Connection, messages: Sequence[OutboxMessage], now: datetime) -> int:
    """Add the messages whose key is new (in the caller's transaction); how many were added."""
    if not messages:
        return 0
    keys = [m.message_key for m in messages]
    stored = set(conn.execute(
        select(outbox.c.message_key).where(outbox.c.message_key.in_(keys))
    ).scalars())
    rows = [
        {
            "message_key": m.message_key, "target": m.target, "method": m.method,
            "ordering_key": m.ordering_key,
            "payload": json.dumps(dict(m.payload), ensure_ascii=False, sort_keys=True,
                                  separators=(",", ":")),
            "status": PENDING, "attempts": 0, "next_attempt_at": now, "lease_owner": None,
            "lease_until": None, "last_error": "", "created_at": now, "delivered_at": None,
        }
        for m in {m.message_key: m for m in messages}.values()
        if m.message_key not in stored
    ]
    if rows:
        conn.execute(outbox.insert(), rows)
    return len(rows)
