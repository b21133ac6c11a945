"""Tests of billingcenter.rating.ruleset: the TOML rule set parser."""

from __future__ import annotations

import pickle
import tomllib
from datetime import UTC, datetime, timedelta, timezone
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal

import pytest

from billingcenter.rating.model import Mode, Tier, TierMode
from billingcenter.rating.ruleset import RuleSetError, parse_rule_set
from tests.rating.builders import HEADER, RULES, rules, shipped

PC2 = """
[rule_set]
name = "saas-pc2"
version = "2026.11.1"
author = "alice"
description = "PC2 shared workspace"
effective_from = 2026-11-01T00:00:00+08:00
effective_to = 2027-11-01T00:00:00+08:00
products = ["PC2"]

[[rule]]
id = "pc2-daily-accounts"
description = "PC2 per day by max authorized accounts"
mode = "daily_accounts"
unit_price = "0.50"
trial_days = 7
rounding = "half_even"
[rule.when]
product_code = "PC2"
plan_code = ["PC2-DAILY-ACCOUNTS", "X"]
"""


def _error(text: str) -> str:
    with pytest.raises(RuleSetError) as caught:
        parse_rule_set(text)
    return str(caught.value)


class TestParse:
    def test_header_fields(self):
        """Every header field is read, times keep their offset and compare as instants."""
        parsed = parse_rule_set(PC2)
        assert (parsed.name, parsed.version, parsed.author) == ("saas-pc2", "2026.11.1", "alice")
        assert parsed.effective_from == datetime(2026, 10, 31, 16, tzinfo=UTC)
        assert parsed.effective_from.utcoffset() == timedelta(hours=8)
        assert parsed.effective_to == datetime(2027, 10, 31, 16, tzinfo=UTC)
        assert parsed.products == frozenset({"PC2"})
        assert parsed.source == PC2

    def test_rule_fields(self):
        """A rule's id, description, mode, price, trial and rounding are read exactly."""
        (rule,) = parse_rule_set(PC2).rules
        assert rule.rule_id == "pc2-daily-accounts"
        assert rule.description == "PC2 per day by max authorized accounts"
        assert rule.price.mode is Mode.DAILY_ACCOUNTS
        assert rule.price.unit_price == Decimal("0.50")
        assert rule.price.trial_days == 7
        assert rule.price.rounding == ROUND_HALF_EVEN
        assert rule.when.source == (
            '{ product_code = "PC2", plan_code = ["PC2-DAILY-ACCOUNTS", "X"] }')

    def test_defaults(self):
        """Optional fields take their documented defaults."""
        parsed = rules('[[rule]]\nid = "r"\nmode = "per_use"\nunit_price = "1"\n')
        (rule,) = parsed.rules
        assert parsed.effective_to is None
        assert rule.description == ""
        assert rule.price.rounding == ROUND_HALF_UP
        assert rule.price.tiers == ()
        assert (rule.price.trial_uses, rule.price.trial_days) == (0, 0)
        assert rule.when.test({}) is True

    def test_products_default_to_none(self):
        """A rule set without products is only used when named."""
        header = HEADER.replace('products = ["P"]\n', "")
        parsed = rules('[[rule]]\nid = "r"\nmode = "daily"\nunit_price = "1"\n', header)
        assert parsed.products == frozenset()

    def test_tiers(self):
        """Tiers read as Decimal bounds and prices, the last one open."""
        (rule,) = rules("""
[[rule]]
id = "sms"
mode = "per_use"
tiers = [{ upto = "100", price = "0.05" }, { upto = 1000, price = "0.045" }, { price = "0.04" }]
tier_mode = "volume"
trial_uses = 100
""").rules
        assert rule.price.tiers == (Tier(Decimal(100), Decimal("0.05")),
                                    Tier(Decimal(1000), Decimal("0.045")),
                                    Tier(None, Decimal("0.04")))
        assert rule.price.tier_mode is TierMode.VOLUME
        assert rule.price.unit_price == Decimal("0.05")
        assert rule.price.trial_uses == 100

    def test_duration(self):
        """A duration rule reads its increment and connect fee."""
        (rule,) = rules("""
[[rule]]
id = "call"
mode = "duration"
unit_price = "0.01"
increment = 6
connect_fee = "0.05"
rounding = "down"
""").rules
        assert (rule.price.increment, rule.price.connect_fee) == (6, Decimal("0.05"))
        assert rule.price.rounding == ROUND_DOWN

    def test_rules_keep_file_order(self):
        """Rules keep the order of the file: it decides which one wins."""
        parsed = rules("".join(
            f'[[rule]]\nid = "r{i}"\nmode = "daily"\nunit_price = "1"\n' for i in range(5)
        ))
        assert [r.rule_id for r in parsed.rules] == ["r0", "r1", "r2", "r3", "r4"]

    def test_equal_rule_sets_compare_equal(self):
        """Parsing the same text twice gives equal values (compiled closures aside)."""
        assert parse_rule_set(PC2) == parse_rule_set(PC2)


class TestShipped:
    @pytest.mark.parametrize("path", sorted(RULES.glob("*.toml")), ids=lambda p: p.name)
    def test_every_shipped_rule_set_parses(self, path):
        """Every rule set in conf/rules parses, and its name is its file name."""
        assert parse_rule_set(path.read_text(encoding="utf-8")).name == path.stem

    def test_product_lines_match_the_catalogue(self):
        """The product rule sets cover exactly the products and plans of the catalogue."""
        catalogue = tomllib.loads((RULES.parent / "catalogue.toml").read_text())
        covered = {}
        for name in ("saas-pc2", "saas-crm-basic", "saas-sms-notify", "voice"):
            for rule in shipped(name).rules:
                product = rule.when.equals["product_code"]
                for plan in rule.when.equals["plan_code"]:
                    covered.setdefault(*product, set()).add(plan)
        assert covered == {p["code"]: set(p["plans"]) for p in catalogue["product"]}

    def test_settlement_has_at_least_fifty_rules(self):
        """The inter-network settlement rule set has 50 rules or more and no products."""
        settlement = shipped("settlement-inter-network")
        assert len(settlement.rules) >= 50
        assert settlement.products == frozenset()


class TestErrors:
    def test_float_price(self):
        """A TOML float as a price is refused, naming the field."""
        message = _error(PC2.replace('unit_price = "0.50"', "unit_price = 0.50"))
        assert message.startswith("rule[1].unit_price: must be a string")
        assert "float" in message and "pc2-daily-accounts" in message

    def test_integer_price(self):
        """An integer price is refused too: prices are strings."""
        assert _error(PC2.replace('"0.50"', "1")).startswith("rule[1].unit_price:")

    @pytest.mark.parametrize("price", ["-1", "1e3", "0.5.0", " 1", "", "NaN", "1,5"])
    def test_malformed_price(self, price):
        """A price that is not plain digits with an optional point is refused."""
        assert _error(PC2.replace('"0.50"', f'"{price}"')).startswith("rule[1].unit_price:")

    def test_unknown_mode(self):
        """An unknown mode is refused, listing the known ones."""
        message = _error(PC2.replace('"daily_accounts"', '"monthly"'))
        assert message.startswith("rule[1].mode: unknown value 'monthly'")
        assert "per_use, duration, daily, daily_accounts" in message

    def test_unknown_condition_operator(self):
        """An unknown operator in a condition is refused, naming the attribute and operator."""
        message = _error(PC2 + 'called = { regex = "^010" }\n')
        assert message.startswith("rule[1].when.called.regex: unknown operator")

    @pytest.mark.parametrize("field", ["name", "version", "author", "effective_from"])
    def test_missing_header_field(self, field):
        """A missing required header field is named."""
        text = "\n".join(line for line in PC2.splitlines() if not line.startswith(field + " "))
        assert _error(text) == f"rule_set.{field}: is required"

    @pytest.mark.parametrize("field", ["id", "mode", "unit_price"])
    def test_missing_rule_field(self, field):
        """A missing required rule field is named."""
        text = "\n".join(line for line in PC2.splitlines() if not line.startswith(field + " "))
        assert _error(text).startswith(f"rule[1].{field}: is required")

    def test_missing_increment(self):
        """A duration rule must state its increment."""
        message = _error(HEADER + '[[rule]]\nid = "c"\nmode = "duration"\nunit_price = "1"\n')
        assert message.startswith("rule[1].increment: is required")

    def test_no_rules(self):
        """A rule set needs at least one rule."""
        assert _error(HEADER).startswith("rule: is required")

    def test_unknown_key(self):
        """A misspelt option is an error, not silently ignored."""
        message = _error(PC2.replace("trial_days = 7", "trail_days = 7"))
        assert message.startswith("rule[1].trail_days: unknown field")

    def test_unknown_header_key(self):
        """An unknown header key is an error."""
        assert _error(PC2.replace('author = "alice"', 'author = "alice"\nowner = "x"')
                      ).startswith("rule_set.owner: unknown field")

    def test_unknown_top_level_table(self):
        """An unknown top-level table is an error."""
        assert _error(PC2 + "[extra]\na = 1\n").startswith("extra: unknown field")

    def test_option_of_another_mode(self):
        """An option that does not belong to the rule's mode is refused."""
        message = _error(PC2.replace("trial_days = 7", "increment = 6"))
        assert message.startswith("rule[1].increment: does not apply to mode 'daily_accounts'")

    def test_duplicate_rule_id(self):
        """Two rules with one id are refused."""
        rule = '[[rule]]\nid = "r"\nmode = "daily"\nunit_price = "1"\n'
        assert _error(HEADER + rule + rule) == "rule[2].id: duplicate rule id 'r'"

    def test_local_datetime(self):
        """An effective time without an offset is refused."""
        message = _error(PC2.replace("2026-11-01T00:00:00+08:00", "2026-11-01T00:00:00"))
        assert message.startswith("rule_set.effective_from: must carry a UTC offset")

    def test_date_only(self):
        """A bare date is not an effective time."""
        message = _error(PC2.replace("2026-11-01T00:00:00+08:00", "2026-11-01"))
        assert message.startswith("rule_set.effective_from: must be a TOML date-time")

    def test_expiry_before_effect(self):
        """effective_to must come after effective_from."""
        message = _error(PC2.replace("2027-11-01T00:00:00+08:00", "2026-10-01T00:00:00+08:00"))
        assert message == "rule_set.effective_to: must be after effective_from"

    def test_unquoted_version(self):
        """An unquoted version is a float and refused."""
        message = _error(PC2.replace('version = "2026.11.1"', "version = 2026.11"))
        assert message == "rule_set.version: must be a string, not a float"

    def test_bad_rounding(self):
        """An unknown rounding is refused."""
        assert _error(PC2.replace('"half_even"', '"bankers"')).startswith(
            "rule[1].rounding: unknown rounding 'bankers'")

    def test_negative_trial(self):
        """A negative trial is refused."""
        assert _error(PC2.replace("trial_days = 7", "trial_days = -1")) == (
            "rule[1].trial_days: must be 0 or more, got -1 (rule 'pc2-daily-accounts')")

    def test_tiers_with_unit_price(self):
        """Tiers and a unit price together are ambiguous and refused."""
        message = _error(HEADER + """
[[rule]]
id = "t"
mode = "per_use"
unit_price = "1"
tiers = [{ price = "1" }]
""")
        assert message.startswith("rule[1].unit_price: not allowed with tiers")

    @pytest.mark.parametrize("tiers, field", [
        ('[{ upto = "10", price = "1" }]', "tiers[1].upto"),
        ('[{ price = "1" }, { price = "2" }]', "tiers[1].upto"),
        ('[{ upto = "10", price = "1" }, { upto = "5", price = "1" }, { price = "1" }]',
         "tiers[2].upto"),
        ('[{ upto = "10", price = 1.0 }, { price = "1" }]', "tiers[1].price"),
        ('[{ upto = "ten", price = "1" }, { price = "1" }]', "tiers[1].upto"),
        ('[{ upto = "10", cost = "1" }, { price = "1" }]', "tiers[1].cost"),
        ("[]", "tiers"),
    ])
    def test_bad_tiers(self, tiers, field):
        """Malformed tiers are refused, naming the tier and field."""
        message = _error(HEADER + f'[[rule]]\nid = "t"\nmode = "per_use"\ntiers = {tiers}\n')
        assert message.startswith(f"rule[1].{field}:")

    def test_tier_mode_without_tiers(self):
        """A tier mode without tiers is refused."""
        message = _error(HEADER + '[[rule]]\nid = "t"\nmode = "per_use"\nunit_price = "1"\n'
                         'tier_mode = "volume"\n')
        assert message.startswith("rule[1].tier_mode: only applies with tiers")

    def test_bad_name(self):
        """A rule set name with spaces or slashes is refused."""
        assert _error(PC2.replace('"saas-pc2"', '"saas pc2"')).startswith("rule_set.name:")

    def test_toml_syntax_error(self):
        """Invalid TOML is reported as such."""
        assert _error("[rule_set\n").startswith("toml: ")

    def test_error_carries_the_field(self):
        """The error keeps the field apart and survives pickling."""
        with pytest.raises(RuleSetError) as caught:
            parse_rule_set(PC2.replace('"0.50"', "0.5"))
        assert caught.value.field == "rule[1].unit_price"
        assert isinstance(caught.value, ValueError)
        again = pickle.loads(pickle.dumps(caught.value))
        assert str(again) == str(caught.value)


def test_offsets_other_than_shanghai():
    """An effective time in another offset is the same instant."""
    parsed = parse_rule_set(PC2.replace("2026-11-01T00:00:00+08:00", "2026-10-31T16:00:00Z"))
    assert parsed.effective_from == datetime(2026, 11, 1, tzinfo=timezone(timedelta(hours=8)))
