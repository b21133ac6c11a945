"""Small builders shared by the rating tests: times in Shanghai, orders, rule sets."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from billingcenter.model import Order, StateEvent, StateKind
from billingcenter.rating.model import RuleSet
from billingcenter.rating.ruleset import parse_rule_set

TZ = ZoneInfo("Asia/Shanghai")
RULES = Path(__file__).resolve().parents[2] / "conf" / "rules"

HEADER = """
[rule_set]
name = "test"
version = "1"
author = "alice"
effective_from = 2026-01-01T00:00:00+08:00
products = ["P"]
"""


def at(text: str) -> datetime:
    """A Shanghai wall-clock time, ``2026-11-02 23:59`` (seconds optional)."""
    return datetime.fromisoformat(text).replace(tzinfo=TZ)


def order(order_id: str = "o1", activated: str = "2026-11-02 10:00", product: str = "P",
          plan: str = "PLAN", accounts: int = 0, payer: str = "boss") -> Order:
    """An order of ``product`` activated at a Shanghai time."""
    return Order(order_id, payer, "user", product, plan, at(activated), accounts)


def event(event_id: str, kind: str, when: str, order_id: str = "o1") -> StateEvent:
    """A state event at a Shanghai time."""
    return StateEvent(event_id, order_id, StateKind(kind), at(when))


def rules(body: str, header: str = HEADER) -> RuleSet:
    """A rule set from TOML ``[[rule]]`` tables under a standard header."""
    return parse_rule_set(header + body)


def shipped(name: str) -> RuleSet:
    """A rule set shipped in ``conf/rules``."""
    return parse_rule_set((RULES / f"{name}.toml").read_text(encoding="utf-8"))
