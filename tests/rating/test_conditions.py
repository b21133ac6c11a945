"""Tests of billingcenter.rating.conditions: the declarative record tests."""

from __future__ import annotations

import pytest

from billingcenter.rating.conditions import compile_condition, inline_toml, number
from billingcenter.rating.ruleset import RuleSetError


def holds(when, record) -> bool:
    return compile_condition(when, "when").test(record)


class TestEquality:
    def test_equal(self):
        """A string test holds only for that exact string."""
        assert holds({"call_type": "MOC"}, {"call_type": "MOC"})
        assert not holds({"call_type": "MOC"}, {"call_type": "MTC"})
        assert not holds({"call_type": "MOC"}, {"call_type": "moc"})

    def test_missing(self):
        """A missing attribute never equals anything."""
        assert not holds({"call_type": "MOC"}, {"peer_operator": "CT"})

    def test_equals_are_recorded_for_the_index(self):
        """Equality and set tests are exposed for indexing; other tests are not."""
        condition = compile_condition(
            {"a": "1", "b": ["2", "3"], "c": {"prefix": "4"}, "d": {"not": "5"}}, "when")
        assert condition.equals == {"a": frozenset({"1"}), "b": frozenset({"2", "3"})}
        assert [name for name, _ in condition.checks] == ["a", "b", "c", "d"]


class TestSet:
    def test_one_of(self):
        """A list test holds for any of its strings."""
        when = {"plan_code": ["A", "B"]}
        assert holds(when, {"plan_code": "A"}) and holds(when, {"plan_code": "B"})
        assert not holds(when, {"plan_code": "C"})

    def test_missing(self):
        """A missing attribute is in no set."""
        assert not holds({"plan_code": ["A", "B"]}, {})


class TestPrefix:
    def test_one_prefix(self):
        """A prefix test holds for values starting with it, the prefix itself included."""
        when = {"called": {"prefix": "010"}}
        assert holds(when, {"called": "01065529988"}) and holds(when, {"called": "010"})
        assert not holds(when, {"called": "02165529988"})
        assert not holds(when, {"called": "01"})

    def test_many_prefixes(self):
        """A list of prefixes holds when any matches."""
        when = {"called": {"prefix": ["010", "021"]}}
        assert holds(when, {"called": "0215"}) and holds(when, {"called": "0105"})
        assert not holds(when, {"called": "0755"})

    def test_missing(self):
        """A missing attribute has no prefix."""
        assert not holds({"called": {"prefix": "010"}}, {})


class TestRange:
    @pytest.mark.parametrize("value, expected", [
        ("0", True), ("3600", True), ("3600.0", True), ("1800.5", True),
        ("3600.01", False), ("-1", False), ("-0.001", False), ("99999", False),
    ])
    def test_inclusive_bounds(self, value, expected):
        """Both bounds are inclusive and compared as decimals."""
        assert holds({"duration": {"min": "0", "max": "3600"}}, {"duration": value}) is expected

    def test_decimal_not_float_comparison(self):
        """Bounds compare exactly: 0.3 is within [0.3, ...] though 0.1 + 0.2 floats are not."""
        assert holds({"x": {"min": "0.3"}}, {"x": "0.3"})
        assert not holds({"x": {"max": "0.3"}}, {"x": "0.30000000000000004"})

    def test_one_bound(self):
        """Either bound alone is a half-open range; integers are fine as bounds."""
        assert holds({"d": {"min": 60}}, {"d": "61"}) and not holds({"d": {"min": 60}}, {"d": "59"})
        assert holds({"d": {"max": "3"}}, {"d": "3"}) and not holds({"d": {"max": "3"}}, {"d": "4"})

    @pytest.mark.parametrize("value", ["abc", "", "1e3", " 5", "5 ", "+5", "NaN", "Infinity",
                                       "1_000", "٣", "5."])
    def test_non_numeric_never_matches(self, value):
        """A value that is not a plain decimal number is neither inside nor outside."""
        assert not holds({"d": {"min": "-100000", "max": "100000"}}, {"d": value})
        assert not holds({"d": {"not": {"min": "-100000", "max": "100000"}}}, {"d": value})

    def test_missing(self):
        """A missing attribute is in no range."""
        assert not holds({"d": {"min": "0"}}, {})

    def test_number(self):
        """number() reads plain decimals only."""
        assert number("-12.50") == number("-12.5")
        assert number("1e3") is None and number(None) is None


class TestNot:
    def test_not_equal(self):
        """not of a string holds for any other present value."""
        when = {"peer_operator": {"not": "CMCC"}}
        assert holds(when, {"peer_operator": "CT"}) and not holds(when, {"peer_operator": "CMCC"})

    def test_not_in(self):
        """not of a list holds for values outside it."""
        when = {"peer_operator": {"not": ["CMCC", "CT"]}}
        assert holds(when, {"peer_operator": "CU"}) and not holds(when, {"peer_operator": "CT"})

    def test_not_prefix(self):
        """not of a prefix holds for values not starting with it."""
        when = {"called": {"not": {"prefix": ["00", "+"]}}}
        assert holds(when, {"called": "010"}) and not holds(when, {"called": "0044"})

    def test_not_range(self):
        """not of a range holds for numbers outside it."""
        when = {"d": {"not": {"max": "3"}}}
        assert holds(when, {"d": "4"}) and not holds(when, {"d": "3"})

    def test_missing_attribute_does_not_satisfy_not(self):
        """A missing value is unknown, not different: not does not hold for it."""
        assert not holds({"peer_operator": {"not": "CMCC"}}, {})
        assert not holds({"called": {"not": {"prefix": "00"}}}, {})


class TestCombination:
    @pytest.mark.parametrize("size", [0, 1, 2, 3, 4, 7])
    def test_all_tests_must_hold(self, size):
        """Every test of the table must hold, whatever the number of tests."""
        when = {f"a{i}": str(i) for i in range(size)}
        record = {f"a{i}": str(i) for i in range(size)}
        assert holds(when, record)
        for i in range(size):
            assert not holds(when, {**record, f"a{i}": "other"})
            assert not holds(when, {k: v for k, v in record.items() if k != f"a{i}"})

    def test_empty_condition_always_holds(self):
        """An empty table holds for every record."""
        assert holds({}, {}) and holds({}, {"x": "y"})

    def test_source_is_inline_toml(self):
        """The condition keeps its source as inline TOML for explanations."""
        condition = compile_condition(
            {"called": {"prefix": ["010"]}, "d": {"min": 0}, "x": 'a"b'}, "when")
        assert condition.source == '{ called = { prefix = ["010"] }, d = { min = 0 }, x = "a\\"b" }'
        assert inline_toml({}) == "{}"


KNOWN = "(known: prefix, min, max, not)"
KINDS = "must be a string, a list of strings or a table"


class TestErrors:
    @pytest.mark.parametrize("when, message", [
        ({"a": {"regex": "x"}}, f"rule[1].when.a.regex: unknown operator {KNOWN}"),
        ({"a": {"in": ["x"]}}, f"rule[1].when.a.in: unknown operator {KNOWN}"),
        ({"a": 1}, f"rule[1].when.a: {KINDS}, not an integer"),
        ({"a": True}, f"rule[1].when.a: {KINDS}, not a boolean"),
        ({"a": []}, "rule[1].when.a: must not be an empty list"),
        ({"a": ["x", 2]}, "rule[1].when.a: must hold strings only, found an integer"),
        ({"a": [""]}, "rule[1].when.a: must not hold an empty string"),
        ({"a": {"prefix": 10}}, "rule[1].when.a.prefix: must be a string or a list of strings, "
                                "not an integer"),
        ({"a": {"min": 1.5}}, 'rule[1].when.a.min: must be a string or an integer, not a float '
                              '(write "1.5")'),
        ({"a": {"max": "ten"}}, "rule[1].when.a.max: 'ten' is not a decimal number"),
        ({"a": {"min": "5", "max": "1"}}, "rule[1].when.a: min 5 is greater than max 1"),
        ({"a": {"prefix": "1", "min": "1"}}, "rule[1].when.a: use exactly one of: prefix, "
                                             "min/max, not"),
        ({"a": {}}, "rule[1].when.a: use exactly one of: prefix, min/max, not"),
        ({"a": {"not": {"not": "x"}}}, "rule[1].when.a.not.not: a 'not' cannot hold another 'not'"),
        ({"a": {"not": 5}}, "rule[1].when.a.not: must be a string, a list of strings or a table, "
                            "not an integer"),
    ])
    def test_refused(self, when, message):
        """Malformed tests are refused with the field and the reason."""
        with pytest.raises(RuleSetError) as caught:
            compile_condition(when, "rule[1].when")
        assert str(caught.value) == message

    def test_not_a_table(self):
        """The condition itself must be a table."""
        with pytest.raises(RuleSetError, match=r"^rule\[1\]\.when: must be a table"):
            compile_condition(["x"], "rule[1].when")  # type: ignore[arg-type]
