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

Delivery (``billingcenter.outbound.delivery``) works on the table only through the
functions below, each one short transaction, set-based:

* ``lease``: take up to ``limit`` due messages (longest due first) for a while.
  Due: ``PENDING``, ``next_attempt_at <= now``, not leased or the lease expired, its
  target not in ``skip_targets``, and no earlier ``PENDING`` message with the same non-empty
  ``ordering_key``.  The lease writes a token unique to this lease into
  ``lease_owner`` (``<owner>/<n>``) and the expiry into ``lease_until``; MariaDB takes
  the rows ``FOR UPDATE SKIP LOCKED`` so pollers never wait on each other, and the
  UPDATE re-checks the conditions (compare-and-set) on every database.
* ``settle``: record what the calls did, only where ``lease_owner`` is still the
  token (a poller whose lease was taken over changes nothing): delivered -> ``DELIVERED``;
  failed -> ``attempts + 1``, ``last_error``, and ``next_attempt_at`` after an
  exponential backoff, or ``DEAD`` once ``attempts`` reaches ``max_attempts``.
* ``release``: give leased messages back untouched (not attempted).
* ``list_messages``, ``counts``, ``retry`` (``DEAD`` or waiting ``PENDING`` -> due now).
* ``purge``: delete up to ``limit`` ``DELIVERED`` messages delivered before a cutoff
  (``[outbox] keep_delivered`` days ago), one short transaction that locks only the
  rows it deletes; ``purge_all`` repeats it until none is left.  ``PENDING`` and
  ``DEAD`` messages are never purged.

Once a message is purged its key is free again: ``enqueue`` of the same key would
queue the call anew, and the remote would see a repeat of an id it already acted on.
So a caller never relies on the outbox to refuse a key it queued long ago; it enqueues
only from a state change of its own that happens once (a bill written by its run
queues its deduction; a service event, with its new id, its notice).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
from sqlalchemy import exists, func, or_, select, update
from sqlalchemy.engine import Connection, Engine, Row

from billingcenter.ledger import transact
from billingcenter.ledger.schema_billing import DEAD, DELIVERED, PENDING, outbox

ACCOUNT = "account"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
CHARGE_ACCOUNT = "chargeAccount"
FEEDBACK_USER = "feedbackUser"


def business_target(product_code: str) -> str:
    """The target naming the business system of a product."""
    return f"business:{product_code}"


def epoch_ms(moment: datetime) -> int:
    """An aware datetime as whole epoch milliseconds (a java.util.Date's value)."""
    # Integer arithmetic: timestamp() * 1000 in floats can land a millisecond short.
    return (moment - EPOCH) // timedelta(milliseconds=1)


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


# ---------------------------------------------------------------------------- delivery

_lease_numbers = itertools.count(1)
ERROR_MAX = 2000  # characters of last_error kept


@attrs.frozen
class Leased:
    """A message leased for delivery; ``token`` is the lease's ``lease_owner`` value."""

    id: int
    message_key: str
    target: str
    method: str
    ordering_key: str
    payload: Mapping[str, Any]
    attempts: int  # attempts made before this one
    token: str
    lease_until: datetime


@attrs.frozen
class Outcome:
    """What one attempt at a leased message did: ``error`` None means delivered."""

    message: Leased
    error: str | None = None


@attrs.frozen
class Backoff:
    """When a failed message is tried again, and when it is given up (``DEAD``)."""

    max_attempts: int
    initial: float  # seconds before the first retry
    maximum: float  # the longest wait

    def delay(self, attempts: int) -> timedelta:
        """The wait after the ``attempts``-th failed attempt: initial, doubled each time."""
        seconds = self.initial * 2.0 ** min(max(attempts - 1, 0), 62)
        return timedelta(seconds=min(seconds, self.maximum))


@attrs.frozen
class Settled:
    """What ``settle`` changed; ``lost`` outcomes found their lease taken over."""

    delivered: int = 0
    retried: int = 0
    dead: int = 0
    lost: int = 0


@attrs.frozen
class MessageRow:
    """One outbox row as ``outbox list`` shows it."""

    id: int
    message_key: str
    target: str
    method: str
    ordering_key: str
    status: str
    attempts: int
    next_attempt_at: datetime
    lease_owner: str | None
    lease_until: datetime | None
    last_error: str
    created_at: datetime
    delivered_at: datetime | None


def lease(
    engine: Engine, owner: str, now: datetime, lease_for: timedelta, limit: int,
    skip_targets: Collection[str] = (),
) -> list[Leased]:
    """Lease up to ``limit`` due messages for ``owner`` until ``now + lease_for``."""
    token = f"{owner}/{next(_lease_numbers)}"
    until = now + lease_for

    def work(conn: Connection) -> list[Leased]:
        ids = _due_ids(conn, now, limit, skip_targets)
        if ids and _is_mysql(conn):
            ids = list(conn.execute(
                select(outbox.c.id).where(outbox.c.id.in_(ids), *_free(now))
                .order_by(outbox.c.id).with_for_update(skip_locked=True)
            ).scalars())
        if not ids:
            return []
        conn.execute(update(outbox).where(outbox.c.id.in_(ids), *_free(now))
                     .values(lease_owner=token, lease_until=until))
        rows = conn.execute(select(outbox).where(outbox.c.id.in_(ids),
                                                 outbox.c.lease_owner == token)
                            .order_by(outbox.c.id))
        return [_leased(row) for row in rows]

    return transact.write(engine, work)


def _free(now: datetime) -> tuple[Any, ...]:
    """The conditions of a message that may be leased now (re-checked by the UPDATE)."""
    return (outbox.c.status == PENDING, outbox.c.next_attempt_at <= now,
            or_(outbox.c.lease_until.is_(None), outbox.c.lease_until <= now))


def _due_ids(conn: Connection, now: datetime, limit: int, skip: Collection[str]) -> list[int]:
    """Due messages, oldest due first: the order of the (status, next_attempt_at) index,
    so the scan never walks the DELIVERED rows."""
    earlier = outbox.alias("earlier")
    blocked = exists().where(earlier.c.ordering_key == outbox.c.ordering_key,
                             earlier.c.status == PENDING, earlier.c.id < outbox.c.id)
    query = (select(outbox.c.id)
             .where(*_free(now), or_(outbox.c.ordering_key == "", ~blocked))
             .order_by(outbox.c.next_attempt_at, outbox.c.id).limit(limit))
    if skip:
        query = query.where(outbox.c.target.not_in(list(skip)))
    return list(conn.execute(query).scalars())


def _is_mysql(conn: Connection) -> bool:
    return conn.dialect.name in ("mysql", "mariadb")


def _leased(row: Row[Any]) -> Leased:
    return Leased(
        id=row.id, message_key=row.message_key, target=row.target, method=row.method,
        ordering_key=row.ordering_key, payload=json.loads(row.payload), attempts=row.attempts,
        token=row.lease_owner, lease_until=row.lease_until,
    )


def settle(engine: Engine, outcomes: Sequence[Outcome], now: datetime, backoff: Backoff
           ) -> Settled:
    """Record the outcomes of attempts, each only while its lease is still held."""
    if not outcomes:
        return Settled()

    def work(conn: Connection) -> Settled:
        counts = {DELIVERED: 0, PENDING: 0, DEAD: 0}
        for (token, values), ids in _groups(outcomes, now, backoff).items():
            counts[values[0]] += conn.execute(
                update(outbox).where(outbox.c.id.in_(ids), outbox.c.lease_owner == token,
                                     outbox.c.status == PENDING)
                .values(_values(values, now))
            ).rowcount
        changed = sum(counts.values())
        return Settled(counts[DELIVERED], counts[PENDING], counts[DEAD], len(outcomes) - changed)

    return transact.write(engine, work)


# (status, attempts, next_attempt_at, last_error): what an outcome writes
_Change = tuple[str, int, datetime | None, str]


def _groups(outcomes: Sequence[Outcome], now: datetime, backoff: Backoff
            ) -> dict[tuple[str, _Change], list[int]]:
    """Outcomes that write the same values under one lease, so one UPDATE does each group
    (the whole batch when a remote is down: same attempts, same error)."""
    groups: dict[tuple[str, _Change], list[int]] = {}
    for outcome in outcomes:
        message = outcome.message
        attempts = message.attempts + 1
        change: _Change
        if outcome.error is None:
            change = (DELIVERED, attempts, None, "")
        elif attempts >= backoff.max_attempts:
            change = (DEAD, attempts, None, outcome.error[:ERROR_MAX])
        else:
            change = (PENDING, attempts, now + backoff.delay(attempts), outcome.error[:ERROR_MAX])
        groups.setdefault((message.token, change), []).append(message.id)
    return groups


def _values(change: _Change, now: datetime) -> dict[str, Any]:
    status, attempts, next_at, error = change
    values: dict[str, Any] = {"status": status, "attempts": attempts, "last_error": error,
                              "lease_until": None}
    if status == DELIVERED:
        values["delivered_at"] = now
    if next_at is not None:
        values["next_attempt_at"] = next_at
    return values


def release(engine: Engine, messages: Sequence[Leased]) -> int:
    """Give leased messages back untouched (not attempted); how many were still held."""
    if not messages:
        return 0

    def work(conn: Connection) -> int:
        released = 0
        for token, ids in _by_token(messages).items():
            released += conn.execute(
                update(outbox).where(outbox.c.id.in_(ids), outbox.c.lease_owner == token,
                                     outbox.c.status == PENDING)
                .values(lease_owner=None, lease_until=None)
            ).rowcount
        return released

    return transact.write(engine, work)


def _by_token(messages: Sequence[Leased]) -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    for message in messages:
        found.setdefault(message.token, []).append(message.id)
    return found


# ---------------------------------------------------------------------------- ops


def list_messages(engine: Engine, status: str | None = None, limit: int = 50,
                  ids: Sequence[int] = ()) -> list[MessageRow]:
    """Messages, newest first, optionally of one status or with the given ids."""
    fields = [getattr(outbox.c, f.name) for f in attrs.fields(MessageRow)]
    query = select(*fields).order_by(outbox.c.id.desc()).limit(limit)
    if status is not None:
        query = query.where(outbox.c.status == status)
    if ids:
        query = query.where(outbox.c.id.in_(list(ids)))
    return transact.read(engine, lambda conn: [
        MessageRow(**row._asdict()) for row in conn.execute(query)
    ])


def counts(engine: Engine, now: datetime) -> dict[str, int]:
    """Messages per status, plus ``DUE``: pending ones due now."""
    def work(conn: Connection) -> dict[str, int]:
        found = {PENDING: 0, DELIVERED: 0, DEAD: 0}
        found.update({status: n for status, n in conn.execute(
            select(outbox.c.status, func.count()).group_by(outbox.c.status))})
        found["DUE"] = conn.execute(select(func.count()).where(
            outbox.c.status == PENDING, outbox.c.next_attempt_at <= now)).scalar_one()
        return found

    return transact.read(engine, work)


def retry(engine: Engine, now: datetime, ids: Sequence[int] = (), dead: bool = False) -> int:
    """Make messages due now: the given ids (``DEAD`` or waiting ``PENDING``) and, with
    ``dead``, every ``DEAD`` one.  A dead message starts again with no attempts."""
    def work(conn: Connection) -> int:
        revive = update(outbox).where(outbox.c.status == DEAD).values(
            status=PENDING, attempts=0, next_attempt_at=now, lease_owner=None,
            lease_until=None)
        changed = conn.execute(revive).rowcount if dead else 0
        if ids:
            chosen = outbox.c.id.in_(list(ids))
            changed += conn.execute(revive.where(chosen)).rowcount
            changed += conn.execute(update(outbox).where(
                chosen, outbox.c.status == PENDING, outbox.c.next_attempt_at > now
            ).values(next_attempt_at=now)).rowcount
        return changed

    return transact.write(engine, work)


PURGE_BATCH = 500  # rows deleted per purge transaction


def purge(engine: Engine, before: datetime, limit: int = PURGE_BATCH) -> int:
    """Delete up to ``limit`` messages delivered before ``before`` (one short transaction);
    how many went."""
    def work(conn: Connection) -> int:
        # A plain read finds them (no locks); the DELETE names their ids and re-checks,
        # so it locks those rows only.  Delivered rows were due before they were
        # delivered: the (status, next_attempt_at) index finds them without a scan.
        ids = list(conn.execute(
            select(outbox.c.id).where(*_purgeable(before))
            .order_by(outbox.c.next_attempt_at, outbox.c.id).limit(limit)
        ).scalars())
        if not ids:
            return 0
        return int(conn.execute(
            outbox.delete().where(outbox.c.id.in_(ids), *_purgeable(before))
        ).rowcount)

    return transact.write(engine, work)


def purge_all(engine: Engine, before: datetime, limit: int = PURGE_BATCH) -> int:
    """``purge`` batch after batch until a batch finds fewer than ``limit``; how many went."""
    purged = 0
    while True:
        found = purge(engine, before, limit)
        purged += found
        if found < limit:
            return purged


def _purgeable(before: datetime) -> tuple[Any, ...]:
    return (outbox.c.status == DELIVERED, outbox.c.next_attempt_at < before,
            outbox.c.delivered_at < before)
