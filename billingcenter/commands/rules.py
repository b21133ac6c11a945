"""``billingcenter rules``: rule set versions and their review-before-publish workflow.

``import FILE... --as USER`` stores TOML files as drafts (or edits drafts);
``review``, ``publish`` and ``retire NAME VERSION --as USER`` move a version on;
``list``, ``show`` and ``diff`` read.  ``simulate NAME VERSION --from DAY --to DAY``
re-rates the stored orders and per-use records of those business days with that version
(any status) in memory, writing nothing, and prints per (payer, product) the stored
daily and per-use charges (of that rule set's name or products) beside the simulated
ones.  Who may do what is ``[roles]`` in the config;
``--as`` defaults to ``$BILLINGCENTER_USER``.  A refused step prints ``error: CODE:
why`` and exits 2 having changed nothing; an unreachable database exits 3.

The embedded SQLite database is migrated on the fly; MySQL/MariaDB must have been
migrated with ``billingcenter db upgrade`` first.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs
from sqlalchemy import func, or_, select
from sqlalchemy.engine import Connection, Engine

from billingcenter.config import Config, load_config
from billingcenter.errors import BillingError, Unavailable
from billingcenter.jobs import daily, reading
from billingcenter.ledger.engine import READ_ONLY, create_engine
from billingcenter.ledger.rule_values import RuleVersion
from billingcenter.ledger.rules import RuleStore
from billingcenter.ledger.schema import order_mirror, usage_record
from billingcenter.ledger.schema_rating import charge
from billingcenter.model import Order
from billingcenter.money import from_fen, round_fen
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

EXIT_USAGE, EXIT_UNREACHABLE = 2, 3
MAX_DAYS = 366
USER_ENV = "BILLINGCENTER_USER"


def _now() -> datetime:
    """The clock, read only here (tests replace it)."""
    return datetime.now(UTC)


def register(subparsers: Any) -> None:
    """Add ``rules`` and its actions."""
    rules = subparsers.add_parser("rules", help="rule set versions: import, review, publish...")
    actions = rules.add_subparsers(dest="action", required=True)
    imp = _action(actions, "import", "store TOML files as drafts (or edit your drafts)",
                  cmd_import, who=True)
    imp.add_argument("files", nargs="+", metavar="FILE")
    listing = _action(actions, "list", "list versions", cmd_list)
    listing.add_argument("--rule-set", metavar="NAME")
    show = _action(actions, "show", "show a version and its source", cmd_show, named=True)
    show.add_argument("--audit", action="store_true", help="also print who changed it, when")
    for name, doc in (("review", "draft -> reviewed (not by its author)"),
                      ("publish", "reviewed -> published"),
                      ("retire", "reviewed or published -> retired")):
        step = _action(actions, name, doc, cmd_step, named=True, who=True)
        step.add_argument("--note", default="", help="kept in the audit")
    diff = _action(actions, "diff", "unified diff of two versions' sources", cmd_diff)
    diff.add_argument("name", metavar="NAME")
    diff.add_argument("old", metavar="V1")
    diff.add_argument("new", metavar="V2")
    simulate = _action(actions, "simulate", "re-rate stored days with a version, in memory; "
                       "print the difference to the stored charges", cmd_simulate, named=True)
    simulate.add_argument("--from", dest="first", required=True, type=_day, metavar="DAY",
                          help="first business day (YYYY-MM-DD)")
    simulate.add_argument("--to", dest="last", required=True, type=_day, metavar="DAY",
                          help="last business day (YYYY-MM-DD, inclusive)")


def _action(
    actions: Any,
    name: str,
    doc: str,
    func: Callable[[argparse.Namespace], int],
    named: bool = False,
    who: bool = False,
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = actions.add_parser(name, help=doc, description=doc)
    if named:
        parser.add_argument("name", metavar="NAME", help="rule set name")
        parser.add_argument("version", metavar="VERSION")
    if who:
        parser.add_argument("--as", dest="user", metavar="USER",
                            help=f"who you are (default: ${USER_ENV})")
    parser.add_argument("--config", help="ini file (see conf/billingcenter.ini)")
    parser.add_argument("--database-url", help="SQLAlchemy URL (default: SQLite in data dir)")
    parser.add_argument("--data-dir", help="directory of the embedded SQLite database")
    parser.set_defaults(func=_guarded(func))
    return parser


def _guarded(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Run ``func``; a refusal prints ``error: ...`` and gives the exit code."""

    def run(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except _Usage as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        except ZoneInfoNotFoundError as exc:
            print(f"error: [business] time_zone: unknown time zone {exc}", file=sys.stderr)
            return EXIT_USAGE
        except Unavailable as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_UNREACHABLE
        except BillingError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_USAGE

    return run


def _config(args: argparse.Namespace) -> Config:
    config = load_config(Path(args.config) if args.config else None)
    changes: dict[str, Any] = {}
    if args.database_url:
        changes["database_url"] = args.database_url
    if args.data_dir:
        changes["data_dir"] = Path(args.data_dir)
    return attrs.evolve(config, **changes)


@contextlib.contextmanager
def _ledger(args: argparse.Namespace) -> Iterator[tuple[Config, Engine]]:
    """The configuration and an engine on its database (SQLite migrated on the fly)."""
    from billingcenter.tap import database_url, prepare_schema

    config = _config(args)
    url = database_url(config)
    prepare_schema(url)
    engine = create_engine(url, pool_size=1)
    try:
        yield config, engine
    finally:
        engine.dispose()


def _with_store(args: argparse.Namespace, work: Callable[[RuleStore, ZoneInfo], int]) -> int:
    """Open the configured database, run ``work`` with the rule store, close it."""
    with _ledger(args) as (config, engine):
        return work(RuleStore(engine, config.roles), ZoneInfo(config.business_time_zone))


def _user(args: argparse.Namespace) -> str:
    user = args.user or os.environ.get(USER_ENV, "")
    if not user:
        raise _Usage(f"say who you are: --as USER or ${USER_ENV}")
    return str(user)


class _Usage(Exception):
    """The command line cannot be carried out as given (no user, unreadable file)."""


def cmd_import(args: argparse.Namespace) -> int:
    """Import every file in one transaction: all of them or none."""
    user = _user(args)
    texts = [_read(Path(name)) for name in args.files]

    def work(store: RuleStore, tz: ZoneInfo) -> int:
        for name, done in zip(args.files, store.import_versions(texts, user, _now()),
                              strict=True):
            version = done.version
            print(f"{done.outcome.value} {version.label} ({version.status.value}) from {name}")
        return 0

    return _with_store(args, work)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise _Usage(f"cannot read {path}: {exc}") from exc


def cmd_list(args: argparse.Namespace) -> int:
    """Print one line per version."""

    def work(store: RuleStore, tz: ZoneInfo) -> int:
        header = ("RULE SET", "VERSION", "STATUS", "AUTHOR", "EFFECTIVE FROM", "EFFECTIVE TO")
        _print_table(header, [
            (v.rule_set, v.version, v.status.value, v.author, _time(v.effective_from, tz),
             _time(v.effective_to, tz))
            for v in store.list_versions(args.rule_set)
        ])
        return 0

    return _with_store(args, work)


def cmd_show(args: argparse.Namespace) -> int:
    """Print a version's fields, its source and (``--audit``) its audit."""

    def work(store: RuleStore, tz: ZoneInfo) -> int:
        version = store.get(args.name, args.version)
        print(_describe(version, tz))
        if args.audit:
            print()
            _print_table(("AT", "ACTION", "ACTOR", "FROM", "TO", "NOTE"), [
                (_time(e.at, tz), e.action.value, e.actor,
                 e.from_status.value if e.from_status is not None else "-", e.to_status.value,
                 e.note)
                for e in store.audit(args.name, args.version)
            ])
        print()
        sys.stdout.write(version.source if version.source.endswith("\n")
                         else version.source + "\n")
        return 0

    return _with_store(args, work)


def _describe(version: RuleVersion, tz: ZoneInfo) -> str:
    fields = (
        ("rule set", version.rule_set),
        ("version", version.version),
        ("status", version.status.value),
        ("author", version.author),
        ("effective from", _time(version.effective_from, tz)),
        ("effective to", _time(version.effective_to, tz)),
        ("imported at", _time(version.created_at, tz)),
        ("digest", version.digest),
    )
    return "\n".join(f"{name + ':':<16}{value}" for name, value in fields)


def _print_table(
    header: tuple[str, ...], rows: list[tuple[str, ...]], numeric_from: int | None = None
) -> None:
    """Columns two spaces apart, header first; columns from ``numeric_from`` on right-aligned."""
    lines = [header, *rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    right = len(header) if numeric_from is None else numeric_from
    for line in lines:
        cells = [cell.rjust(width) if i >= right else cell.ljust(width)
                 for i, (cell, width) in enumerate(zip(line, widths, strict=True))]
        print("  ".join(cells).rstrip())


def cmd_step(args: argparse.Namespace) -> int:
    """Review, publish or retire a version as ``--as``."""
    user = _user(args)

    def work(store: RuleStore, tz: ZoneInfo) -> int:
        step = {"review": store.review, "publish": store.publish, "retire": store.retire}
        version = step[args.action](args.name, args.version, user, _now(), args.note)
        print(f"{version.label} is {version.status.value} (by {user})")
        return 0

    return _with_store(args, work)


def cmd_diff(args: argparse.Namespace) -> int:
    """Print the unified diff of two versions' sources (nothing when identical)."""

    def work(store: RuleStore, tz: ZoneInfo) -> int:
        sys.stdout.write(store.diff(args.name, args.old, args.new))
        return 0

    return _with_store(args, work)


def cmd_simulate(args: argparse.Namespace) -> int:
    """Re-rate the days with the version, in memory; print stored vs simulated per pair."""
    first, last = args.first, args.last
    if last < first:
        raise _Usage(f"--to {last} is before --from {first}")
    if (last - first).days >= MAX_DAYS:
        raise _Usage(f"--from {first} --to {last} spans more than {MAX_DAYS} days")
    with _ledger(args) as (config, engine):
        store = RuleStore(engine, config.roles)
        stored = store.get(args.name, args.version)
        rule_set = store.load(args.name, args.version)
        tz = ZoneInfo(config.business_time_zone)
        days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
        result = simulate(engine, rule_set, days, tz, config.rating.chunk)
        published = stored_totals(engine, rule_set, first, last)
    print(f"{stored.label} ({stored.status.value}) applied to every business day from {first} "
          f"to {last} ({tz.key}); stored charges of rule set {stored.rule_set} or its "
          f"products, daily and per-use")
    _print_comparison(published, result.fen)
    if result.unpriced:
        print(f"{result.unpriced} per-use records no rule of {stored.label} prices "
              "(not in the simulated totals)")
    return 0


def _print_comparison(published: dict[Pair, int], simulated: dict[Pair, int]) -> None:
    header = ("PAYER", "PRODUCT", "STORED FEN", "SIMULATED FEN", "DIFF FEN",
              "STORED YUAN", "SIMULATED YUAN", "DIFF YUAN")
    pairs = sorted(set(published) | set(simulated))
    rows = [(payer, product, published.get((payer, product), 0),
             simulated.get((payer, product), 0)) for payer, product in pairs]
    rows.append(("TOTAL", "", sum(r[2] for r in rows), sum(r[3] for r in rows)))
    _print_table(header, [
        (payer, product, str(old), str(new), f"{new - old:+d}", _yuan(old), _yuan(new),
         _yuan(new - old, sign=True))
        for payer, product, old, new in rows
    ], numeric_from=2)


def _yuan(fen: int, sign: bool = False) -> str:
    amount = round_fen(from_fen(fen))
    return f"{amount:+}" if sign else str(amount)


def _day(text: str) -> date:
    """An argparse type: a business day ``YYYY-MM-DD``."""
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a day (YYYY-MM-DD)") from exc


def _time(moment: datetime | None, tz: ZoneInfo) -> str:
    """A time in the business time zone, to the second; ``-`` for none."""
    if moment is None:
        return "-"
    return moment.astimezone(tz).isoformat(timespec="seconds")


# Simulation: the stored history of the days re-rated with one version, in memory.
# The daily part reads exactly what the daily job reads (its window and chunk
# readers), so simulating the published version itself shows no difference.

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
                priors = _priors(conn, orders, bounds) if trial and records else {}
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


def _priors(
    conn: Connection, order_ids: Sequence[str], bounds: tuple[datetime, datetime]
) -> dict[str, int]:
    """op_id -> units of the same order before it in (occurred_at, op_id) order."""
    u = usage_record.c
    before: dict[str, int] = {}
    today: dict[str, list[tuple[datetime, str, int]]] = {}
    for start in range(0, len(order_ids), 1000):
        ids = order_ids[start:start + 1000]
        sums = (select(u.order_id, func.sum(u.quantity))
                .where(u.order_id.in_(ids), u.occurred_at < bounds[0]).group_by(u.order_id))
        before.update((order_id, int(total)) for order_id, total in conn.execute(sums))
        day = select(u.order_id, u.occurred_at, u.op_id, u.quantity).where(
            u.order_id.in_(ids), u.occurred_at >= bounds[0], u.occurred_at < bounds[1])
        for order_id, occurred_at, op_id, quantity in reading.fetch(conn, day, (_T, _UTC, _T, int)):
            today.setdefault(order_id, []).append((occurred_at, op_id, quantity))
    priors: dict[str, int] = {}
    for order_id, found in today.items():
        units = before.get(order_id, 0)
        for _, op_id, quantity in sorted(found):
            priors[op_id] = units
            units += quantity
    return priors


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


__all__: Sequence[str] = ["register", "simulate", "stored_totals"]
