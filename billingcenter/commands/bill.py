"""``billingcenter bill``: bill runs by hand, and reading bills.

* ``bill --date YYYY-MM-DD [--chunk N] [--sum-range N] [--workers N]``: the bill run
  of a billing date (``billingcenter.jobs.billing``): every POSTPAID payer whose billing
  day (its own, else ``[billing] day``) is the date's day gets one bill of its unbilled
  charges of the business days before the date.  Prints what the run did.  Safe to run
  again, after a crash, or in several processes at once (work is claimed through the
  database; a bill is unique per payer and date).  A date is refused until it has
  started in the business time zone (its charges are those of the days before it).
  A date whose run is done is never billed again (charges rated since wait for the
  next bills); while another date's run is unfinished the run is refused (exit 4: bill
  that date again to finish it).  Charges are summed in ranges of ``--sum-range``
  charge ids (2,000,000), bills written in chunks of ``--chunk`` payers ([billing] chunk);
  ``--workers`` (default ``[billing] workers``, 2) runs ranges and chunks in that many
  threads, each with its own connection.  A crashed run's work is taken over by the next run after
  ``--stale-after`` seconds (600), at once when it uses the crashed run's ``--owner``
  name.
* ``bill list [--payer P] [--date D] [--status S] [--limit N]``: bills, newest first.
* ``bill show BILL_ID [--charges]``: a bill and its lines (one per order and product);
  ``--charges`` lists under each line the charges it is made of, each with its rule
  set, version, rule, units and unit price.

Exit codes: 0 done, 1 no such bill, 2 bad usage, 3 the database is unreachable,
4 another date's bill run is unfinished.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from billingcenter.commands.rate import day_of, default_owner
from billingcenter.commands.usage import add_database_options, config_of, with_engine
from billingcenter.config import MAX_BILL_WORKERS, Config
from billingcenter.errors import Unavailable
from billingcenter.jobs.bill_sums import DEFAULT_RANGE
from billingcenter.jobs.billing import BillRunBusy, describe, run_workers
from billingcenter.ledger import bill_views
from billingcenter.ledger.bill_views import Bill, BillLine
from billingcenter.ledger.engine import READ_ONLY
from billingcenter.ledger.schema_billing import ARREARS, EMPTY, OWED, SETTLED

EXIT_NOT_FOUND, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_BUSY = 1, 2, 3, 4
T = TypeVar("T")


def _now() -> datetime:
    """The clock, read only here (tests replace it)."""
    return datetime.now(UTC)


def register(subparsers: Any) -> None:
    """Add ``bill`` (a run) and its actions ``list`` and ``show``."""
    bill = subparsers.add_parser(
        "bill", help="bill runs (bill --date YYYY-MM-DD); bill list|show",
        description="Make the bills of a billing date, or read bills (list, show).")
    bill.add_argument("--date", type=day_of, metavar="YYYY-MM-DD",
                      help="the billing date to run (charges of the days before it)")
    bill.add_argument("--chunk", type=int, metavar="N",
                      help="payers per claimed chunk (default [billing] chunk)")
    bill.add_argument("--sum-range", type=int, default=DEFAULT_RANGE, metavar="N",
                      help="charge ids per range summed in one transaction (1000000)")
    bill.add_argument("--workers", type=int, metavar="N",
                      help="threads sharing the run, one connection each "
                           "(default [billing] workers)")
    bill.add_argument("--owner", metavar="NAME",
                      help="this process's name in work claims (default host:pid)")
    bill.add_argument("--stale-after", type=int, default=600, metavar="SECONDS",
                      help="take over chunks another owner claimed this long ago (600)")
    add_database_options(bill)
    bill.set_defaults(func=cmd_bill)
    actions = bill.add_subparsers(dest="action")
    listing = actions.add_parser("list", help="bills, newest date first")
    listing.add_argument("--payer", metavar="PAYER_ID")
    listing.add_argument("--date", type=day_of, metavar="YYYY-MM-DD")
    listing.add_argument("--status", choices=(OWED, SETTLED, ARREARS, EMPTY))
    listing.add_argument("--limit", type=int, default=100, metavar="N")
    add_database_options(listing)
    listing.set_defaults(func=cmd_list)
    show = actions.add_parser("show", help="a bill, its lines (and --charges)")
    show.add_argument("bill_id", type=int, metavar="BILL_ID")
    show.add_argument("--charges", action="store_true",
                      help="list the charges behind each line")
    add_database_options(show)
    show.set_defaults(func=cmd_show)


def _guarded(config: Config, work: Callable[[Engine], int], connections: int = 1) -> int:
    try:
        return with_engine(config, work, connections)
    except (Unavailable, DBAPIError) as exc:
        reason = f"{type(exc.orig).__name__}: {exc.orig}" if isinstance(exc, DBAPIError) else exc
        print(f"error: database unavailable: {reason}", file=sys.stderr)
        return EXIT_UNREACHABLE


def _refusal(args: argparse.Namespace, config: Config, tz: ZoneInfo) -> str | None:
    if args.date is None:
        return "give --date YYYY-MM-DD (or an action: list, show)"
    if args.chunk is not None and args.chunk < 1:
        return "--chunk must be positive"
    if args.sum_range < 1:
        return "--sum-range must be positive"
    if args.workers is not None and not 1 <= args.workers <= MAX_BILL_WORKERS:
        return f"--workers must be 1..{MAX_BILL_WORKERS}"
    if args.stale_after < 0:
        return "--stale-after must not be negative"
    today = _now().astimezone(tz).date()
    if args.date > today:
        return (f"{args.date} has not started yet in {tz.key} (today is {today}); "
                "a date is billed once it has started")
    return None


def cmd_bill(args: argparse.Namespace) -> int:
    """Run the bill run of ``--date`` and print its summary."""
    config = config_of(args)
    tz = ZoneInfo(config.business_time_zone)
    refused = _refusal(args, config, tz)
    if refused is not None:
        print(f"error: {refused}", file=sys.stderr)
        return EXIT_USAGE
    owner = args.owner or default_owner()
    workers = args.workers or config.billing.workers

    def work(engine: Engine) -> int:
        try:
            summary = run_workers(engine, args.date, config.billing, owner, _now, workers,
                                  chunk=args.chunk, sum_range=args.sum_range,
                                  stale_after=timedelta(seconds=args.stale_after))
        except BillRunBusy as busy:
            print(f"error: {busy}", file=sys.stderr)
            return EXIT_BUSY
        print(describe(summary))
        return 0

    return _guarded(config, work, workers + 1)


def _read(config: Config, work: Callable[[Connection], int]) -> int:
    def run(engine: Engine) -> int:
        with engine.connect() as conn:
            conn.execution_options(**{READ_ONLY: True})
            with conn.begin():
                return work(conn)

    return _guarded(config, run)


def cmd_list(args: argparse.Namespace) -> int:
    """Print the bills matching the filters, one a line."""
    if args.limit < 1:
        print("error: --limit must be positive", file=sys.stderr)
        return EXIT_USAGE

    def work(conn: Connection) -> int:
        found = bill_views.list_bills(conn, args.payer, args.date, args.status, args.limit)
        print(f"{'id':>8}  {'date':10}  {'status':7}  {'amount':>12}  {'lines':>5}  "
              f"{'charges':>7}  {'days':21}  payer")
        for item in found:
            print(_bill_row(item))
        print(f"{len(found)} bills" + (" (--limit reached)" if len(found) == args.limit else ""))
        return 0

    return _read(config_of(args), work)


def cmd_show(args: argparse.Namespace) -> int:
    """Print one bill and its lines (and the charges of each line)."""
    def work(conn: Connection) -> int:
        found = bill_views.get_bill(conn, args.bill_id)
        if found is None:
            print(f"error: no bill {args.bill_id} (billingcenter bill list)", file=sys.stderr)
            return EXIT_NOT_FOUND
        lines = bill_views.bill_lines(conn, found.id)
        charges = bill_views.line_charges(conn, found, lines) if args.charges else {}
        for text in _show(found, lines, charges):
            print(text)
        return 0

    return _read(config_of(args), work)


def _show(found: Bill, lines: list[BillLine],
          charges: dict[int, list[bill_views.BilledCharge]]) -> list[str]:
    out = [
        f"bill {found.id}: payer {found.payer_id}, date {found.bill_date}, {found.status}",
        f"  total {yuan(found.total_fen)} yuan ({found.total_fen} fen), {found.lines} lines, "
        f"{found.charges} charges of days {found.first_day} .. {found.last_day}",
        f"  deduction {found.deduction_id or '-'}; made {found.created_at.isoformat()}; "
        f"settled {found.settled_at.isoformat() if found.settled_at else '-'}",
        f"  {'order':24}  {'product':16}  {'charges':>7}  {'days':21}  {'amount':>12}",
    ]
    for line in lines:
        out.append(f"  {line.order_id:24}  {line.product_code:16}  {line.charges:>7}  "
                   f"{line.first_day} {line.last_day}  {yuan(line.amount_fen):>12}")
        for item in charges.get(line.id, []):
            out.append(
                f"      {item.day}  {yuan(item.amount_fen):>10}  {item.kind} {item.source_key}: "
                f"{item.units} x {item.unit_price} by {item.rule_set} {item.rule_set_version} "
                f"rule {item.rule_id}  {item.explanation}")
    return out


def _bill_row(item: Bill) -> str:
    days = f"{item.first_day} {item.last_day}" if item.first_day else "-"
    return (f"{item.id:>8}  {item.bill_date}  {item.status:7}  {yuan(item.total_fen):>12}  "
            f"{item.lines:>5}  {item.charges:>7}  {days:21}  {item.payer_id}")


def yuan(fen: int) -> str:
    """Fen as yuan text: ``1234`` -> ``12.34``."""
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}"
