"""Conditions: the declarative tests of a rule's ``[rule.when]`` table, compiled once.

Each key of the table names a record attribute; all tests must hold (AND).  A value is

* a string: the attribute equals it (``call_type = "MOC"``);
* a list of strings: the attribute is one of them (``plan_code = ["A", "B"]``);
* ``{ prefix = "010" }`` or ``{ prefix = ["010", "021"] }``: it starts with one of them;
* ``{ min = "0", max = "3600" }`` (either bound alone is fine): it is a decimal number
  within the inclusive bounds, compared as ``Decimal``; bounds are strings or integers;
* ``{ not = ... }`` with any of the above inside: that test fails.

A test on an attribute the record lacks never holds -- a missing value is unknown, not
different, so ``{ not = ... }`` does not hold for it either.  Likewise a value that is
not a plain decimal number (``-?digits[.digits]``) neither lies within a range nor
outside it.  No ``eval``: every test becomes a closure here, once per rule set.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from billingcenter.rating.errors import RuleSetError
from billingcenter.rating.model import Condition
from billingcenter.rating.predicates import Check, ValueTest, all_of

OPERATORS = ("prefix", "min", "max", "not")
_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")


def compile_condition(when: Mapping[str, Any], where: str) -> Condition:
    """Compile a ``[rule.when]`` table; ``where`` names it in error messages."""
    if not isinstance(when, Mapping):
        raise RuleSetError(where, "must be a table of attribute tests")
    checks: list[Check] = []
    equals: dict[str, frozenset[str]] = {}
    for name, spec in when.items():
        field = f"{where}.{name}"
        if not name:
            raise RuleSetError(field, "attribute name must not be empty")
        positive, _, values = _compile_value(spec, field, allow_not=True)
        checks.append((name, positive))
        if values is not None:
            equals[name] = values
    return Condition(test=all_of(checks), source=inline_toml(when), equals=equals,
                     checks=tuple(checks))


def number(value: str | None) -> Decimal | None:
    """The decimal number ``value`` spells, or None when it is not a plain number."""
    if value is None or _NUMBER.fullmatch(value) is None:
        return None
    return Decimal(value)


def _compile_value(
    spec: Any, field: str, allow_not: bool
) -> tuple[ValueTest, ValueTest, frozenset[str] | None]:
    """(test, negated test, the values it requires or None) of one attribute's spec."""
    if isinstance(spec, str):
        return _equal(spec)
    if isinstance(spec, list):
        return _one_of(_strings(spec, field))
    if isinstance(spec, Mapping):
        return _operator(spec, field, allow_not)
    raise RuleSetError(
        field, f"must be a string, a list of strings or a table, not {_kind(spec)}"
    )


def _operator(
    spec: Mapping[str, Any], field: str, allow_not: bool
) -> tuple[ValueTest, ValueTest, frozenset[str] | None]:
    unknown = sorted(set(spec) - set(OPERATORS))
    if unknown:
        raise RuleSetError(
            f"{field}.{unknown[0]}",
            f"unknown operator (known: {', '.join(OPERATORS)})",
        )
    keys = set(spec)
    if keys == {"not"}:
        if not allow_not:
            raise RuleSetError(f"{field}.not", "a 'not' cannot hold another 'not'")
        positive, negative, _ = _compile_value(spec["not"], f"{field}.not", allow_not=False)
        return negative, positive, None
    if keys == {"prefix"}:
        prefixes = spec["prefix"]
        if isinstance(prefixes, str):
            prefixes = [prefixes]
        elif not isinstance(prefixes, list):
            raise RuleSetError(f"{field}.prefix", f"must be a string or a list of strings, "
                                                  f"not {_kind(prefixes)}")
        return _prefix(tuple(sorted(_strings(prefixes, f"{field}.prefix"))))
    if keys and keys <= {"min", "max"}:
        low = _bound(spec.get("min"), f"{field}.min")
        high = _bound(spec.get("max"), f"{field}.max")
        if low is not None and high is not None and low > high:
            raise RuleSetError(field, f"min {low} is greater than max {high}")
        return _range(low, high)
    raise RuleSetError(field, "use exactly one of: prefix, min/max, not")


def _equal(expected: str) -> tuple[ValueTest, ValueTest, frozenset[str]]:
    def positive(value: str | None) -> bool:
        return value == expected

    def negative(value: str | None) -> bool:
        return value is not None and value != expected

    return positive, negative, frozenset((expected,))


def _one_of(allowed: frozenset[str]) -> tuple[ValueTest, ValueTest, frozenset[str]]:
    def positive(value: str | None) -> bool:
        return value in allowed

    def negative(value: str | None) -> bool:
        return value is not None and value not in allowed

    return positive, negative, allowed


def _prefix(prefixes: tuple[str, ...]) -> tuple[ValueTest, ValueTest, None]:
    def positive(value: str | None) -> bool:
        return value is not None and value.startswith(prefixes)

    def negative(value: str | None) -> bool:
        return value is not None and not value.startswith(prefixes)

    return positive, negative, None


def _range(low: Decimal | None, high: Decimal | None) -> tuple[ValueTest, ValueTest, None]:
    inside = _within(_compact(low), _compact(high))

    def positive(value: str | None) -> bool:
        if value is None:
            return False
        if value.isdigit() and value.isascii():  # the common case: whole, non-negative
            return inside(int(value))
        n = number(value)
        return n is not None and inside(n)

    def negative(value: str | None) -> bool:
        n = number(value)
        return n is not None and not inside(n)

    return positive, negative, None


def _within(low: int | Decimal | None, high: int | Decimal | None) -> Callable[[Any], bool]:
    """The bound test of a number (int and Decimal compare exactly with each other)."""
    if low is not None and high is not None:
        return lambda n: low <= n <= high
    if low is not None:
        return lambda n: n >= low
    if high is not None:
        return lambda n: n <= high
    return lambda n: True


def _compact(bound: Decimal | None) -> int | Decimal | None:
    """A whole bound as an int: int-to-int comparisons are the cheapest."""
    if bound is not None and bound == bound.to_integral_value():
        return int(bound)
    return bound


def _strings(values: list[Any], field: str) -> frozenset[str]:
    if not values:
        raise RuleSetError(field, "must not be an empty list")
    for value in values:
        if not isinstance(value, str):
            raise RuleSetError(field, f"must hold strings only, found {_kind(value)}")
        if not value:
            raise RuleSetError(field, "must not hold an empty string")
    return frozenset(values)


def _bound(value: Any, field: str) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, bool) or isinstance(value, float):
        raise RuleSetError(field, f"must be a string or an integer, not {_kind(value)} "
                                  f"(write \"{value}\")")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, str):
        bound = number(value)
        if bound is None:
            raise RuleSetError(field, f"{value!r} is not a decimal number")
        return bound
    raise RuleSetError(field, f"must be a string or an integer, not {_kind(value)}")


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, int):
        return "an integer"
    return f"a {type(value).__name__}"


def inline_toml(value: Any) -> str:
    """``value`` written as a TOML inline value (how a condition shows in explanations)."""
    if isinstance(value, Mapping):
        if not value:
            return "{}"
        inner = ", ".join(f"{_key(k)} = {inline_toml(v)}" for k, v in value.items())
        return "{ " + inner + " }"
    if isinstance(value, list):
        return "[" + ", ".join(inline_toml(v) for v in value) + "]"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # JSON string escapes are valid TOML
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _key(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else inline_toml(name)
