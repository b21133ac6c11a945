"""``billingcenter usage load FILE --rule-set NAME``: load a usage-record file.

The format, the rejection codes and the exit codes are in ``conf/usage-file.md``:
0 every row accepted or a duplicate, 1 some rows rejected (in the error store) or the
CSV broke off part-way, 2 bad usage or a bad file (nothing stored), 3 the database is
unreachable.  The embedded SQLite database is migrated on the fly; MySQL/MariaDB must
have been migrated with ``billingcenter db upgrade`` first.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import attrs
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from billingcenter.config import Config, load_config
from billingcenter.errors import Unavailable
from billingcenter.jobs.filecheck import FileFormatError
from billingcenter.jobs.files import (
    BATCH_SIZE,
    WRITERS,
    LoadResult,
    Rater,
    load_file,
)
from billingcenter.ledger.engine import create_engine
from billingcenter.ledger.files import FileStore
from billingcenter.ledger.rules import RuleStore

EXIT_REJECTED, EXIT_USAGE, EXIT_UNREACHABLE = 1, 2, 3
T = TypeVar("T")


def _now() -> datetime:
    """The clock, read only here (tests replace it)."""
    return datetime.now(UTC)


def register(subparsers: Any) -> None:
    """Add ``usage`` and its action ``load``."""
    usage = subparsers.add_parser("usage", help="usage-record files: load (check, rate, store)")
    actions = usage.add_subparsers(dest="action", required=True)
    load = actions.add_parser(
        "load", help="load a usage-record file (conf/usage-file.md)",
        description="Check, de-duplicate, rate and store a usage-record CSV file; "
                    "rejected rows go to the error store (billingcenter errors list).")
    load.add_argument("file", metavar="FILE")
    load.add_argument("--rule-set", required=True, metavar="NAME",
                      help="the rule set that rates the file (its version in force per row)")
    load.add_argument("--at", metavar="TIME", type=moment,
                      help="the load's clock, ISO 8601 with offset (default: now)")
    load.add_argument("--batch", type=int, default=BATCH_SIZE, metavar="N",
                      help=f"rows per transaction (default {BATCH_SIZE})")
    load.add_argument("--writers", type=int, default=WRITERS, metavar="W",
                      help=f"batches written at once, one connection each (default {WRITERS})")
    add_database_options(load)
    load.set_defaults(func=cmd_load)


def add_database_options(parser: argparse.ArgumentParser) -> None:
    """``--config``, ``--database-url`` and ``--data-dir``."""
    parser.add_argument("--config", help="ini file (see conf/billingcenter.ini)")
    parser.add_argument("--database-url", help="SQLAlchemy URL (default: SQLite in data dir)")
    parser.add_argument("--data-dir", help="directory of the embedded SQLite database")


def moment(text: str) -> datetime:
    """An argparse type: an ISO 8601 time with an offset (``Z`` allowed)."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 time") from exc
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} needs an offset (e.g. +08:00 or Z)")
    return value.astimezone(UTC)


def config_of(args: argparse.Namespace) -> Config:
    """The configuration, with the database options of the command line applied."""
    config = load_config(Path(args.config) if args.config else None)
    changes: dict[str, Any] = {}
    if args.database_url:
        changes["database_url"] = args.database_url
    if args.data_dir:
        changes["data_dir"] = Path(args.data_dir)
    return attrs.evolve(config, **changes)


def with_engine(config: Config, work: Callable[[Engine], T], connections: int = 1,
                local_infile: bool = False) -> T:
    """Open the configured database (migrating SQLite), run ``work``, close it.

    ``local_infile``: MySQL connections may bulk-load with LOAD DATA LOCAL INFILE
    (``billingcenter.ledger.engine.create_engine``).
    """
    from billingcenter.tap import database_url, prepare_schema

    url = database_url(config)
    prepare_schema(url)
    engine = create_engine(url, pool_size=connections, local_infile=local_infile)
    try:
        return work(engine)
    finally:
        engine.dispose()


def cmd_load(args: argparse.Namespace) -> int:
    """Load the file and print the summary; the exit code says how it went."""
    path = Path(args.file)
    if not path.is_file():
        print(f"error: {path} is not a readable file", file=sys.stderr)
        return EXIT_USAGE
    if args.batch < 1 or args.writers < 1:
        print("error: --batch and --writers must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    config = config_of(args)
    now = args.at or _now()

    def work(engine: Engine) -> int:
        rater = Rater(RuleStore(engine).published_book(), args.rule_set,
                      ZoneInfo(config.business_time_zone))
        if not rater.known:
            print(f"error: rule set {args.rule_set!r} has no published version "
                  "(billingcenter rules list)", file=sys.stderr)
            return EXIT_USAGE
        result = load_file(path, FileStore(engine), rater, now, config.limits, args.batch,
                           args.writers)
        print(summary(result, args.rule_set))
        return EXIT_REJECTED if result.rejected_total or result.failure else 0

    try:
        # the reader and the writers; the configured database is the loader's own
        return with_engine(config, work, args.writers + 1, local_infile=True)
    except FileFormatError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"error: cannot read {path}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (Unavailable, DBAPIError) as exc:
        print(f"error: {unreachable(exc)}", file=sys.stderr)
        return EXIT_UNREACHABLE


def unreachable(exc: Exception) -> str:
    """What to say when the database failed (no SQL, no parameters)."""
    if isinstance(exc, DBAPIError):
        return f"database unavailable: {type(exc.orig).__name__}: {exc.orig}"
    return str(exc)


def summary(result: LoadResult, rule_set: str) -> str:
    """The lines printed after a load."""
    rejected = ""
    if result.rejected:
        by_code = ", ".join(f"{code} {n}" for code, n in sorted(result.rejected.items()))
        rejected = f" ({by_code})"
    rate = result.read / result.seconds if result.seconds > 0 else 0.0
    lines = [
        f"{result.name}: {result.read} read, {result.accepted} accepted, "
        f"{result.duplicates} duplicates, {result.rejected_total} rejected{rejected}",
        f"amount {result.amount_fen} fen ({_yuan(result.amount_fen)} yuan); "
        f"rule set {rule_set}; load {result.file_id}",
        f"{result.seconds:.2f} s, {rate:,.0f} records/s",
    ]
    if result.earlier_loads:
        loads = ", ".join(str(n) for n in result.earlier_loads)
        lines.append(f"note: the same bytes were loaded before (load {loads})")
    if result.rejected_total:
        lines.append("rejected rows: billingcenter errors list --method usage.load")
    if result.failure:
        lines.append(f"error: {result.failure}; the rows before it are stored, "
                     "load the corrected file again")
    return "\n".join(lines)


def _yuan(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}"
