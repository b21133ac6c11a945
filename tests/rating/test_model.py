"""Tests of the methods of billingcenter.rating.model: RuleSet.match and RuleBook."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st

from billingcenter.rating.conditions import compile_condition
from billingcenter.rating.model import (
    Condition,
    Mode,
    Price,
    Rule,
    RuleBook,
    RuleSet,
    whole_fen,
)
from tests.rating.builders import at, rules, shipped

ALL = frozenset(Mode)
USAGE = frozenset({Mode.PER_USE, Mode.DURATION})


def _rule(rule_id: str, when: dict, mode: Mode = Mode.PER_USE) -> Rule:
    return Rule(rule_id, "", compile_condition(when, rule_id), Price(mode, Decimal(1)))


def _set(*rule_list: Rule, name: str = "s", version: str = "1", start: str = "2026-01-01",
         end: str | None = None, products: tuple[str, ...] = ()) -> RuleSet:
    return RuleSet(name, version, "alice", at(start + " 00:00"),
                   at(end + " 00:00") if end else None, tuple(rule_list), frozenset(products))


class TestMatch:
    def test_first_match_wins(self):
        """Of several rules that hold, the first in file order wins."""
        rule_set = _set(_rule("narrow", {"a": "1", "b": "2"}), _rule("wide", {"a": "1"}),
                        _rule("any", {}))
        assert rule_set.match({"a": "1", "b": "2"}, ALL).rule_id == "narrow"
        assert rule_set.match({"a": "1", "b": "3"}, ALL).rule_id == "wide"
        assert rule_set.match({"a": "2"}, ALL).rule_id == "any"

    def test_catch_all_before_specific_shadows_it(self):
        """A rule without conditions placed first shadows every later rule."""
        rule_set = _set(_rule("any", {}), _rule("narrow", {"a": "1"}))
        assert rule_set.match({"a": "1"}, ALL).rule_id == "any"

    def test_no_match(self):
        """None when no rule holds."""
        assert _set(_rule("r", {"a": "1"})).match({"a": "2"}, ALL) is None
        assert _set(_rule("r", {"a": "1"})).match({}, ALL) is None

    def test_other_modes_are_skipped(self):
        """Rules of modes not asked for are skipped, not stopped at."""
        rule_set = _set(_rule("day", {"a": "1"}, Mode.DAILY), _rule("use", {"a": "1"}))
        assert rule_set.match({"a": "1"}, USAGE).rule_id == "use"
        assert rule_set.match({"a": "1"}, frozenset({Mode.DAILY})).rule_id == "day"
        assert rule_set.match({"a": "1"}, frozenset({Mode.DURATION})) is None

    def test_index_keeps_file_order_across_branches(self):
        """A general rule before indexed ones still wins over them (many rules: indexed)."""
        specific = [_rule(f"r{i}", {"k": str(i)}) for i in range(20)]
        rule_set = _set(*specific[:10], _rule("general", {"x": {"prefix": "1"}}), *specific[10:])
        assert rule_set.match({"k": "3", "x": "1"}, ALL).rule_id == "r3"
        assert rule_set.match({"k": "13", "x": "1"}, ALL).rule_id == "general"
        assert rule_set.match({"k": "13", "x": "2"}, ALL).rule_id == "r13"
        assert rule_set.match({"k": "99", "x": "1"}, ALL).rule_id == "general"
        assert rule_set.match({"x": "2"}, ALL) is None

    def test_hand_built_conditions_are_tested_whole(self):
        """A condition built without index facts is simply tested as a whole."""
        odd = Condition(test=lambda a: int(a.get("n", "0")) % 2 == 1, source="odd")
        rule_set = _set(*[_rule(f"r{i}", {"k": str(i)}) for i in range(8)],
                        Rule("odd", "", odd, Price(Mode.PER_USE, Decimal(1))))
        assert rule_set.match({"k": "99", "n": "3"}, ALL).rule_id == "odd"
        assert rule_set.match({"k": "99", "n": "4"}, ALL) is None

    def test_settlement_examples(self):
        """The shipped settlement rules price typical records with the intended rule."""
        settlement = shipped("settlement-inter-network")
        record = {"call_type": "MOC", "peer_operator": "CT", "service_type": "VOICE",
                  "out_trunk_group": "SH-CT-01", "in_trunk_group": "SH-01",
                  "called": "02112345678", "duration": "61"}
        assert settlement.match(record, USAGE).rule_id == "moc-ct-voice"
        assert settlement.match({**record, "out_trunk_group": "BJ-CT-02"}, USAGE
                                ).rule_id == "moc-ct-beijing-trunks"
        assert settlement.match({**record, "out_trunk_group": "BJ-CT-02", "service_type": "VIDEO"},
                                USAGE).rule_id == "moc-ct-video"
        assert settlement.match({**record, "duration": "3"}, USAGE).rule_id == "free-short-calls"
        assert settlement.match({**record, "called": "120"}, USAGE).rule_id == "free-emergency"
        assert settlement.match({**record, "peer_operator": "INTL", "called": "0044207"}, USAGE
                                ).rule_id == "moc-intl-uk"
        assert settlement.match({**record, "peer_operator": "INTL", "called": "0033"}, USAGE
                                ).rule_id == "moc-intl-other"
        assert settlement.match({**record, "peer_operator": "XX"}, USAGE) is None
        assert settlement.match({"call_type": "SMS-MT", "peer_operator": "CU"}, USAGE
                                ).rule_id == "sms-mt-cu"


VALUES = st.sampled_from(["1", "2", "3", "10", "x"])
WHEN = st.dictionaries(
    st.sampled_from(["a", "b", "c"]),
    st.one_of(VALUES, st.lists(VALUES, min_size=1, max_size=3),
              st.builds(lambda v: {"not": v}, VALUES),
              st.builds(lambda v: {"prefix": v}, VALUES),
              st.builds(lambda v: {"min": v}, st.sampled_from(["1", "2", "5"]))),
    max_size=3,
)


@settings(max_examples=300, deadline=None)
@given(whens=st.lists(st.tuples(WHEN, st.sampled_from(list(Mode))), min_size=1, max_size=25),
       record=st.dictionaries(st.sampled_from(["a", "b", "c"]), VALUES),
       modes=st.frozensets(st.sampled_from(list(Mode)), min_size=1))
def test_index_agrees_with_a_linear_scan(whens, record, modes):
    """The indexed match is exactly the first rule, in order, of a mode asked for that holds."""
    rule_list = [_rule(f"r{i}", when, mode) for i, (when, mode) in enumerate(whens)]
    expected = next((r for r in rule_list if r.price.mode in modes and r.when.test(record)), None)
    assert _set(*rule_list).match(record, modes) == expected


class TestRuleBook:
    V1 = _set(name="pc2", version="v1", start="2026-11-01", products=("PC2",))
    V2 = _set(name="pc2", version="v2", start="2026-12-01", end="2027-01-01", products=("PC2",))
    V3 = _set(name="pc2", version="v3", start="2027-02-01", products=())
    OTHER = _set(name="bundle", version="b1", start="2026-11-15", products=("PC2", "CRM"))

    def test_in_force_with_overlapping_ranges(self):
        """The latest effective_from in force wins; the older one is back once it expires."""
        book = RuleBook((self.V1, self.V2, self.V3))
        assert book.in_force("pc2", at("2026-10-31 23:59")) is None
        assert book.in_force("pc2", at("2026-11-01 00:00")).version == "v1"
        assert book.in_force("pc2", at("2026-12-01 00:00")).version == "v2"
        assert book.in_force("pc2", at("2026-12-31 23:59")).version == "v2"
        assert book.in_force("pc2", at("2027-01-01 00:00")).version == "v1"
        assert book.in_force("pc2", at("2027-02-01 00:00")).version == "v3"
        assert book.in_force("other", at("2027-02-01 00:00")) is None

    def test_in_force_is_by_instant_not_by_offset(self):
        """Effective times compare as instants whatever their offset."""
        book = RuleBook((self.V1,))
        assert book.in_force("pc2", datetime(2026, 10, 31, 16, 0, tzinfo=UTC)).version == "v1"
        assert book.in_force("pc2", datetime(2026, 10, 31, 15, 59, tzinfo=UTC)) is None

    def test_tie_goes_to_the_later_version(self):
        """Two versions effective at the same instant: the later one in the book wins."""
        twin = attrs.evolve(self.V1, version="v1b")
        assert RuleBook((self.V1, twin)).in_force("pc2", at("2026-11-02 00:00")).version == "v1b"
        assert RuleBook((twin, self.V1)).in_force("pc2", at("2026-11-02 00:00")).version == "v1"

    def test_for_product(self):
        """The rule set in force listing the product, latest effective_from first."""
        book = RuleBook((self.V1, self.V2, self.V3, self.OTHER))
        assert book.for_product("PC2", at("2026-11-10 00:00")).version == "v1"
        assert book.for_product("PC2", at("2026-11-20 00:00")).version == "b1"
        assert book.for_product("PC2", at("2026-12-10 00:00")).version == "v2"
        assert book.for_product("CRM", at("2026-12-10 00:00")).version == "b1"
        assert book.for_product("SMS", at("2026-12-10 00:00")) is None

    def test_newer_version_dropping_a_product_hands_it_over(self):
        """A version in force that drops the product does not fall back to an older one."""
        book = RuleBook((self.V1, self.V3))
        assert book.for_product("PC2", at("2027-02-02 00:00")) is None
        assert RuleBook((self.V1, self.V3, self.OTHER)).for_product(
            "PC2", at("2027-02-02 00:00")).version == "b1"

    def test_empty_book(self):
        """An empty book has nothing in force."""
        assert RuleBook().in_force("pc2", at("2026-11-01 00:00")) is None
        assert RuleBook().for_product("PC2", at("2026-11-01 00:00")) is None


def test_whole_fen():
    """Prices of whole fen are known as integers; finer prices are not."""
    assert whole_fen(Decimal("0.50")) == 50 and whole_fen(Decimal("3")) == 300
    assert whole_fen(Decimal("0.045")) is None
    assert Price(Mode.DURATION, Decimal("0.01"), connect_fee=Decimal("0.005")).connect_fen is None


def test_parsed_rule_sets_are_indexed_by_product_and_plan():
    """A rule set with many product rules finds the right one (and is equal to itself)."""
    body = "".join(f'[[rule]]\nid = "r{i}"\nmode = "daily"\nunit_price = "{i}"\n'
                   f'[rule.when]\nproduct_code = "P{i % 7}"\nplan_code = "L{i}"\n'
                   for i in range(40))
    rule_set = rules(body)
    assert rule_set.match({"product_code": "P3", "plan_code": "L24"}, ALL).rule_id == "r24"
    assert rule_set.match({"product_code": "P4", "plan_code": "L24"}, ALL) is None
