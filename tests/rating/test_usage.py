"""Tests of billingcenter.rating.usage: per-use and duration records, tiers and trials."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from billingcenter.model import Order
from billingcenter.rating.model import Charge, ChargeKind, RatingError, UsageFacts
from billingcenter.rating.usage import rate_usage, units_of
from tests.rating.builders import TZ, at, order, rules, shipped

RULES = rules("""
[[rule]]
id = "daily-first"
mode = "daily"
unit_price = "9"

[[rule]]
id = "flat"
mode = "per_use"
unit_price = "0.05"
[rule.when]
plan_code = "FLAT"

[[rule]]
id = "graduated"
mode = "per_use"
tiers = [{ upto = "1000", price = "0.05" }, { upto = "10000", price = "0.045" }, { price = "0.04" }]
[rule.when]
plan_code = "GRAD"

[[rule]]
id = "graduated-trial"
mode = "per_use"
tiers = [{ upto = "1000", price = "0.05" }, { upto = "10000", price = "0.045" }, { price = "0.04" }]
trial_uses = 100
[rule.when]
plan_code = "GRAD-TRIAL"

[[rule]]
id = "volume"
mode = "per_use"
tiers = [{ upto = "1000", price = "0.05" }, { upto = "10000", price = "0.045" }, { price = "0.04" }]
tier_mode = "volume"
[rule.when]
plan_code = "VOL"

[[rule]]
id = "volume-trial"
mode = "per_use"
tiers = [{ upto = "1000", price = "0.05" }, { price = "0.045" }]
tier_mode = "volume"
trial_uses = 100
[rule.when]
plan_code = "VOL-TRIAL"

[[rule]]
id = "flat-trial"
mode = "per_use"
unit_price = "0.10"
trial_uses = 100
[rule.when]
plan_code = "TRIAL"

[[rule]]
id = "tiny-half-up"
mode = "per_use"
unit_price = "0.0005"
[rule.when]
plan_code = "TINY"
item_code = "half"

[[rule]]
id = "tiny-up"
mode = "per_use"
unit_price = "0.0005"
rounding = "up"
[rule.when]
plan_code = "TINY"

[[rule]]
id = "six"
mode = "duration"
unit_price = "0.01"
increment = 6
[rule.when]
plan_code = "SIX"

[[rule]]
id = "minute"
mode = "duration"
unit_price = "0.08"
increment = 60
connect_fee = "0.05"
[rule.when]
plan_code = "MIN"

[[rule]]
id = "minute-trial"
mode = "duration"
unit_price = "0.08"
increment = 60
connect_fee = "0.05"
trial_uses = 10
[rule.when]
plan_code = "MIN-TRIAL"

[[rule]]
id = "five-minutes"
mode = "duration"
unit_price = "0.20"
increment = 300
connect_fee = "0.015"
[rule.when]
plan_code = "FIVE"
""")

WHEN = at("2026-11-02 10:00")


def facts(plan: str, quantity: int = 1, prior: int = 0, item: str = "send", op_id: str = "op1",
          occurred: datetime = WHEN, **attributes: str) -> UsageFacts:
    return UsageFacts(op_id, order(plan=plan), item, "employee", quantity, occurred, attributes,
                      prior_units=prior)


def fen(plan: str, quantity: int = 1, prior: int = 0, **attributes: str) -> int:
    return rate_usage(facts(plan, quantity, prior, **attributes), TZ, RULES).amount_fen


class TestPerUse:
    def test_flat(self):
        """Quantity x unit price, charged to the order's payer, explained."""
        assert rate_usage(facts("FLAT", 7), TZ, RULES) == Charge(
            kind=ChargeKind.USAGE, source_key="op1", order_id="o1", payer_id="boss",
            product_code="P", day=date(2026, 11, 2), rule_set="test", rule_set_version="1",
            rule_id="flat", units=Decimal(7), unit_price=Decimal("0.05"), amount_fen=35,
            explanation={"source": "op1", "mode": "per_use", "user": "employee", "units": "7",
                         "unit_price": "0.05"})

    def test_payer_is_the_orders_payer(self):
        """An employee's use is charged to the order's payer; the user is explained."""
        charge = rate_usage(facts("FLAT"), TZ, RULES)
        assert (charge.payer_id, charge.explanation["user"]) == ("boss", "employee")

    def test_zero_quantity(self):
        """No uses cost nothing."""
        assert fen("FLAT", 0) == 0

    def test_negative_quantity(self):
        """A negative quantity cannot be rated."""
        with pytest.raises(RatingError, match="quantity -1 is negative"):
            fen("FLAT", -1)

    @pytest.mark.parametrize("quantity, expected", [
        (1, 5), (1000, 5000), (1001, 5005), (1500, 7250), (10000, 45500),
        (12000, 53500),
    ])
    def test_graduated(self, quantity, expected):
        """Each unit at its tier's price: 1500 = 1000 x 0.05 + 500 x 0.045 = 72.50."""
        assert fen("GRAD", quantity) == expected

    def test_graduated_explained(self):
        """The tier bands and the last unit's tier price are shown."""
        charge = rate_usage(facts("GRAD", 12000), TZ, RULES)
        assert charge.explanation["tiers"] == "1000 x 0.05 + 9000 x 0.045 + 2000 x 0.04"
        assert charge.unit_price == Decimal("0.04")

    @pytest.mark.parametrize("quantity, expected", [
        (1000, 5000), (1001, 4505), (1500, 6750), (10000, 45000), (10001, 40004),
    ])
    def test_volume(self, quantity, expected):
        """Every unit at the tier the whole quantity falls in: 1001 x 0.045 = 45.045 -> 4505."""
        assert fen("VOL", quantity) == expected

    def test_volume_explained(self):
        """Volume tiers show the tier price and the exact amount before rounding."""
        charge = rate_usage(facts("VOL", 1001), TZ, RULES)
        assert charge.unit_price == Decimal("0.045")
        assert charge.explanation["tiers"] == "1001 x 0.045"
        assert (charge.explanation["exact"], charge.explanation["rounding"]) == ("45.045",
                                                                                 "half_up")

    def test_rounding_per_rule(self):
        """7 x 0.0005 = 0.0035: half_up gives 0 fen, up gives 1 fen."""
        half = rate_usage(facts("TINY", 7, item="half"), TZ, RULES)
        up = rate_usage(facts("TINY", 7, item="other"), TZ, RULES)
        assert (half.rule_id, half.amount_fen, up.rule_id, up.amount_fen) == (
            "tiny-half-up", 0, "tiny-up", 1)

    def test_daily_rules_are_skipped(self):
        """A daily rule without conditions first in the file does not price usage."""
        assert rate_usage(facts("FLAT"), TZ, RULES).rule_id == "flat"


class TestTrialUses:
    @pytest.mark.parametrize("prior, quantity, expected", [
        (0, 100, 0),      # uses 1..100: all free
        (99, 1, 0),       # use 100: free
        (100, 1, 10),     # use 101: charged
        (0, 101, 10),     # uses 1..101: one charged
        (95, 10, 50),     # uses 96..105 straddle the end: 5 free, 5 charged
        (500, 3, 30),     # long after the trial
    ])
    def test_boundaries(self, prior, quantity, expected):
        """The first 100 units of the order are free, counting the units before the record."""
        assert fen("TRIAL", quantity, prior) == expected

    def test_straddling_record_explained(self):
        """A partly free record says how many of its units were free."""
        charge = rate_usage(facts("TRIAL", 10, 95), TZ, RULES)
        assert charge.units == Decimal(10)
        assert charge.explanation["free_units"] == "5"
        assert charge.explanation["trial"] == "5 of 10 units free (first 100 units of the order)"

    def test_graduated_free_units_take_the_first_positions(self):
        """60 free units of 1500 come off the first tier: 940 x 0.05 + 500 x 0.045."""
        charge = rate_usage(facts("GRAD-TRIAL", 1500, 40), TZ, RULES)
        assert charge.amount_fen == 6950  # 47.00 + 22.50
        assert charge.explanation["tiers"] == "940 x 0.05 + 500 x 0.045"

    def test_volume_tier_chosen_by_the_whole_record(self):
        """Volume tiers: the tier is chosen by all 1500 units, only 1400 are paid."""
        assert fen("VOL-TRIAL", 1500, 0) == 6300

    def test_whole_record_free_with_tiers(self):
        """A record entirely within the trial is 0 fen with tiers too."""
        assert fen("GRAD-TRIAL", 50, 10) == 0


class TestDuration:
    @pytest.mark.parametrize("seconds, units", [
        ("0", 0), ("1", 1), ("5", 1), ("6", 1), ("7", 2), ("12", 2), ("13", 3), ("3600", 600),
    ])
    def test_six_second_increments_round_up(self, seconds, units):
        """Every started 6 s is a unit: 1 s -> 1, 6 s -> 1, 7 s -> 2."""
        charge = rate_usage(facts("SIX", duration=seconds), TZ, RULES)
        assert (charge.units, charge.amount_fen) == (Decimal(units), units)

    @pytest.mark.parametrize("seconds, expected", [("0", 5), ("1", 13), ("60", 13), ("61", 21)])
    def test_minutes_with_connect_fee(self, seconds, expected):
        """Started minutes x 0.08 plus a 0.05 connect fee per call."""
        assert fen("MIN", duration=seconds) == expected

    def test_five_minute_increments_and_rounding(self):
        """301 s is two 300 s units: 2 x 0.20 + 0.015 = 0.415 -> 42 fen half-up."""
        charge = rate_usage(facts("FIVE", duration="301"), TZ, RULES)
        assert charge.amount_fen == 42
        assert charge.explanation == {
            "source": "op1", "mode": "duration", "user": "employee", "seconds": "301",
            "increment": "300", "units": "2", "connect_fee": "0.015", "unit_price": "0.20",
            "exact": "0.415", "rounding": "half_up"}

    def test_quantity_is_not_used(self):
        """Duration comes from the attribute, not the quantity."""
        assert fen("SIX", 500, duration="7") == 2

    def test_trial_counts_increments(self):
        """Trial units are increments: 8 used, 5 more -> 2 free, 3 paid plus connect fee."""
        charge = rate_usage(facts("MIN-TRIAL", prior=8, duration="300"), TZ, RULES)
        assert charge.amount_fen == 3 * 8 + 5
        assert charge.explanation["free_units"] == "2"

    def test_wholly_free_call_pays_no_connect_fee(self):
        """A call entirely within the trial costs nothing, connect fee included."""
        assert fen("MIN-TRIAL", prior=0, duration="300") == 0
        assert fen("MIN-TRIAL", prior=10, duration="60") == 13

    @pytest.mark.parametrize("duration", ["abc", "6.5", "-6", "", "1e2"])
    def test_bad_duration(self, duration):
        """A duration that is not whole seconds cannot be rated."""
        with pytest.raises(RatingError, match="is not a whole number of seconds"):
            fen("SIX", duration=duration)

    def test_missing_duration(self):
        """A duration rule needs the duration attribute."""
        with pytest.raises(RatingError, match="needs the attribute 'duration'"):
            fen("SIX")

    def test_units_of(self):
        """units_of gives what a record counts towards later records' prior units."""
        price = {rule.rule_id: rule.price for rule in RULES.rules}
        assert units_of(facts("SIX", 99, duration="13"), price["six"]) == 3
        assert units_of(facts("FLAT", 99), price["flat"]) == 99


class TestMatching:
    def test_no_rule(self):
        """A record no rule prices is a RatingError saying which record and why."""
        with pytest.raises(RatingError) as caught:
            fen("NONE")
        assert str(caught.value) == (
            "no per_use or duration rule of rule set test 1 matches record op1 "
            "(product 'P', plan 'NONE', item 'send')")

    def test_order_fields_win_over_attributes(self):
        """A record attribute named plan_code cannot pick another plan's price."""
        assert rate_usage(facts("FLAT", 2, plan_code="GRAD"), TZ, RULES).rule_id == "flat"

    def test_record_kind_and_business_day(self):
        """File records keep their kind; the day is the Shanghai day of the record."""
        late = datetime(2026, 11, 2, 16, 0, tzinfo=UTC)  # 00:00 on the 3rd in Shanghai
        charge = rate_usage(facts("FLAT", occurred=late), TZ, RULES, ChargeKind.RECORD)
        assert (charge.kind, charge.day) == (ChargeKind.RECORD, date(2026, 11, 3))
        early = datetime(2026, 11, 2, 15, 59, 59, tzinfo=UTC)
        assert rate_usage(facts("FLAT", occurred=early), TZ, RULES).day == date(2026, 11, 2)


class TestShipped:
    def test_voice(self):
        """VOICE as shipped: 6 s plan at 0.01 per 6 s, 60 s plan with a connect fee."""
        voice = shipped("voice")

        def call(plan: str, seconds: str, called: str = "02112345678") -> int:
            record = UsageFacts("c", order(product="VOICE", plan=plan), "", "u", 1, WHEN,
                                {"duration": seconds, "called": called})
            return rate_usage(record, TZ, voice).amount_fen

        assert [call("VOICE-6S", s) for s in ("1", "6", "7", "60")] == [1, 1, 2, 10]
        assert call("VOICE-6S", "7", "0044207946000") == 16
        assert [call("VOICE-60S", s) for s in ("1", "60", "61")] == [13, 13, 21]

    def test_sms(self):
        """SMS-NOTIFY as shipped: the trial plan's first 100 messages are free."""
        sms = shipped("saas-sms-notify")

        def send(plan: str, quantity: int, prior: int) -> int:
            record = UsageFacts("s", order(product="SMS-NOTIFY", plan=plan), "send", "u",
                                quantity, WHEN, prior_units=prior)
            return rate_usage(record, TZ, sms).amount_fen

        assert send("SMS-TRIAL-100", 100, 0) == 0
        assert send("SMS-TRIAL-100", 1, 100) == 5
        assert send("SMS-PER-USE", 1500, 0) == 7250

    def test_settlement_record(self):
        """A settlement record with a stand-in order is priced by the settlement rules."""
        stand_in = Order("file-1", "CT", "", "", "", WHEN)
        record = UsageFacts("r1", stand_in, "", "", 1, WHEN,
                            {"call_type": "MTC", "peer_operator": "CT", "service_type": "VOICE",
                             "called": "13800138000", "duration": "125"})
        charge = rate_usage(record, TZ, shipped("settlement-inter-network"), ChargeKind.RECORD)
        assert (charge.rule_id, charge.units, charge.amount_fen) == ("mtc-ct-voice", 3, 18)
