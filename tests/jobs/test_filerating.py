"""Rating the rows of a usage file: the shortcut for repeated prices is ``rate_usage``."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from billingcenter.jobs.filecheck import NO_RULE, Rejected
from billingcenter.jobs.filerating import Rater
from billingcenter.ledger.filerows import FileCharge, file_charge
from billingcenter.model import Order
from billingcenter.rating.model import ChargeKind, RatingError, RuleBook, UsageFacts
from billingcenter.rating.ruleset import parse_rule_set
from billingcenter.rating.usage import rate_usage

TZ = ZoneInfo("Asia/Shanghai")
AT = datetime(2026, 11, 2, 16, 30, tzinfo=UTC)  # 2026-11-03 in Shanghai
SETTLEMENT = Path(__file__).resolve().parents[2] / "conf" / "rules" / (
    "settlement-inter-network.toml")
RULES = """
[rule_set]
name = "t"
version = "1"
author = "alice"
description = "every kind of price"
effective_from = 2026-11-01T00:00:00+08:00
products = []

[[rule]]
id = "rounded"
description = "11 x 6 s x 0.012 = 0.132: rounded"
mode = "duration"
unit_price = "0.012"
increment = 6
connect_fee = "0.005"
rounding = "half_even"
[rule.when]
call_type = "MTC"

[[rule]]
id = "trial"
description = "first 3 units free"
mode = "duration"
unit_price = "0.06"
increment = 60
trial_uses = 3
[rule.when]
call_type = "MOC"

[[rule]]
id = "tiers"
description = "graduated"
mode = "per_use"
tiers = [{ upto = "2", price = "0.05" }, { price = "0.033" }]
[rule.when]
call_type = "SMS-MO"
plan_code = "P"

[[rule]]
id = "flat"
description = "per use"
mode = "per_use"
unit_price = "0.10"
[rule.when]
call_type = ["SMS-MO", "SMS-MT"]
"""
USERS = ["", "u1", 'a "quoted" \\ user', "用户", "tab\tnl\n\x01", "\u2028"]


def expected(rule_set, key, payer, product, item, user, quantity, attributes, at=AT
             ) -> FileCharge:
    """What ``rate_usage`` itself makes of the row, as stored."""
    order = Order("", payer, user, product, attributes.get("plan_code", ""),
                  datetime(2000, 1, 1, tzinfo=UTC))
    facts = UsageFacts(key, order, item, user, quantity, at, dict(attributes))
    return file_charge(rate_usage(facts, TZ, rule_set, ChargeKind.RECORD))


class TestRater:
    @pytest.mark.parametrize("attributes,quantity", [
        ({"call_type": "MTC", "duration": "61"}, 1),
        ({"call_type": "MTC", "duration": "0"}, 1),
        ({"call_type": "MOC", "duration": "61"}, 1),
        ({"call_type": "MOC", "duration": "600"}, 1),
        ({"call_type": "SMS-MO", "plan_code": "P"}, 7),
        ({"call_type": "SMS-MO"}, 3),
        ({"call_type": "SMS-MT", "duration": "5"}, 2),
    ])
    def test_every_row_is_charged_as_rate_usage_charges_it(self, attributes, quantity):
        """First row of a price and the rows after it: the same bytes, key and user theirs."""
        rule_set = parse_rule_set(RULES)
        rater = Rater(RuleBook((rule_set,)), "t", TZ)
        for n, user in enumerate(USERS * 2):
            key = f'k"{n}\\é'
            found = rater.rate(key, AT, "CT", "PROD", "ITEM", user, quantity, dict(attributes))
            assert found == expected(rule_set, key, "CT", "PROD", "ITEM", user, quantity,
                                     attributes)

    def test_the_settlement_rules_as_rate_usage(self):
        """Every kind of settlement row, twice each, as ``rate_usage`` prices it."""
        rule_set = parse_rule_set(SETTLEMENT.read_text(encoding="utf-8"))
        rater = Rater(RuleBook((rule_set,)), rule_set.name, TZ)
        rows = [
            {"call_type": "MOC", "peer_operator": "CT", "service_type": "VOICE",
             "called": "01012345678", "duration": "61"},
            {"call_type": "MOC", "peer_operator": "INTL", "service_type": "VOICE",
             "called": "0044123", "duration": "3700"},
            {"call_type": "MTC", "peer_operator": "CU", "service_type": "VIDEO",
             "called": "4001234", "duration": "2"},
            {"call_type": "SMS-MO", "peer_operator": "CBN", "service_type": "SMS",
             "called": "138"},
        ]
        for n, attributes in enumerate(rows * 2):
            found = rater.rate(f"r{n}", AT, "CU", "", "", f"u{n}", 2, dict(attributes))
            assert found == expected(rule_set, f"r{n}", "CU", "", "", f"u{n}", 2, attributes)

    def test_each_row_has_its_own_version_and_business_day(self):
        """Rows back and forth over a midnight and a version change within a day."""
        old = parse_rule_set(RULES.replace(
            "effective_from = 2026-11-01T00:00:00+08:00",
            "effective_from = 2026-11-01T00:00:00+08:00\neffective_to = 2026-11-03T12:00:00+08:00"))
        new = parse_rule_set(RULES.replace('version = "1"', 'version = "2"').replace(
            "2026-11-01T00:00:00+08:00", "2026-11-03T12:00:00+08:00").replace(
            '"0.10"', '"0.20"'))
        book = RuleBook((old, new))
        rater = Rater(book, "t", TZ)
        times = ["2026-11-02T15:59:59", "2026-11-02T16:00:00", "2026-11-03T03:59:59.999999",
                 "2026-11-03T04:00:00", "2026-11-02T15:59:59", "2026-11-03T04:00:00",
                 "2026-11-03T03:00:00", "2026-11-03T15:59:59", "2026-11-03T16:00:00"]
        for n, text in enumerate(times):
            at = datetime.fromisoformat(text + "+00:00")
            found = rater.rate(f"r{n}", at, "CT", "", "", "", 3, {"call_type": "SMS-MT"})
            assert found == expected(book.in_force("t", at), f"r{n}", "CT", "", "", "", 3,
                                     {"call_type": "SMS-MT"}, at)
        assert [rater.rate("x", datetime.fromisoformat(t + "+00:00"), "", "", "", "", 1,
                           {"call_type": "SMS-MT"})[3:6] for t in times[:4]] == [
            ("2026-11-02", "t", "1"), ("2026-11-03", "t", "1"), ("2026-11-03", "t", "1"),
            ("2026-11-03", "t", "2")]

    def test_no_rule_is_rejected_with_the_reason_of_rate_usage(self):
        """The row's own key in the reason, after a priced row and again."""
        rule_set = parse_rule_set(RULES)
        rater = Rater(RuleBook((rule_set,)), "t", TZ)
        rater.rate("a", AT, "CT", "", "", "", 1, {"call_type": "SMS-MT"})
        with pytest.raises(RatingError) as direct:
            expected(rule_set, "k9", "CT", "", "", "", 1, {"call_type": "CFW"})
        for _ in range(2):
            with pytest.raises(Rejected) as rejected:
                rater.rate("k9", AT, "CT", "", "", "", 1, {"call_type": "CFW"})
            assert (rejected.value.code, rejected.value.reason) == (NO_RULE, str(direct.value))

    def test_a_duration_rule_without_duration_names_the_row(self):
        """Not priced, not remembered: the reason names the row's key each time."""
        rater = Rater(RuleBook((parse_rule_set(RULES),)), "t", TZ)
        for key in ("x1", "x2"):
            with pytest.raises(Rejected, match=f"record {key}: a duration rule needs"):
                rater.rate(key, AT, "CT", "", "", "", 1, {"call_type": "MOC"})
