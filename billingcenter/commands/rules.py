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
import os
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs
from sqlalchemy.engine import Engine

from billingcenter.config import Config, load_config
from billingcenter.errors import BillingError, Unavailable
from billingcenter.jobs.simulate import Pair, simulate, stored_totals
from billingcenter.ledger.engine import create_engine
from billingcenter.ledger.rule_values import RuleVersion
from billingcenter.ledger.rules import RuleStore
from billingcenter.money import from_fen, round_fen

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
