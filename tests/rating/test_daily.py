"""Tests of billingcenter.rating.daily: one charge per order per active business day."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from billingcenter.rating.daily import rate_day
from billingcenter.rating.model import AccountCount, Charge, ChargeKind, OrderHistory
from tests.rating.builders import TZ, at, event, order, rules, shipped

RULES = rules("""
[[rule]]
id = "usage-first"
mode = "per_use"
unit_price = "9"
[rule.when]
product_code = "P"

[[rule]]
id = "trial"
mode = "daily"
unit_price = "3.00"
trial_days = 7
[rule.when]
product_code = "P"
plan_code = "TRIAL"

[[rule]]
id = "daily"
description = "per day"
mode = "daily"
unit_price = "3.00"
[rule.when]
product_code = "P"
plan_code = "DAILY"

[[rule]]
id = "accounts"
mode = "daily_accounts"
unit_price = "0.50"
[rule.when]
product_code = "P"
plan_code = "ACC"

[[rule]]
id = "accounts-down"
mode = "daily_accounts"
unit_price = "0.333"
rounding = "down"
[rule.when]
product_code = "P"
plan_code = "ACC-DOWN"

[[rule]]
id = "half-up"
mode = "daily"
unit_price = "0.325"
[rule.when]
plan_code = "HALF-UP"

[[rule]]
id = "half-even"
mode = "daily"
unit_price = "0.325"
rounding = "half_even"
[rule.when]
plan_code = "HALF-EVEN"
""")

NOV2 = date(2026, 11, 2)


def day(n: int) -> date:
    """The n-th day of November 2026."""
    return date(2026, 11, n)


def rate(h: OrderHistory, d: date) -> Charge | None:
    return rate_day(h, d, TZ, RULES)


def fen(h: OrderHistory, d: date) -> int | None:
    charge = rate(h, d)
    return None if charge is None else charge.amount_fen


def daily(*events, plan="DAILY", order_id="o1", activated="2026-11-02 10:00", accounts=(),
          account_num=0) -> OrderHistory:
    return OrderHistory(
        order(order_id, activated, plan=plan, accounts=account_num), tuple(events),
        tuple(AccountCount(at(when), n) for when, n in accounts))


class TestDaily:
    def test_an_active_day(self):
        """An active day is one charge of the day price, with its source and explanation."""
        assert rate(daily(), NOV2) == Charge(
            kind=ChargeKind.DAILY, source_key="o1/2026-11-02", order_id="o1", payer_id="boss",
            product_code="P", day=NOV2, rule_set="test", rule_set_version="1", rule_id="daily",
            units=Decimal(1), unit_price=Decimal("3.00"), amount_fen=300,
            explanation={"source": "o1/2026-11-02", "mode": "daily", "units": "1",
                         "unit_price": "3.00"})

    def test_not_active(self):
        """No charge before the activation or after the cancellation."""
        h = daily(event("c", "CANCELLED", "2026-11-03 09:00"))
        assert [fen(h, day(n)) for n in (1, 2, 3, 4)] == [None, 300, 300, None]

    def test_no_daily_rule(self):
        """No charge when no daily rule matches the product and plan."""
        assert rate(daily(plan="NONE"), NOV2) is None
        assert rate_day(daily(), NOV2, TZ, shipped("saas-pc2")) is None

    def test_per_use_rules_are_skipped(self):
        """A per-use rule first in the file does not stop the daily rules."""
        assert rate(daily(), NOV2).rule_id == "daily"

    def test_many_pauses_in_a_day_are_one_day(self):
        """Any number of pause/resume cycles within a day is still one day's charge."""
        events = [event(f"e{i}{kind}", kind, f"2026-11-02 {11 + i}:{minute}")
                  for i in range(5) for kind, minute in (("PAUSED", "00"), ("RESUMED", "30"))]
        assert fen(daily(*events), NOV2) == 300
        assert fen(daily(*events), day(3)) == 300

    def test_pause_2359_resume_0001_is_two_days(self):
        """Paused at 23:59, resumed at 00:01: both days are charged."""
        h = daily(event("p", "PAUSED", "2026-11-02 23:59"),
                  event("r", "RESUMED", "2026-11-03 00:01"))
        assert (fen(h, NOV2), fen(h, day(3))) == (300, 300)

    def test_paused_whole_day_is_free(self):
        """A whole day paused is not charged."""
        h = daily(event("p", "PAUSED", "2026-11-02 23:59"),
                  event("r", "RESUMED", "2026-11-04 00:01"))
        assert [fen(h, day(n)) for n in (2, 3, 4)] == [300, None, 300]

    def test_cancel_and_reorder_same_day_is_two_charges(self):
        """Cancel and re-order the same day: two orders, two charges."""
        first = daily(event("c", "CANCELLED", "2026-11-02 12:00"))
        second = daily(order_id="o2", activated="2026-11-02 12:05")
        charges = [rate(first, NOV2), rate(second, NOV2)]
        assert [(c.source_key, c.amount_fen) for c in charges] == [
            ("o1/2026-11-02", 300), ("o2/2026-11-02", 300)]
        assert rate(first, day(3)) is None and fen(second, day(3)) == 300

    def test_business_day_boundary(self):
        """Activated at 00:00 Shanghai (16:00 UTC the day before): charged from that day."""
        h = daily(activated="2026-11-03 00:00")
        assert (fen(h, NOV2), fen(h, day(3))) == (None, 300)
        assert rate(h, day(3)).day == day(3)


class TestAccounts:
    def test_max_of_several_changes(self):
        """Max accounts of the day times the price: 8 x 0.50."""
        h = daily(plan="ACC", account_num=3,
                  accounts=[("2026-11-03 09:00", 8), ("2026-11-03 12:00", 2),
                            ("2026-11-03 18:00", 5)])
        charge = rate(h, day(3))
        assert (charge.amount_fen, charge.units, charge.unit_price) == (
            400, Decimal(8), Decimal("0.50"))
        assert charge.explanation == {
            "source": "o1/2026-11-03", "mode": "daily_accounts", "accounts_carried_in": "3",
            "accounts_max": "8", "units": "8", "unit_price": "0.50"}

    def test_carried_in_with_no_change_that_day(self):
        """No change that day: the count carried in from before is charged."""
        h = daily(plan="ACC", account_num=3, accounts=[("2026-11-02 20:00", 6)])
        assert [fen(h, day(n)) for n in (2, 3, 9)] == [300, 300, 300]
        assert rate(h, day(9)).explanation["accounts_carried_in"] == "6"

    def test_carried_in_higher_than_the_days_changes(self):
        """Lowered in the morning, the count carried in still counts that day."""
        h = daily(plan="ACC", account_num=10, accounts=[("2026-11-03 08:00", 1)])
        assert [fen(h, day(n)) for n in (2, 3, 4)] == [500, 500, 50]

    def test_zero_accounts(self):
        """An active order with no accounts is a charge of 0 fen."""
        charge = rate(daily(plan="ACC"), NOV2)
        assert (charge.amount_fen, charge.units) == (0, Decimal(0))

    def test_rounding_per_charge(self):
        """7 x 0.333 = 2.331 rounded down to the fen once: 233, with exact and rounding shown."""
        charge = rate(daily(plan="ACC-DOWN", account_num=7), NOV2)
        assert charge.amount_fen == 233
        assert (charge.explanation["exact"], charge.explanation["rounding"]) == ("2.331", "down")


class TestRounding:
    @pytest.mark.parametrize("plan, expected", [("HALF-UP", 33), ("HALF-EVEN", 32)])
    def test_rule_rounding(self, plan, expected):
        """0.325 rounds half-up to 33 fen and half-even to 32 fen, as the rule says."""
        assert fen(daily(plan=plan), NOV2) == expected


class TestTrial:
    def test_day_n_free_day_n_plus_1_charged(self):
        """Activation day is day 1: days 1..7 are 0 fen, day 8 is charged."""
        h = daily(plan="TRIAL", activated="2026-11-02 23:59")
        assert [fen(h, day(n)) for n in range(2, 11)] == [0] * 7 + [300, 300]

    def test_trial_explained(self):
        """A trial day says which day of the trial it is; a day after is an ordinary day."""
        h = daily(plan="TRIAL")
        assert rate(h, day(8)).explanation == {
            "source": "o1/2026-11-08", "mode": "daily", "units": "1", "unit_price": "3.00",
            "trial": "day 7 of a 7-day free trial"}
        assert "trial" not in rate(h, day(9)).explanation
        assert rate(h, day(8)).amount_fen == 0 and rate(h, day(8)).units == Decimal(1)

    def test_trial_starts_on_the_business_day(self):
        """Activated 00:30 Shanghai (16:30 UTC the day before): day 1 is the Shanghai day."""
        h = daily(plan="TRIAL", activated="2026-11-03 00:30")
        assert [fen(h, day(n)) for n in (2, 3, 9, 10)] == [None, 0, 0, 300]

    def test_pause_does_not_extend_the_trial(self):
        """Trial days are calendar days: a paused stretch is not given back."""
        h = daily(event("p", "PAUSED", "2026-11-03 09:00"),
                  event("r", "RESUMED", "2026-11-07 09:00"), plan="TRIAL")
        assert [fen(h, day(n)) for n in range(2, 11)] == [0, 0, None, None, None, 0, 0, 300, 300]

    def test_reorder_gets_its_own_trial(self):
        """A cancelled and re-ordered customer has a new order with its own trial."""
        first = daily(event("c", "CANCELLED", "2026-11-05 12:00"), plan="TRIAL")
        second = daily(plan="TRIAL", order_id="o2", activated="2026-11-05 12:05")
        assert [fen(first, day(n)) for n in range(2, 7)] == [0, 0, 0, 0, None]
        assert [fen(second, day(n)) for n in range(5, 14)] == [0] * 7 + [300, 300]

    def test_shipped_pc2_trial(self):
        """PC2 as shipped: 7 free days, then 0.50 per account."""
        h = OrderHistory(order(product="PC2", plan="PC2-DAILY-ACCOUNTS", accounts=4))
        pc2 = shipped("saas-pc2")
        fens = [rate_day(h, NOV2 + timedelta(days=i), TZ, pc2).amount_fen for i in range(9)]
        assert fens == [0] * 7 + [200, 200]

    def test_shipped_crm_plans(self):
        """CRM-BASIC as shipped: CRM-DAILY pays from day 1, CRM-TRIAL-7D from day 8."""
        crm = shipped("saas-crm-basic")
        paying = OrderHistory(order(product="CRM-BASIC", plan="CRM-DAILY"))
        trial = OrderHistory(order(product="CRM-BASIC", plan="CRM-TRIAL-7D"))
        assert rate_day(paying, NOV2, TZ, crm).amount_fen == 300
        assert rate_day(trial, NOV2, TZ, crm).amount_fen == 0
        assert rate_day(trial, day(9), TZ, crm).amount_fen == 300
