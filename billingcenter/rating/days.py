"""Business days and an order's activity: when it was active and with how many accounts.

A business day is a calendar day in the configured business time zone; its bounds are
the UTC instants of its local midnights, ``[start, end)``.

An order is active from ``order.activated_at``.  Its state events apply in the order
of ``(changed_at, event_id)`` -- never in arrival order, so the result cannot depend
on it: PAUSED ends activity, RESUMED (or ACTIVE) starts it again, CANCELLED and EXPIRED
end it for good, and every event after them is ignored (a cancelled order never comes
back; the customer orders anew, which is a new order).  An event dated before the
activation counts as happening at the activation.  Intervals of zero length are
dropped: they are no activity at all.

An order is *active on a day* when one of its active intervals overlaps the day for a
positive length of time, however short; any number of pauses and resumptions in the
day still make one active day.

The *accounts* of an order at an instant are those of its latest account-count change
at or before it, changes before the order's activation ignored (they belong to earlier
orders of the same payer and product), else ``order.account_num``.  The *max accounts
on a day* are the most it had during the part of the day the order existed (from its
activation to its cancellation or expiry; pauses do not matter): the count carried in
at the start of that part and every change inside it.  Simultaneous changes with
different counts count as the larger one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from billingcenter.model import Order, StateEvent, StateKind
from billingcenter.rating.model import AccountCount, OrderHistory

Interval = tuple[datetime, datetime | None]

_ACTIVE, _RESUMED = StateKind.ACTIVE, StateKind.RESUMED
_CANCELLED, _EXPIRED = StateKind.CANCELLED, StateKind.EXPIRED
_ONE_DAY = timedelta(days=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# the last business day found, with its bounds: (tz, start, end, day); a memo, no state
_last_day: tuple[ZoneInfo | None, datetime, datetime, date] = (None, _EPOCH, _EPOCH, date.min)


def business_day(moment: datetime, tz: ZoneInfo) -> date:
    """The business day ``moment`` (an aware datetime) falls on in ``tz``."""
    if moment.tzinfo is None:
        raise ValueError(f"expected an aware datetime, got {moment!r}")
    global _last_day
    last_tz, start, end, day = _last_day
    if last_tz is tz and start <= moment < end:  # records come in runs of one day
        return day
    day = moment.astimezone(tz).date()
    _last_day = (tz, *day_bounds(day, tz), day)
    return day


@lru_cache(maxsize=4096)
def day_bounds(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The UTC instants ``[start, end)`` of business day ``day`` in ``tz``."""
    start = datetime.combine(day, time(), tzinfo=tz).astimezone(UTC)
    end = datetime.combine(day + _ONE_DAY, time(), tzinfo=tz).astimezone(UTC)
    return start, end


def active_intervals(history: OrderHistory) -> tuple[Interval, ...]:
    """The order's active intervals ``[start, end)`` in time order; end None = still active."""
    return timeline(history.order, history.events)[0]


def active_on(history: OrderHistory, day: date, tz: ZoneInfo) -> bool:
    """Whether the order was active at any moment of business day ``day``."""
    start, end = day_bounds(day, tz)
    return overlaps(active_intervals(history), start, end)


def max_accounts_on(history: OrderHistory, day: date, tz: ZoneInfo) -> int:
    """The most accounts the order had during business day ``day`` (0 if it did not exist)."""
    start, end = day_bounds(day, tz)
    ended = timeline(history.order, history.events)[1]
    return max_accounts(history.order, history.accounts, start, end, ended)


def timeline(
    order: Order, events: Sequence[StateEvent]
) -> tuple[tuple[Interval, ...], datetime | None]:
    """(active intervals, when the order ended for good or None) from its events."""
    activated = order.activated_at
    if not events:
        return ((activated, None),), None
    intervals: list[Interval] = []
    since: datetime | None = activated  # active since, None while inactive
    for event in sorted(events, key=_event_order):
        at = event.changed_at if event.changed_at > activated else activated
        kind = event.kind  # compared by identity: hashing an Enum is slow
        if kind is _RESUMED or kind is _ACTIVE:
            if since is None:
                since = at
        elif since is not None:  # PAUSED, CANCELLED or EXPIRED of an active order
            if at > since:
                intervals.append((since, at))
            since = None
        if kind is _CANCELLED or kind is _EXPIRED:
            return tuple(intervals), at
    if since is not None:
        intervals.append((since, None))
    return tuple(intervals), None


def overlaps(intervals: Sequence[Interval], start: datetime, end: datetime) -> bool:
    """Whether an interval overlaps ``[start, end)`` for a positive length of time."""
    for since, until in intervals:
        if since < end and (until is None or until > start):
            return True
    return False


def max_accounts(
    order: Order,
    accounts: Sequence[AccountCount],
    start: datetime,
    end: datetime,
    ended: datetime | None,
) -> int:
    """The most accounts during ``[start, end)`` clipped to the order's life (0 outside)."""
    carried, most = accounts_during(order, accounts, start, end, ended)
    return carried if carried >= most else most


def accounts_during(
    order: Order,
    accounts: Sequence[AccountCount],
    start: datetime,
    end: datetime,
    ended: datetime | None,
) -> tuple[int, int]:
    """(accounts carried in, most set by a change inside or -1) for ``[start, end)``.

    The span is clipped to the order's life; (0, -1) when nothing of it is left.
    """
    activated = order.activated_at
    low = start if start > activated else activated
    high = end if ended is None or ended > end else ended
    if low >= high:
        return 0, -1
    carried_at: datetime | None = None
    carried = order.account_num
    most = -1
    for change in accounts:
        at = change.changed_at
        if at < activated:
            continue
        if at <= low:
            if carried_at is None or at > carried_at or (
                at == carried_at and change.count > carried
            ):
                carried_at, carried = at, change.count
        elif at < high and change.count > most:
            most = change.count
    return carried, most


def _event_order(event: StateEvent) -> tuple[datetime, str]:
    return event.changed_at, event.event_id
