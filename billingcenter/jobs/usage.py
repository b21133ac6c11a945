"""The per-use rating job: stored ``insertServiceOp`` records of a business day, postpaid.

``rate_usage_job`` rates the records that occurred on one business day and have no
charge yet.  They are split into chunks by ``usage_record.id`` and claimed chunk by
chunk (``billingcenter.jobs.claims``); per chunk one query reads the unrated records
with their orders, and, for orders on a plan with a free trial, one query the sum of
the order's units before the day and one its records of the day.  Each record is
priced by ``billingcenter.rating.usage.rate_usage`` with the rule set in force for its
product when it occurred; charges go in with one INSERT (kind ``usage``, key
``op_id``) and the chunk is marked done in the same transaction.

``prior_units`` (for ``trial_uses``) is the sum of the ``quantity`` of the order's
records before this one in ``(occurred_at, op_id)`` order, whatever their state.  For a
duration rule, whose units are increments, that counts records, not increments.  It is
computed only for records of a (product, plan) some rule with a trial may price (it is
0 for the others, which no trial concerns); its cost grows with the order's history.

Records no rule prices (no rule set in force for the product, no rule matching, or a
record the rule cannot use, e.g. a duration rule without a ``duration``) stay unrated
and are kept in ``error_record`` (method ``rate.usage``, code ``NO_RULE``, key the
``op_id``), one open error per record, updated in place when it fails again.  Every
later run of their day tries them again; one that is rated then gets its error closed
(``recycled_at``).  So after the rules are fixed, ``billingcenter rate --day D`` rates
what was left.

Late records: a record that arrives after its day was rated has no charge, so the next
run of its day rates it (the chunk it falls in is claimed again: it holds unrated
records and was finished before that run planned).  The daemon's timer reruns the day
before as well, so a record a day late is rated without anyone asking.  Charges of
the day's other records are not changed: with a trial, a late record is placed by
its own ``occurred_at`` when it is rated, records rated before it are left as they were.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import attrs
from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.engine import Connection, Engine

from billingcenter.errors import NoRule
from billingcenter.jobs.claims import (
    DEFAULT_STALE_AFTER,
    ClaimLost,
    Clock,
    PlannedChunk,
    RunSummary,
    chunk_number,
    day_chunk_size,
    never,
    new_run_id,
    retrying,
    run_chunks,
)
from billingcenter.jobs.reading import fetch, text, utc
from billingcenter.ledger import charges
from billingcenter.ledger.charges import ChargeRow, ChunkResult, Claim
from billingcenter.ledger.coltypes import is_mysql
from billingcenter.ledger.engine import READ_ONLY
from billingcenter.ledger.schema import error_record, order_mirror, usage_record
from billingcenter.ledger.schema_rating import charge
from billingcenter.model import Order
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

JOB = "usage"
ERROR_METHOD = "rate.usage"
REASON_MAX = 1000

RateUsage = Callable[[UsageFacts, ZoneInfo, RuleSet], Charge]

_RECORD_FIELDS = (text, text, text, text, int, utc, text, text, text, text, text, utc, int)


@attrs.frozen
class _Failure:
    """A record the rules could not price, and why."""

    op_id: str
    reason: str
    payload: str


def rate_usage_job(
    engine: Engine,
    book: RuleBook,
    day: date,
    tz: ZoneInfo,
    chunk: int,
    owner: str,
    clock: Clock,
    *,
    rate: RateUsage = rate_usage,
    stale_after: timedelta = DEFAULT_STALE_AFTER,
    run_id: str | None = None,
    stop: Callable[[], bool] = never,
) -> RunSummary:
    """Rate the unrated usage records of business day ``day`` in chunks of ``chunk``.

    ``clock``, ``owner`` and ``stop`` as for ``billingcenter.jobs.daily.rate_day_job``.
    """
    started = clock()
    start, end = day_bounds(day, tz)
    size = day_chunk_size(engine, JOB, day, chunk)
    summary = RunSummary(JOB, day, owner, run_id or new_run_id(), size)
    plan = _plan(engine, start, end, size)
    if plan:
        worker = _Worker(engine, book, tz, start, end, size, rate, clock, summary.run_id)
        summary = run_chunks(
            engine, summary, plan, started, clock, stale_after, _redo, worker.rate_chunk, stop
        )
    return attrs.evolve(summary, seconds=(clock() - started).total_seconds())


def _redo(held: Claim, planned: PlannedChunk, plan_started: datetime) -> bool:
    """A done chunk holding unrated records is rated again by a later run of the day."""
    return held.finished_at is not None and held.finished_at < plan_started


def _unrated() -> Any:
    """``usage_record`` outer-joined to its charge: the charge's id is NULL when unrated."""
    return usage_record.outerjoin(
        charge,
        and_(charge.c.kind == ChargeKind.USAGE.value, charge.c.source_key == usage_record.c.op_id),
    )


def _plan(engine: Engine, start: datetime, end: datetime, size: int) -> list[PlannedChunk]:
    """The chunks holding unrated records of the day."""
    u = usage_record.c
    with engine.connect() as conn:
        number = chunk_number(u.id, size, is_mysql(conn.dialect))
        query = (
            select(number, func.count(), func.max(u.id))
            .select_from(_unrated())
            .where(u.occurred_at >= start, u.occurred_at < end, charge.c.id.is_(None))
            .group_by(number)
            .order_by(number)
        )
        return [PlannedChunk(int(k), int(n), int(top)) for k, n, top in conn.execute(query)]


class _Worker:
    """Rates claimed chunks of one day's usage: reads, prices with the core, writes."""

    def __init__(self, engine: Engine, book: RuleBook, tz: ZoneInfo, start: datetime,
                 end: datetime, size: int, rate: RateUsage, clock: Clock, run_id: str) -> None:
        self._engine = engine
        self._book = book
        self._tz = tz
        self._start, self._end, self._size = start, end, size
        self._rate = rate
        self._clock = clock
        self._run_id = run_id
        self._trials = _trial_plans(book)
        self._rule_sets = _DayRuleSets(book, start, end)

    def rate_chunk(self, held: Claim, planned: PlannedChunk) -> ChunkResult | None:
        """Rate one claimed chunk and mark it done; None if the claim was taken over."""
        lo, hi = planned.chunk * self._size, planned.max_id
        records, priors, open_errors = self._read(lo, hi, reopened=held.last_id is not None)
        rows, failures = self._price(records, priors)

        def write() -> ChunkResult:
            with self._engine.begin() as conn:
                return self._write(conn, held, rows, failures, open_errors, planned, records)

        try:
            return retrying(write)
        except ClaimLost:
            return None

    def _read(
        self, lo: int, hi: int, reopened: bool
    ) -> tuple[list[tuple[Any, ...]], dict[str, int], set[str]]:
        """Unrated records with their orders; prior units by op_id; op_ids with open errors."""
        with self._engine.connect() as conn:
            conn.execution_options(**{READ_ONLY: True})
            with conn.begin():
                records = fetch(conn, self._records_query(lo, hi), _RECORD_FIELDS)
                trial_orders = sorted({r[1] for r in records if _on_trial(self._trials, r)})
                priors = (day_priors(conn, trial_orders, self._start, self._end)
                          if trial_orders else {})
                open_errors = _open_errors(conn, [r[0] for r in records]) if reopened else set()
        return records, priors, open_errors

    def _records_query(self, lo: int, hi: int) -> Any:
        u, o = usage_record.c, order_mirror.c
        return (
            select(
                u.op_id, u.order_id, u.item_code, u.user_id, u.quantity, u.occurred_at,
                u.attributes, o.payer_id, o.user_id, o.product_code, o.plan_code,
                o.activated_at, o.account_num,
            )
            .select_from(_unrated().join(order_mirror, o.order_id == u.order_id))
            .where(
                u.id > lo, u.id <= hi, u.occurred_at >= self._start, u.occurred_at < self._end,
                charge.c.id.is_(None),
            )
        )

    def _price(
        self, records: Sequence[tuple[Any, ...]], priors: Mapping[str, int]
    ) -> tuple[list[ChargeRow], list[_Failure]]:
        now = self._clock()
        orders: dict[str, Order] = {}
        rows: list[ChargeRow] = []
        failures: list[_Failure] = []
        for record in records:
            (op_id, order_id, item, user, quantity, occurred_at, attributes, payer, order_user,
             product, plan, activated_at, account_num) = record
            order = orders.get(order_id)
            if order is None:
                order = orders[order_id] = Order(order_id, payer, order_user, product, plan,
                                                 activated_at, account_num)
            facts = UsageFacts(op_id, order, item, user, quantity, occurred_at,
                               json.loads(attributes), priors.get(op_id, 0))
            rule_set = self._rule_sets.at(product, occurred_at)
            try:
                if rule_set is None:
                    raise RatingError(
                        f"no published rule set prices product {product!r} at "
                        f"{occurred_at.isoformat()}"
                    )
                found = self._rate(facts, self._tz, rule_set)
            except RatingError as exc:
                failures.append(_Failure(op_id, str(exc)[:REASON_MAX], _payload(record)))
                continue
            rows.append(charges.charge_row(found, now, self._run_id))
        return rows, failures

    def _write(
        self,
        conn: Connection,
        held: Claim,
        rows: list[ChargeRow],
        failures: list[_Failure],
        open_errors: set[str],
        planned: PlannedChunk,
        records: Sequence[tuple[Any, ...]],
    ) -> ChunkResult:
        now = self._clock()
        inserted = charges.insert_charges(conn, rows)
        if inserted == len(rows):
            total = sum(row[charges.AMOUNT_INDEX] for row in rows)
        else:  # rated meanwhile by someone else: count only ours
            inserted, total = charges.inserted_totals(conn, rows, self._run_id)
        _keep_errors(conn, failures, open_errors, now)
        settled = sorted(open_errors.intersection(row[charges.KEY_INDEX] for row in rows))
        _close_errors(conn, settled, now)
        result = ChunkResult(planned.max_id, len(records), inserted, total, len(failures))
        if not charges.finish_claim(conn, held, result, now):
            raise ClaimLost(f"chunk {held.chunk} of {held.job} {held.day} was taken over")
        return result


class _DayRuleSets:
    """``RuleBook.for_product`` for moments of one day, looked up once per product when
    no version starts or ends inside the day (the usual case)."""

    def __init__(self, book: RuleBook, start: datetime, end: datetime) -> None:
        self._book = book
        self._start = start
        self._steady = not any(
            start < moment < end
            for version in book.versions
            for moment in (version.effective_from, version.effective_to)
            if moment is not None
        )
        self._found: dict[str, RuleSet | None] = {}

    def at(self, product: str, moment: datetime) -> RuleSet | None:
        """The rule set in force for ``product`` at ``moment`` (a moment of the day)."""
        if not self._steady:
            return self._book.for_product(product, moment)
        if product not in self._found:
            self._found[product] = self._book.for_product(product, self._start)
        return self._found[product]


# product -> plans a rule with a free trial may price (None: any plan of the product)
Trials = Mapping[str, frozenset[str] | None]


def _trial_plans(book: RuleBook) -> Trials:
    """Which (product, plan) pairs a rule with ``trial_uses`` may price: only their
    records need the units before them."""
    found: dict[str, set[str] | None] = {}
    for version in book.versions:
        for rule in version.rules:
            if not rule.price.trial_uses:
                continue
            products = rule.when.equals.get("product_code", version.products)
            plans = rule.when.equals.get("plan_code")
            for product in products:
                known = found.get(product, set())
                found[product] = None if plans is None or known is None else known | plans
    return {p: None if plans is None else frozenset(plans) for p, plans in found.items()}


def _on_trial(trials: Trials, record: tuple[Any, ...]) -> bool:
    """Whether a record's (product, plan) may be priced by a rule with a trial."""
    product, plan = record[9], record[10]
    if product not in trials:
        return False
    plans = trials[product]
    return plans is None or plan in plans


def day_priors(conn: Connection, order_ids: Sequence[str], start: datetime, end: datetime
               ) -> dict[str, int]:
    """op_id -> units of the same order before it (in (occurred_at, op_id) order), for
    the orders' records of ``start <= occurred_at < end``: what trials count."""
    u = usage_record.c
    before: dict[str, int] = {}
    day_records: dict[str, list[tuple[datetime, str, int]]] = {}
    for ids in _slices(order_ids):
        sums = (
            select(u.order_id, func.sum(u.quantity))
            .where(u.order_id.in_(ids), u.occurred_at < start)
            .group_by(u.order_id)
        )
        before.update((order_id, int(total)) for order_id, total in conn.execute(sums))
        today = select(u.order_id, u.occurred_at, u.op_id, u.quantity).where(
            u.order_id.in_(ids), u.occurred_at >= start, u.occurred_at < end
        )
        for order_id, occurred_at, op_id, quantity in fetch(conn, today, (text, utc, text, int)):
            day_records.setdefault(order_id, []).append((occurred_at, op_id, quantity))
    priors: dict[str, int] = {}
    for order_id, found in day_records.items():
        units = before.get(order_id, 0)
        for _, op_id, quantity in sorted(found):
            priors[op_id] = units
            units += quantity
    return priors


def _slices(items: Sequence[str], size: int = 1000) -> list[Sequence[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _payload(record: tuple[Any, ...]) -> str:
    """The record as the error store keeps it: a JSON object of its stored fields."""
    op_id, order_id, item, user, quantity, occurred_at, attributes = record[:7]
    return json.dumps(
        {"opId": op_id, "orderId": order_id, "productCode": record[9], "itemCode": item,
         "userId": user, "payerId": record[7], "quantity": quantity,
         "occurredAt": occurred_at.isoformat(), "attributes": json.loads(attributes)},
        ensure_ascii=False, sort_keys=True,
    )


def _open_errors(conn: Connection, op_ids: Sequence[str]) -> set[str]:
    """The op_ids among ``op_ids`` with an open (not recycled) rating error."""
    found: set[str] = set()
    for ids in _slices(sorted(op_ids)):
        query = select(error_record.c.key).where(
            error_record.c.method == ERROR_METHOD,
            error_record.c.key.in_(ids),
            error_record.c.recycled_at.is_(None),
        )
        found.update(conn.execute(query).scalars())
    return found


def _keep_errors(
    conn: Connection, failures: Sequence[_Failure], open_errors: set[str], now: datetime
) -> None:
    """One open error per failing record: new ones inserted, open ones brought up to date."""
    new = [f for f in failures if f.op_id not in open_errors]
    if new:
        conn.execute(insert(error_record), [
            {"method": ERROR_METHOD, "key": f.op_id, "code": NoRule.code, "reason": f.reason,
             "payload": f.payload, "received_at": now, "recycled_at": None}
            for f in new
        ])
    again = [f for f in failures if f.op_id in open_errors]
    for failure in again:
        conn.execute(
            update(error_record)
            .where(error_record.c.method == ERROR_METHOD, error_record.c.key == failure.op_id,
                   error_record.c.recycled_at.is_(None))
            .values(code=NoRule.code, reason=failure.reason, received_at=now)
        )


def _close_errors(conn: Connection, op_ids: Sequence[str], now: datetime) -> None:
    """Close the open errors of records that are rated now."""
    for ids in _slices(op_ids):
        conn.execute(
            update(error_record)
            .where(error_record.c.method == ERROR_METHOD, error_record.c.key.in_(ids),
                   error_record.c.recycled_at.is_(None))
            .values(recycled_at=now)
        )
