"""Rule sets from TOML: ``parse_rule_set`` checks every field and builds a ``RuleSet``.

The format is documented in ``conf/rules/README.md``.  The parser is strict: unknown
keys, floats where money is meant, options that do not belong to a rule's mode and
duplicate rule ids are errors whose message starts with the field (``rule[2].unit_price:
...``), so a typo can never silently change a price.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from datetime import datetime
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, ROUND_HALF_UP, ROUND_UP, Decimal
from typing import Any

from billingcenter.money import money
from billingcenter.rating.conditions import compile_condition
from billingcenter.rating.errors import RuleSetError
from billingcenter.rating.model import Condition, Mode, Price, Rule, RuleSet, Tier, TierMode

__all__ = ["ROUNDINGS", "ROUNDING_NAMES", "RuleSetError", "parse_rule_set"]

ROUNDINGS = {
    "half_up": ROUND_HALF_UP,
    "half_even": ROUND_HALF_EVEN,
    "down": ROUND_DOWN,
    "up": ROUND_UP,
}
ROUNDING_NAMES = {constant: name for name, constant in ROUNDINGS.items()}

NAME_MAX = 64
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_PRICE = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_HEADER_KEYS = ("name", "version", "author", "description", "effective_from",
                "effective_to", "products")
_RULE_KEYS = ("id", "description", "mode", "unit_price", "rounding", "when")
_MODE_KEYS = {
    Mode.PER_USE: ("tiers", "tier_mode", "trial_uses"),
    Mode.DURATION: ("increment", "connect_fee", "trial_uses"),
    Mode.DAILY: ("trial_days",),
    Mode.DAILY_ACCOUNTS: ("trial_days",),
}
_ALL_MODE_KEYS = sorted({key for keys in _MODE_KEYS.values() for key in keys})


def parse_rule_set(text: str) -> RuleSet:
    """Parse and check the TOML of one rule set; raise ``RuleSetError`` naming the field."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RuleSetError("toml", str(exc)) from exc
    _known(data, ("rule_set", "rule"), "")
    header = _table(data.get("rule_set"), "rule_set")
    _known(header, _HEADER_KEYS, "rule_set")
    effective_from = _moment(header.get("effective_from"), "rule_set.effective_from")
    effective_to = None
    if header.get("effective_to") is not None:
        effective_to = _moment(header["effective_to"], "rule_set.effective_to")
        if effective_to <= effective_from:
            raise RuleSetError("rule_set.effective_to", "must be after effective_from")
    return RuleSet(
        name=_name(header.get("name"), "rule_set.name"),
        version=_name(header.get("version"), "rule_set.version"),
        author=_text(header.get("author"), "rule_set.author"),
        effective_from=effective_from,
        effective_to=effective_to,
        rules=_rules(data.get("rule")),
        products=frozenset(_names(header.get("products", []), "rule_set.products")),
        source=text,
    )


def _rules(value: Any) -> tuple[Rule, ...]:
    if value is None:
        raise RuleSetError("rule", "is required: at least one [[rule]]")
    if not isinstance(value, list) or not value:
        raise RuleSetError("rule", "must be an array of tables ([[rule]]), at least one")
    rules = tuple(_rule(_table(item, f"rule[{i}]"), f"rule[{i}]")
                  for i, item in enumerate(value, 1))
    seen: set[str] = set()
    for i, rule in enumerate(rules, 1):
        if rule.rule_id in seen:
            raise RuleSetError(f"rule[{i}].id", f"duplicate rule id {rule.rule_id!r}")
        seen.add(rule.rule_id)
    return rules


def _rule(data: Mapping[str, Any], where: str) -> Rule:
    rule_id = _name(data.get("id"), f"{where}.id")
    try:
        return _checked_rule(data, where, rule_id)
    except RuleSetError as exc:
        raise RuleSetError(exc.field, f"{exc.problem} (rule {rule_id!r})") from None


def _checked_rule(data: Mapping[str, Any], where: str, rule_id: str) -> Rule:
    mode = _mode(data.get("mode"), f"{where}.mode")
    _known(data, _RULE_KEYS + tuple(_ALL_MODE_KEYS), where)
    for key in _ALL_MODE_KEYS:
        if key in data and key not in _MODE_KEYS[mode]:
            raise RuleSetError(f"{where}.{key}", f"does not apply to mode {mode.value!r}")
    return Rule(
        rule_id=rule_id,
        description=_text(data.get("description", ""), f"{where}.description", empty=True),
        when=_when(data.get("when", {}), f"{where}.when"),
        price=_price(data, mode, where),
    )


def _when(value: Any, where: str) -> Condition:
    return compile_condition(_table(value, where), where)


def _price(data: Mapping[str, Any], mode: Mode, where: str) -> Price:
    tiers: tuple[Tier, ...] = ()
    if "tiers" in data:
        tiers = _tiers(data["tiers"], f"{where}.tiers")
        if "unit_price" in data:
            raise RuleSetError(f"{where}.unit_price", "not allowed with tiers (the tiers "
                                                      "set the prices)")
        unit_price = tiers[0].price
    else:
        unit_price = _money(data.get("unit_price"), f"{where}.unit_price")
    if "tier_mode" in data and not tiers:
        raise RuleSetError(f"{where}.tier_mode", "only applies with tiers")
    if mode is Mode.DURATION and "increment" not in data:
        raise RuleSetError(f"{where}.increment", "is required for mode 'duration' (seconds "
                                                  "per charged unit, e.g. 6 or 60)")
    return Price(
        mode=mode,
        unit_price=unit_price,
        tiers=tiers,
        tier_mode=_choice(data.get("tier_mode", "graduated"), TierMode, f"{where}.tier_mode"),
        increment=_count(data.get("increment", 60), f"{where}.increment", least=1),
        connect_fee=_money(data.get("connect_fee", "0"), f"{where}.connect_fee"),
        rounding=_rounding(data.get("rounding", "half_up"), f"{where}.rounding"),
        trial_days=_count(data.get("trial_days", 0), f"{where}.trial_days", least=0),
        trial_uses=_count(data.get("trial_uses", 0), f"{where}.trial_uses", least=0),
    )


def _tiers(value: Any, where: str) -> tuple[Tier, ...]:
    if not isinstance(value, list) or not value:
        raise RuleSetError(where, "must be a non-empty array of { upto, price } tables")
    tiers: list[Tier] = []
    for i, item in enumerate(value, 1):
        field = f"{where}[{i}]"
        table = _table(item, field)
        _known(table, ("upto", "price"), field)
        last = i == len(value)
        upto = None
        if "upto" in table:
            if last:
                raise RuleSetError(f"{field}.upto", "the last tier must have no upto "
                                                     "(it takes every unit above)")
            upto = Decimal(_count(table["upto"], f"{field}.upto", least=1, text_ok=True))
            if tiers and upto <= (tiers[-1].upto or 0):
                raise RuleSetError(f"{field}.upto", "must be greater than the previous upto")
        elif not last:
            raise RuleSetError(f"{field}.upto", "is required on every tier but the last")
        tiers.append(Tier(upto=upto, price=_money(table.get("price"), f"{field}.price")))
    return tuple(tiers)


def _known(data: Mapping[str, Any], allowed: tuple[str, ...], where: str) -> None:
    for key in data:
        if key not in allowed:
            field = f"{where}.{key}" if where else key
            raise RuleSetError(field, f"unknown field (known: {', '.join(allowed)})")


def _table(value: Any, field: str) -> Mapping[str, Any]:
    if value is None:
        raise RuleSetError(field, "is required")
    if not isinstance(value, Mapping):
        raise RuleSetError(field, f"must be a table, not {_kind(value)}")
    return value


def _text(value: Any, field: str, empty: bool = False) -> str:
    if value is None:
        raise RuleSetError(field, "is required")
    if not isinstance(value, str):
        raise RuleSetError(field, f"must be a string, not {_kind(value)}")
    if not empty and not value.strip():
        raise RuleSetError(field, "must not be empty")
    return value


def _name(value: Any, field: str) -> str:
    text = _text(value, field)
    if len(text) > NAME_MAX or _NAME.fullmatch(text) is None:
        raise RuleSetError(field, f"{text!r} must be letters, digits, '.', '_' or '-' "
                                  f"(at most {NAME_MAX}, starting with a letter or digit)")
    return text


def _names(value: Any, field: str) -> list[str]:
    if not isinstance(value, list):
        raise RuleSetError(field, f"must be a list of strings, not {_kind(value)}")
    return [_name(item, field) for item in value]


def _money(value: Any, field: str) -> Decimal:
    if value is None:
        raise RuleSetError(field, "is required")
    if not isinstance(value, str):
        raise RuleSetError(field, f"must be a string such as \"0.50\", not {_kind(value)} "
                                  f"(write \"{value}\"; money is never a float)")
    if _PRICE.fullmatch(value) is None:
        raise RuleSetError(field, f"{value!r} is not an amount in yuan such as \"0.50\" "
                                  f"(digits, optionally a point and digits; not negative)")
    return money(value)


def _moment(value: Any, field: str) -> datetime:
    if value is None:
        raise RuleSetError(field, "is required")
    if not isinstance(value, datetime):
        raise RuleSetError(field, f"must be a TOML date-time with an offset, such as "
                                  f"2026-11-01T00:00:00+08:00, not {_kind(value)}")
    if value.tzinfo is None:
        raise RuleSetError(field, "must carry a UTC offset (e.g. +08:00)")
    return value


def _count(value: Any, field: str, least: int, text_ok: bool = False) -> int:
    if text_ok and isinstance(value, str):
        if not value.isascii() or not value.isdigit():
            raise RuleSetError(field, f"{value!r} is not a whole number")
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise RuleSetError(field, f"must be an integer, not {_kind(value)}")
    if value < least:
        raise RuleSetError(field, f"must be {least} or more, got {value}")
    return value


def _mode(value: Any, field: str) -> Mode:
    return _choice(value, Mode, field)


def _choice(value: Any, enum: Any, field: str) -> Any:
    names = ", ".join(member.value for member in enum)
    if value is None:
        raise RuleSetError(field, f"is required (one of: {names})")
    if not isinstance(value, str):
        raise RuleSetError(field, f"must be a string (one of: {names}), not {_kind(value)}")
    try:
        return enum(value)
    except ValueError:
        raise RuleSetError(field, f"unknown value {value!r} (one of: {names})") from None


def _rounding(value: Any, field: str) -> str:
    names = ", ".join(ROUNDINGS)
    if not isinstance(value, str) or value not in ROUNDINGS:
        raise RuleSetError(field, f"unknown rounding {value!r} (one of: {names})")
    return ROUNDINGS[value]


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, datetime):
        return "a date-time"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, Mapping):
        return "a table"
    return f"a {type(value).__name__}"
