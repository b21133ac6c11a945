"""``billingcenter rate --day YYYY-MM-DD``: rate business days by hand.

Runs the daily job (``billingcenter.jobs.daily``) and the per-use job
(``billingcenter.jobs.usage``) for each day from ``--day`` to ``--to`` (inclusive) with
the published rule sets, and prints what this process did.  Safe to run at any time,
again, or in several processes at once: work is claimed through the database and a
charge is never written twice.  A day is rated only once it has closed in the business
time zone.  A rerun rates again what changed since (late orders, usage records, state
events, account changes) and counts the stored charges the current history prices
otherwise; ``--differences`` lists those of the days (reading only) for an operator to
settle: charges are never changed.  Exit codes: 0 done (records no rule prices are
listed, not failures), 2 bad usage, 3 the database is unreachable.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import attrs
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from billingcenter.config import Config, load_config
from billingcenter.errors import Unavailable
from billingcenter.jobs.claims import RunSummary
from billingcenter.jobs.daily import day_differences, rate_day_job
from billingcenter.jobs.usage import ERROR_METHOD, rate_usage_job
from billingcenter.ledger.engine import create_engine
from billingcenter.ledger.rules import RuleStore

EXIT_USAGE, EXIT_UNREACHABLE = 2, 3
MAX_DAYS = 366
JOBS = ("daily", "usage")


def _now() -> datetime:
    """The clock, read only here (tests replace it)."""
    return datetime.now(UTC)


def register(subparsers: Any) -> None:
    """Add the ``rate`` subcommand."""
    rate = subparsers.add_parser(
        "rate", help="rate business days: orders per day and stored per-use records",
        description="Rate closed business days: the daily job (one charge per order and "
                    "day it was active) and the per-use job (stored insertServiceOp "
                    "records without a charge).  Rerunning is safe.")
    rate.add_argument("--day", required=True, type=day_of, metavar="YYYY-MM-DD",
                      help="the (first) business day to rate")
    rate.add_argument("--to", type=day_of, metavar="YYYY-MM-DD",
                      help="the last day to rate (default: --day)")
    rate.add_argument("--only", choices=JOBS, help="run one job only")
    rate.add_argument("--differences", action="store_true",
                      help="rate nothing: list the stored day charges that the current "
                           "order history no longer supports or prices otherwise")
    rate.add_argument("--owner", metavar="NAME",
                      help="this process's name in work claims (default host:pid); "
                           "unique among processes running at once")
    rate.add_argument("--chunk", type=int, metavar="N",
                      help="orders or records per claimed chunk (default [rating] chunk)")
    rate.add_argument("--config", help="ini file (see conf/billingcenter.ini)")
    rate.add_argument("--database-url", help="SQLAlchemy URL (default: SQLite in data dir)")
    rate.add_argument("--data-dir", help="directory of the embedded SQLite database")
    rate.set_defaults(func=cmd_rate)


def day_of(text: str) -> date:
    """An argparse type: a business day ``YYYY-MM-DD``."""
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a day (YYYY-MM-DD)") from exc


def default_owner() -> str:
    """``host:pid``: unique among the processes running at once."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _config(args: argparse.Namespace) -> Config:
    config = load_config(Path(args.config) if args.config else None)
    changes: dict[str, Any] = {}
    if args.database_url:
        changes["database_url"] = args.database_url
    if args.data_dir:
        changes["data_dir"] = Path(args.data_dir)
    return attrs.evolve(config, **changes)


def _days(args: argparse.Namespace, tz: ZoneInfo, now: datetime) -> list[date] | str:
    """The days to rate, or why not."""
    last = args.to or args.day
    if last < args.day:
        return f"--to {last} is before --day {args.day}"
    count = (last - args.day).days + 1
    if count > MAX_DAYS:
        return f"{count} days asked for; at most {MAX_DAYS} at once"
    today = now.astimezone(tz).date()
    if last >= today:
        return f"{last} has not closed yet in {tz.key} (today is {today})"
    return [args.day + timedelta(days=i) for i in range(count)]


def cmd_rate(args: argparse.Namespace) -> int:
    """Rate the days asked for and print one line per day and job."""
    from billingcenter.tap import database_url, prepare_schema

    config = _config(args)
    tz = ZoneInfo(config.business_time_zone)
    days = _days(args, tz, _now())
    chunk = config.rating.chunk if args.chunk is None else args.chunk
    if isinstance(days, str) or chunk < 1:
        print(f"error: {days if isinstance(days, str) else '--chunk must be positive'}",
              file=sys.stderr)
        return EXIT_USAGE
    owner = args.owner or default_owner()
    jobs = (args.only,) if args.only else JOBS
    try:
        url = database_url(config)
        prepare_schema(url)
        engine = create_engine(url, pool_size=2)
        try:
            if args.differences:
                return _differences(engine, days, tz, chunk)
            return _rate(engine, days, jobs, tz, chunk, owner)
        finally:
            engine.dispose()
    except (Unavailable, DBAPIError) as exc:
        reason = f"{type(exc.orig).__name__}: {exc.orig}" if isinstance(exc, DBAPIError) else exc
        print(f"error: database unavailable: {reason}", file=sys.stderr)
        return EXIT_UNREACHABLE


def _rate(
    engine: Engine, days: list[date], jobs: tuple[str, ...], tz: ZoneInfo, chunk: int,
    owner: str,
) -> int:
    book = RuleStore(engine).published_book()
    if not book.versions:
        print("note: no rule set is published (billingcenter rules list): nothing is priced")
    run: dict[str, Callable[..., RunSummary]] = {"daily": rate_day_job, "usage": rate_usage_job}
    errors = differences = 0
    for day in days:
        for job in jobs:
            summary = run[job](engine, book, day, tz, chunk, owner, _now)
            print(describe(summary))
            errors += summary.errors
            differences += summary.differences
    if errors:
        print(f"{errors} records no rule prices stay unrated: "
              f"billingcenter errors list --method {ERROR_METHOD}")
    if differences:
        print(f"{differences} stored charges differ from the current history: "
              "billingcenter rate --day D --differences")
    return 0


def _differences(engine: Engine, days: list[date], tz: ZoneInfo, chunk: int) -> int:
    """Print each stored day charge the current history prices otherwise, and the totals."""
    book = RuleStore(engine).published_book()
    count = over = under = 0
    for day in days:
        for found in day_differences(engine, book, day, tz, chunk):
            now = "nothing" if found.current_fen is None else f"{found.current_fen} fen"
            bill = "billed" if found.billed else "not billed"
            print(f"{found.source_key} payer {found.payer_id}: charged {found.stored_fen} fen, "
                  f"the current history {now} ({bill})")
            count, over, under = count + 1, over + found.over_fen, under + found.under_fen
    print(f"{count} differences: {_yuan(over)} yuan charged too much, "
          f"{_yuan(under)} yuan too little")
    return 0


def describe(summary: RunSummary) -> str:
    """One line about a job's run of a day."""
    what = "orders" if summary.job == "daily" else "records"
    line = (
        f"{summary.day} {summary.job}: {summary.chunks} of {summary.planned} chunks rated, "
        f"{summary.seen} {what}, {summary.charges} charges, {_yuan(summary.amount_fen)} yuan, "
        f"{summary.seconds:.2f} s"
    )
    notes = []
    if summary.skipped:
        notes.append(f"{summary.skipped} chunks done before or held by another owner")
    if summary.lost:
        notes.append(f"{summary.lost} chunks taken over by another owner")
    if summary.errors:
        notes.append(f"{summary.errors} records without a rule")
    if summary.differences:
        notes.append(f"{summary.differences} stored charges differ from the current history: "
                     f"{_yuan(summary.over_fen)} yuan too much, "
                     f"{_yuan(summary.under_fen)} yuan too little")
    return line + (f" ({'; '.join(notes)})" if notes else "")


def _yuan(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}"
