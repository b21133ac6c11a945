"""Simulation: the stored history of some business days re-rated with one version.

``simulate`` rates, in memory and writing nothing, the orders and per-use records of the
days with a rule set version (any status, whatever its own effective period);
``stored_totals`` sums what is stored for the same days, rule set and products, so
``billingcenter rules simulate`` can print both side by side.  The daily part reads
exactly what the daily job reads (its window and chunk readers), so simulating the
published version itself shows no difference.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import attrs
from sqlalchemy import func, or_, select
from sqlalchemy.engine import Engine

from billingcenter.jobs import daily, reading
from billingcenter.jobs.usage import day_priors
from billingcenter.ledger.engine import READ_ONLY
from billingcenter.ledger.schema import order_mirror, usage_record
from billingcenter.ledger.schema_rating import charge
from billingcenter.model import Order
from billingcenter.rating.daily import rate_day
from billingcenter.rating.days import day_bounds
from billingcenter.rating.model import (
    Charge,
    ChargeKind,
    RatingError,
    RuleBook,
    RuleSet,
    UsageFacts,
)
from billingcenter.rating.usage import rate_usage

Pair = tuple[str, str]  # (payer, product)


@attrs.define
class Simulated:
    """Simulated amounts per (payer, product), and the records no rule priced."""

    fen: dict[Pair, int] = attrs.field(factory=dict)
    unpriced: int = 0

    def add(self, found: Charge) -> None:
        """Count a simulated charge."""
        pair = (found.payer_id, found.product_code)
        self.fen[pair] = self.fen.get(pair, 0) + found.amount_fen


def simulate(
    engine: Engine, rule_set: RuleSet, days: Sequence[date], tz: ZoneInfo, chunk: int
) -> Simulated:
    """Rate the orders and per-use records of ``days`` with ``rule_set``, writing nothing.

    The version prices every day given, whatever its own effective period.
    """
    always = attrs.evolve(rule_set, effective_from=datetime.min.replace(tzinfo=UTC),
                          effective_to=None)
    result = Simulated()
    for day in days:
        start, end = day_bounds(day, tz)
        _simulate_daily(engine, RuleBook((always,)), day, tz, chunk, result)
        _simulate_usage(engine, always, tz, (start, end), chunk, result)
    return result


def _simulate_daily(
    engine: Engine, book: RuleBook, day: date, tz: ZoneInfo, chunk: int, result: Simulated
) -> None:
    for histories in daily.day_histories(engine, book, day, tz, chunk):
        for history, rule_set in histories:
            found = rate_day(history, day, tz, rule_set)
            if found is not None:
                result.add(found)


_T, _UTC = reading.text, reading.utc
_RECORD_FIELDS = (int, _T, _T, _T, _T, int, _UTC, _T, _T, _T, _T, _T, _UTC, int)


def _simulate_usage(
    engine: Engine,
    rule_set: RuleSet,
    tz: ZoneInfo,
    bounds: tuple[datetime, datetime],
    chunk: int,
    result: Simulated,
) -> None:
    """Every stored record of the day of the version's products, rated or not, by id."""
    trial = any(rule.price.trial_uses for rule in rule_set.rules)
    after = 0
    while True:
        with engine.connect() as conn:
            conn.execution_options(**{READ_ONLY: True})
            with conn.begin():
                records = reading.fetch(conn, _records_query(rule_set, bounds, after, chunk),
                                _RECORD_FIELDS)
                orders = sorted({r[2] for r in records})
                priors = day_priors(conn, orders, *bounds) if trial and records else {}
        if not records:
            return
        for record in records:
            _rate_record(record, priors, rule_set, tz, result)
        after = max(r[0] for r in records)


def _records_query(
    rule_set: RuleSet, bounds: tuple[datetime, datetime], after: int, chunk: int
) -> Any:
    u, o = usage_record.c, order_mirror.c
    return (
        select(u.id, u.op_id, u.order_id, u.item_code, u.user_id, u.quantity, u.occurred_at,
               u.attributes, o.payer_id, o.user_id, o.product_code, o.plan_code,
               o.activated_at, o.account_num)
        .select_from(usage_record.join(order_mirror, o.order_id == u.order_id))
        .where(u.id > after, u.occurred_at >= bounds[0], u.occurred_at < bounds[1],
               o.product_code.in_(sorted(rule_set.products)))
        .order_by(u.id)
        .limit(chunk)
    )


def _rate_record(
    record: tuple[Any, ...], priors: dict[str, int], rule_set: RuleSet, tz: ZoneInfo,
    result: Simulated,
) -> None:
    (_, op_id, order_id, item, user, quantity, occurred_at, attributes, payer, order_user,
     product, plan, activated_at, account_num) = record
    order = Order(order_id, payer, order_user, product, plan, activated_at, account_num)
    facts = UsageFacts(op_id, order, item, user, quantity, occurred_at, json.loads(attributes),
                       priors.get(op_id, 0))
    try:
        result.add(rate_usage(facts, tz, rule_set))
    except RatingError:
        result.unpriced += 1


def stored_totals(engine: Engine, rule_set: RuleSet, first: date, last: date) -> dict[Pair, int]:
    """Stored daily and per-use charges of the days, of the set's name or its products."""
    c = charge.c
    query = (
        select(c.payer_id, c.product_code, func.sum(c.amount_fen))
        .where(c.day >= first, c.day <= last,
               c.kind.in_((ChargeKind.DAILY.value, ChargeKind.USAGE.value)),
               or_(c.rule_set == rule_set.name, c.product_code.in_(sorted(rule_set.products))))
        .group_by(c.payer_id, c.product_code)
    )
    with engine.connect() as conn:
        conn.execution_options(**{READ_ONLY: True})
        with conn.begin():
            return {(payer, product): int(total) for payer, product, total in conn.execute(query)}
