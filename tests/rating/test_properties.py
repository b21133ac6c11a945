"""Properties of daily and per-use rating, checked over generated histories (hypothesis)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from billingcenter.model import Order, StateEvent, StateKind
from billingcenter.rating.daily import rate_day
from billingcenter.rating.days import active_intervals, day_bounds
from billingcenter.rating.model import AccountCount, OrderHistory, UsageFacts
from billingcenter.rating.usage import rate_usage, units_of
from tests.rating.builders import TZ, rules

RULES = rules("""
[[rule]]
id = "daily"
mode = "daily"
unit_price = "3.00"
trial_days = 2
[rule.when]
plan_code = "DAILY"

[[rule]]
id = "accounts"
mode = "daily_accounts"
unit_price = "0.333"
[rule.when]
plan_code = "ACC"

[[rule]]
id = "sms"
mode = "per_use"
tiers = [{ upto = "10", price = "0.05" }, { price = "0.045" }]
trial_uses = 15
""")

FIRST = date(2026, 11, 1)
DAYS = [FIRST + timedelta(days=i) for i in range(8)]
EPOCH = datetime(2026, 10, 31, 16, 0, tzinfo=UTC)  # 2026-11-01 00:00 in Shanghai
# minutes on a 15-minute grid, many falling exactly on midnights
MOMENTS = st.integers(0, 8 * 96).map(lambda q: EPOCH + timedelta(minutes=15 * q))


@st.composite
def histories(draw: st.DrawFn) -> OrderHistory:
    activated = draw(MOMENTS)
    order = Order("o1", "boss", "u", "P", draw(st.sampled_from(["DAILY", "ACC"])), activated,
                  draw(st.integers(0, 20)))
    kinds = st.sampled_from(list(StateKind))
    events = draw(st.lists(st.builds(lambda i, k, m: (i, k, m), st.integers(0, 10**6), kinds,
                                     MOMENTS), max_size=8, unique_by=lambda e: e[0]))
    accounts = draw(st.lists(st.builds(AccountCount, MOMENTS, st.integers(0, 50)), max_size=6))
    return OrderHistory(order, tuple(StateEvent(f"e{i}", "o1", k, m) for i, k, m in events),
                        tuple(accounts))


def charges(history: OrderHistory) -> list:
    return [rate_day(history, day, TZ, RULES) for day in DAYS]


def active_seconds(history: OrderHistory, day: date) -> float:
    start, end = day_bounds(day, TZ)
    total = timedelta()
    for since, until in active_intervals(history):
        low, high = max(since, start), min(until or end, end)
        if high > low:
            total += high - low
    return total.total_seconds()


def active_at(history: OrderHistory, moment: datetime) -> bool:
    """An independent oracle: the order's state at ``moment``, replaying its events."""
    if moment < history.order.activated_at:
        return False
    active = True
    for event in sorted(history.events, key=lambda e: (e.changed_at, e.event_id)):
        if max(event.changed_at, history.order.activated_at) > moment:
            break
        if event.kind in (StateKind.CANCELLED, StateKind.EXPIRED):
            return False
        active = event.kind is not StateKind.PAUSED
    return active


def active_by_oracle(history: OrderHistory, day: date) -> bool:
    """Whether any 15-minute slot of the day (every moment is on that grid) is active."""
    start, _ = day_bounds(day, TZ)
    return any(active_at(history, start + timedelta(minutes=15 * q)) for q in range(96))


@settings(max_examples=300, deadline=None)
@given(histories())
def test_days_charged_never_exceed_days_active(history):
    """An order is charged at most once per day, and only on days with positive active time."""
    charged = [day for day, charge in zip(DAYS, charges(history), strict=True) if charge]
    assert all(active_seconds(history, day) > 0 for day in charged)
    assert len(charged) <= sum(1 for day in DAYS if active_seconds(history, day) > 0)
    assert len({c.source_key for c in charges(history) if c}) == len(charged)


@settings(max_examples=200, deadline=None)
@given(histories())
def test_active_days_are_charged(history):
    """Exactly the days an independent replay finds active are charged (both plans rate)."""
    for day, charge in zip(DAYS, charges(history), strict=True):
        assert (charge is not None) == active_by_oracle(history, day)


@settings(max_examples=200, deadline=None)
@given(histories())
def test_rerating_gives_the_same_charges(history):
    """Rating the same inputs again gives equal charges."""
    assert charges(history) == charges(history)


@settings(max_examples=300, deadline=None)
@given(histories(), st.randoms(use_true_random=False))
def test_event_arrival_order_does_not_matter(history, random):
    """Any permutation of the state events and account changes gives the same charges."""
    events, accounts = list(history.events), list(history.accounts)
    random.shuffle(events)
    random.shuffle(accounts)
    shuffled = OrderHistory(history.order, tuple(events), tuple(accounts))
    assert charges(shuffled) == charges(history)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 30), min_size=1, max_size=10))
def test_trial_uses_free_exactly_the_first_units(quantities):
    """Over an order's records, exactly min(trial, total) units are free, however split."""
    order = Order("o1", "boss", "u", "P", "SMS", EPOCH)
    prior, free = 0, 0
    for i, quantity in enumerate(quantities):
        record = UsageFacts(f"op{i}", order, "", "u", quantity, EPOCH, prior_units=prior)
        charge = rate_usage(record, TZ, RULES)
        free += int(charge.explanation["free_units"])
        prior += units_of(record, RULES.rules[2].price)
    assert free == min(15, sum(quantities))
