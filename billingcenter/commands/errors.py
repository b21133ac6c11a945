"""``billingcenter errors list|recycle``: the error store (错单) and its recycling.

``list`` prints error records, newest first: open ones (not yet recycled) unless
``--all``; ``--format json`` prints every field, the payload included.

``recycle`` tries open error records again (``billingcenter.jobs.recycle``): intake
refusals of ``installOrder``, ``updateOrderState`` and ``insertServiceOp`` through the
ledger, rejected usage-file rows (``usage.load``) through the file loader -- as stored,
or corrected by ``--fix FILE`` (a usage file; rows matched by ``record_key``).  A record
that succeeds is marked recycled; one that fails again stays open, updated in place
with the latest attempt's code and reason.  Running it again is harmless.

Exit codes: 0 done (everything chosen recycled, or nothing to do), 1 some records
failed again or cannot be recycled as stored, 2 bad usage, 3 database unreachable.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from billingcenter.commands.usage import (
    add_database_options,
    config_of,
    moment,
    unreachable,
    with_engine,
)
from billingcenter.config import Config
from billingcenter.errors import Unavailable
from billingcenter.jobs.filecheck import FileFormatError
from billingcenter.jobs.recycle import RECYCLABLE, Fixes, Recycler, RecycleResult, read_fixes
from billingcenter.ledger.errorstore import ErrorStore, StoredError
from billingcenter.ledger.files import LOAD_METHOD, FileStore
from billingcenter.ledger.rules import RuleStore
from billingcenter.ledger.store import SqlLedger

EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE = 1, 2, 3
REASON_WIDTH = 60


def _now() -> datetime:
    """The clock, read only here (tests replace it)."""
    return datetime.now(UTC)


def register(subparsers: Any) -> None:
    """Add ``errors`` and its actions ``list`` and ``recycle``."""
    errors = subparsers.add_parser("errors", help="the error store: list, recycle")
    actions = errors.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="list error records (open ones by default)")
    _filters(listing)
    listing.add_argument("--since", metavar="TIME",
                         help="received at or after: ISO 8601 with offset, or a business day")
    listing.add_argument("--limit", type=int, default=100, metavar="N")
    listing.add_argument("--all", action="store_true", help="recycled ones too")
    listing.add_argument("--format", choices=("table", "json"), default="table")
    add_database_options(listing)
    listing.set_defaults(func=cmd_list)
    recycle = actions.add_parser("recycle", help="try open error records again")
    _filters(recycle)
    recycle.add_argument("--id", type=int, nargs="+", dest="ids", metavar="N",
                         help="only these error records")
    recycle.add_argument("--rule-set", metavar="NAME",
                         help="rate usage.load rows with this rule set (default: their load's)")
    recycle.add_argument("--fix", metavar="FILE",
                         help="corrected usage.load rows (usage-file format, by record_key)")
    add_database_options(recycle)
    recycle.set_defaults(func=cmd_recycle)


def _filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--method", metavar="M",
                        help=f"one of {', '.join(RECYCLABLE)}, changeAccountNum...")
    parser.add_argument("--code", metavar="C", help="e.g. NO_RULE, UNKNOWN_ORDER")


def cmd_list(args: argparse.Namespace) -> int:
    """Print the chosen error records as a table or JSON."""
    if args.limit < 1:
        print("error: --limit must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    config = config_of(args)
    tz = ZoneInfo(config.business_time_zone)
    try:
        since = _since(args.since, tz) if args.since else None
    except ValueError as exc:
        print(f"error: --since: {exc}", file=sys.stderr)
        return EXIT_USAGE

    def work(engine: Engine) -> int:
        found = ErrorStore(engine).list(args.method, args.code, since, args.limit, args.all)
        if args.format == "json":
            print(json.dumps([_as_json(e) for e in found], ensure_ascii=False, indent=2))
        else:
            _print_table(found, tz)
        return 0

    return _guarded(config, work)


def _since(text: str, tz: ZoneInfo) -> datetime:
    """A time with offset, or a business day (its start in the business time zone)."""
    try:
        return datetime.combine(date.fromisoformat(text), time(), tzinfo=tz)
    except ValueError:
        pass
    try:
        return moment(text)
    except argparse.ArgumentTypeError as exc:
        raise ValueError(str(exc)) from exc


def _as_json(error: StoredError) -> dict[str, Any]:
    try:
        payload: Any = json.loads(error.payload)
    except ValueError:
        payload = error.payload
    return {
        "id": error.error_id, "method": error.method, "key": error.key, "code": error.code,
        "reason": error.reason, "payload": payload,
        "received_at": error.received_at.isoformat(),
        "recycled_at": error.recycled_at.isoformat() if error.recycled_at else None,
    }


def _print_table(found: Sequence[StoredError], tz: ZoneInfo) -> None:
    header = ("ID", "RECEIVED", "METHOD", "CODE", "KEY", "REASON", "RECYCLED")
    rows = [
        (str(e.error_id), _local(e.received_at, tz), e.method, e.code, e.key,
         _clip(e.reason), _local(e.recycled_at, tz) if e.recycled_at else "-")
        for e in found
    ]
    widths = [max(len(cells[i]) for cells in [header, *rows]) for i in range(len(header))]
    for cells in [header, *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(cells, widths,
                                                                  strict=True)).rstrip())


def _local(moment_: datetime, tz: ZoneInfo) -> str:
    return moment_.astimezone(tz).isoformat(timespec="seconds")


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= REASON_WIDTH else text[: REASON_WIDTH - 3] + "..."


def cmd_recycle(args: argparse.Namespace) -> int:
    """Recycle the chosen open error records and print what became of them."""
    if args.fix and args.method not in (None, LOAD_METHOD):
        print(f"error: --fix corrects {LOAD_METHOD} rows only", file=sys.stderr)
        return EXIT_USAGE
    if args.method is not None and args.method not in RECYCLABLE:
        print(f"error: {args.method} records cannot be recycled "
              f"(recyclable: {', '.join(RECYCLABLE)})", file=sys.stderr)
        return EXIT_USAGE
    try:
        fixes = read_fixes(Path(args.fix)) if args.fix else None
    except (OSError, FileFormatError) as exc:
        print(f"error: --fix: {exc}", file=sys.stderr)
        return EXIT_USAGE
    config = config_of(args)
    now = _now()

    def work(engine: Engine) -> int:
        recycler = Recycler(
            ErrorStore(engine), FileStore(engine), SqlLedger(engine, config.limits),
            RuleStore(engine).published_book(), ZoneInfo(config.business_time_zone), now,
            config.limits,
        )
        result = recycler.run(args.method, args.code, args.ids, args.rule_set, fixes)
        print(report(result, fixes))
        return EXIT_FAILED if result.failed_total or sum(result.skipped.values()) else 0

    return _guarded(config, work)


def report(result: RecycleResult, fixes: Fixes | None) -> str:
    """What a recycle run prints: one line per method, then the fix file's use."""
    methods = sorted(set(result.recycled) | set(result.skipped)
                     | {method for method, _ in result.failed},
                     key=lambda m: RECYCLABLE.index(m) if m in RECYCLABLE else len(RECYCLABLE))
    if not methods:
        return "nothing to recycle"
    lines = []
    for method in methods:
        failed = {code: n for (m, code), n in result.failed.items() if m == method}
        codes = ", ".join(f"{code} {n}" for code, n in sorted(failed.items()))
        line = (f"{method}: {result.recycled[method]} recycled, "
                f"{sum(failed.values())} failed again" + (f" ({codes})" if codes else ""))
        if result.skipped[method]:
            line += f", {result.skipped[method]} not recyclable as stored"
        lines.append(line)
    if fixes is not None:
        lines.append(f"{fixes.source}: {result.fixes_used} of {len(fixes.rows)} corrected "
                     "rows used")
    return "\n".join(lines)


def _guarded(config: Config, work: Callable[[Engine], int]) -> int:
    try:
        return int(with_engine(config, work))
    except (Unavailable, DBAPIError) as exc:
        print(f"error: {unreachable(exc)}", file=sys.stderr)
        return EXIT_UNREACHABLE
