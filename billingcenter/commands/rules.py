"""``billingcenter rules``: rule set versions and their review-before-publish workflow.

``import FILE... --as USER`` stores TOML files as drafts (or edits drafts);
``review``, ``publish`` and ``retire NAME VERSION --as USER`` move a version on;
``list``, ``show`` and ``diff`` read.  Who may do what is ``[roles]`` in the config;
``--as`` defaults to ``$BILLINGCENTER_USER``.  A refused step prints ``error: CODE:
why`` and exits 2 having changed nothing; an unreachable database exits 3.

The embedded SQLite database is migrated on the fly; MySQL/MariaDB must have been
migrated with ``billingcenter db upgrade`` first.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import attrs

from billingcenter.config import Config, load_config
from billingcenter.errors import BillingError, Unavailable
from billingcenter.ledger.engine import create_engine
from billingcenter.ledger.rules import RuleStore, RuleVersion

EXIT_USAGE, EXIT_UNREACHABLE = 2, 3
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


def _with_store(args: argparse.Namespace, work: Callable[[RuleStore, ZoneInfo], int]) -> int:
    """Open the configured database (migrating SQLite), run ``work``, close it."""
    from billingcenter.tap import database_url, prepare_schema

    config = _config(args)
    url = database_url(config)
    prepare_schema(url)
    engine = create_engine(url, pool_size=1)
    try:
        return work(RuleStore(engine, config.roles), ZoneInfo(config.business_time_zone))
    finally:
        engine.dispose()


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


def _print_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    """Left-aligned columns two spaces apart, header first."""
    lines = [header, *rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for line in lines:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True))
              .rstrip())


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


def _time(moment: datetime | None, tz: ZoneInfo) -> str:
    """A time in the business time zone, to the second; ``-`` for none."""
    if moment is None:
        return "-"
    return moment.astimezone(tz).isoformat(timespec="seconds")


__all__: Sequence[str] = ["register"]
