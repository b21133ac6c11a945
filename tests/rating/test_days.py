"""Tests of billingcenter.rating.days: business days, activity and account counts."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from billingcenter.model import Order
from billingcenter.rating.days import (
    active_intervals,
    active_on,
    business_day,
    day_bounds,
    max_accounts_on,
)
from billingcenter.rating.model import AccountCount, OrderHistory
from tests.rating.builders import TZ, at, event, order

NOV2 = date(2026, 11, 2)
NOV3 = date(2026, 11, 3)


def history(*events, activated="2026-11-02 10:00", accounts=(), account_num=0):
    return OrderHistory(order(activated=activated, accounts=account_num), tuple(events),
                        tuple(AccountCount(at(when), n) for when, n in accounts))


class TestBusinessDay:
    def test_shanghai_midnight_is_16_utc(self):
        """00:00 Asia/Shanghai is 16:00 UTC of the previous day."""
        assert business_day(datetime(2026, 11, 1, 16, 0, tzinfo=UTC), TZ) == NOV2
        assert business_day(datetime(2026, 11, 1, 15, 59, 59, 999999, tzinfo=UTC), TZ) == date(
            2026, 11, 1)

    def test_naive_refused(self):
        """A naive datetime has no business day."""
        with pytest.raises(ValueError):
            business_day(datetime(2026, 11, 2), TZ)

    def test_bounds(self):
        """A Shanghai business day runs [16:00Z the day before, 16:00Z)."""
        assert day_bounds(NOV2, TZ) == (datetime(2026, 11, 1, 16, tzinfo=UTC),
                                        datetime(2026, 11, 2, 16, tzinfo=UTC))

    def test_bounds_across_a_dst_change(self):
        """In a zone with summer time, the day of the change is 23 hours long."""
        berlin = ZoneInfo("Europe/Berlin")
        start, end = day_bounds(date(2026, 3, 29), berlin)
        assert (start, end) == (datetime(2026, 3, 28, 23, tzinfo=UTC),
                                datetime(2026, 3, 29, 22, tzinfo=UTC))


class TestActiveIntervals:
    def test_no_events(self):
        """Without events the order is active from its activation on."""
        assert active_intervals(history()) == ((at("2026-11-02 10:00"), None),)

    def test_pause_and_resume(self):
        """PAUSED ends an interval, RESUMED starts the next."""
        h = history(event("e1", "PAUSED", "2026-11-02 12:00"),
                    event("e2", "RESUMED", "2026-11-02 13:00"))
        assert active_intervals(h) == ((at("2026-11-02 10:00"), at("2026-11-02 12:00")),
                                       (at("2026-11-02 13:00"), None))

    def test_repeats_change_nothing(self):
        """A RESUMED of an active order or a PAUSED of a paused one changes nothing."""
        h = history(event("e1", "RESUMED", "2026-11-02 11:00"),
                    event("e2", "PAUSED", "2026-11-02 12:00"),
                    event("e3", "PAUSED", "2026-11-02 12:30"),
                    event("e4", "ACTIVE", "2026-11-02 13:00"))
        assert active_intervals(h) == ((at("2026-11-02 10:00"), at("2026-11-02 12:00")),
                                       (at("2026-11-02 13:00"), None))

    def test_cancel_is_final(self):
        """Events after a cancellation are ignored: the order never comes back."""
        h = history(event("e1", "CANCELLED", "2026-11-02 12:00"),
                    event("e2", "RESUMED", "2026-11-02 13:00"),
                    event("e3", "ACTIVE", "2026-11-03 13:00"))
        assert active_intervals(h) == ((at("2026-11-02 10:00"), at("2026-11-02 12:00")),)

    def test_expiry_of_a_paused_order(self):
        """An order that expires while paused has no interval after its pause."""
        h = history(event("e1", "PAUSED", "2026-11-02 12:00"),
                    event("e2", "EXPIRED", "2026-11-03 00:00"),
                    event("e3", "RESUMED", "2026-11-03 01:00"))
        assert active_intervals(h) == ((at("2026-11-02 10:00"), at("2026-11-02 12:00")),)

    def test_arrival_order_does_not_matter(self):
        """Events apply in (changed_at, event_id) order whatever order they arrive in."""
        events = [event("e1", "PAUSED", "2026-11-02 12:00"),
                  event("e2", "RESUMED", "2026-11-02 13:00"),
                  event("e3", "PAUSED", "2026-11-02 14:00")]
        assert active_intervals(history(*events)) == active_intervals(history(*reversed(events)))

    def test_simultaneous_events_apply_by_event_id(self):
        """Two events at one instant apply in event_id order."""
        paused_last = history(event("a", "RESUMED", "2026-11-02 12:00"),
                              event("b", "PAUSED", "2026-11-02 12:00"))
        resumed_last = history(event("b", "RESUMED", "2026-11-02 12:00"),
                               event("a", "PAUSED", "2026-11-02 12:00"))
        assert active_intervals(paused_last) == ((at("2026-11-02 10:00"), at("2026-11-02 12:00")),)
        assert active_intervals(resumed_last) == ((at("2026-11-02 10:00"), at("2026-11-02 12:00")),
                                                  (at("2026-11-02 12:00"), None))

    def test_zero_length_intervals_are_dropped(self):
        """A pause at the very instant of activation leaves no interval."""
        h = history(event("e1", "PAUSED", "2026-11-02 10:00"))
        assert active_intervals(h) == ()

    def test_event_before_activation_counts_at_activation(self):
        """An event dated before the activation takes effect at the activation."""
        h = history(event("e1", "PAUSED", "2026-11-01 09:00"),
                    event("e2", "RESUMED", "2026-11-02 11:00"))
        assert active_intervals(h) == ((at("2026-11-02 11:00"), None),)


class TestActiveOn:
    def test_pause_2359_resume_0001_is_two_days(self):
        """Paused at 23:59 and resumed at 00:01 the order was active on both days."""
        h = history(event("e1", "PAUSED", "2026-11-02 23:59"),
                    event("e2", "RESUMED", "2026-11-03 00:01"))
        assert active_on(h, NOV2, TZ) and active_on(h, NOV3, TZ)

    def test_paused_all_day(self):
        """A day spent entirely paused is not an active day."""
        h = history(event("e1", "PAUSED", "2026-11-02 23:00"),
                    event("e2", "RESUMED", "2026-11-04 00:00"))
        assert active_on(h, NOV2, TZ)
        assert not active_on(h, NOV3, TZ)
        assert active_on(h, date(2026, 11, 4), TZ)

    def test_one_second_counts(self):
        """Activated in the last second of the day: active that day."""
        assert active_on(history(activated="2026-11-02 23:59:59"), NOV2, TZ)
        assert not active_on(history(activated="2026-11-03 00:00"), NOV2, TZ)

    def test_cancelled_at_midnight(self):
        """Cancelled at 00:00 exactly: not active on the new day (no positive time)."""
        h = history(event("e1", "CANCELLED", "2026-11-03 00:00"))
        assert active_on(h, NOV2, TZ) and not active_on(h, NOV3, TZ)

    def test_before_activation(self):
        """Days before the activation are not active."""
        assert not active_on(history(), date(2026, 11, 1), TZ)

    def test_utc_boundaries(self):
        """An order activated at 15:59Z is active on the Shanghai day ending at 16:00Z only."""
        h = OrderHistory(Order("o1", "boss", "user", "P", "PLAN",
                               datetime(2026, 11, 2, 15, 59, tzinfo=UTC)))
        assert active_on(h, NOV2, TZ)
        paused = OrderHistory(h.order, (event("e", "PAUSED", "2026-11-03 00:00"),))
        assert active_on(paused, NOV2, TZ) and not active_on(paused, NOV3, TZ)


class TestMaxAccounts:
    def test_several_changes_in_a_day(self):
        """The most of the count carried in and every change of the day."""
        h = history(account_num=3, accounts=[("2026-11-03 09:00", 8), ("2026-11-03 12:00", 2),
                                             ("2026-11-03 18:00", 5)])
        assert max_accounts_on(h, NOV3, TZ) == 8

    def test_carried_in_beats_the_changes_of_the_day(self):
        """A count carried in from the day before counts even if lowered in the morning."""
        h = history(account_num=3, accounts=[("2026-11-02 20:00", 9), ("2026-11-03 00:30", 4)])
        assert max_accounts_on(h, NOV3, TZ) == 9
        assert max_accounts_on(h, date(2026, 11, 4), TZ) == 4

    def test_no_change_that_day(self):
        """With no change that day, the count carried in is the day's count."""
        h = history(account_num=3, accounts=[("2026-11-02 20:00", 6)])
        assert max_accounts_on(h, date(2026, 11, 10), TZ) == 6

    def test_no_change_at_all(self):
        """With no change at all, the order's accountNum counts."""
        assert max_accounts_on(history(account_num=4), date(2026, 11, 10), TZ) == 4

    def test_change_at_midnight_is_in_force_at_the_start(self):
        """A change at 00:00 is the count at the start of the day, not the day before's."""
        h = history(account_num=9, accounts=[("2026-11-03 00:00", 2)])
        assert max_accounts_on(h, NOV3, TZ) == 2
        assert max_accounts_on(h, NOV2, TZ) == 9

    def test_order_of_changes_does_not_matter(self):
        """Changes may come in any order."""
        changes = [("2026-11-02 20:00", 9), ("2026-11-02 22:00", 4), ("2026-11-03 10:00", 5)]
        assert max_accounts_on(history(accounts=changes), NOV3, TZ) == 5
        assert max_accounts_on(history(accounts=changes[::-1]), NOV3, TZ) == 5

    def test_simultaneous_changes_count_as_the_larger(self):
        """Two changes at one instant: the larger is carried in."""
        h = history(accounts=[("2026-11-02 20:00", 4), ("2026-11-02 20:00", 7)])
        h2 = history(accounts=[("2026-11-02 20:00", 7), ("2026-11-02 20:00", 4)])
        assert max_accounts_on(h, NOV3, TZ) == max_accounts_on(h2, NOV3, TZ) == 7

    def test_changes_before_activation_are_ignored(self):
        """A change before the activation belongs to an earlier order."""
        h = history(activated="2026-11-02 10:00", account_num=3,
                    accounts=[("2026-11-02 08:00", 50), ("2026-11-01 08:00", 40)])
        assert max_accounts_on(h, NOV2, TZ) == 3

    def test_changes_after_cancellation_are_ignored(self):
        """A change after the cancellation belongs to a later order."""
        h = history(event("c", "CANCELLED", "2026-11-03 10:00"), account_num=3,
                    accounts=[("2026-11-03 11:00", 50)])
        assert max_accounts_on(h, NOV3, TZ) == 3

    def test_changes_while_paused_count(self):
        """The order keeps its accounts while paused: a change then counts."""
        h = history(event("p", "PAUSED", "2026-11-03 08:00"),
                    event("r", "RESUMED", "2026-11-03 20:00"), account_num=3,
                    accounts=[("2026-11-03 09:00", 12), ("2026-11-03 10:00", 1)])
        assert max_accounts_on(h, NOV3, TZ) == 12

    def test_outside_the_orders_life(self):
        """Before activation or after the end there are no accounts."""
        assert max_accounts_on(history(account_num=3), date(2026, 11, 1), TZ) == 0
        ended = history(event("c", "CANCELLED", "2026-11-02 12:00"), account_num=3)
        assert max_accounts_on(ended, NOV3, TZ) == 0
