"""``billingcenter payer set|show|list|check``: payer accounts, balances and service control.

* ``set PAYER [--prepaid|--postpaid] [--billing-day N] [--floor FEN] [--threshold FEN]``
  creates the payer's account if needed and changes what is given; a prepaid payer's
  unpaid charges are then paid from its balance and its service reviewed (a prepaid
  payer at or below its threshold is stopped at once).
* ``show PAYER``: balance, floor, threshold, service state, and the latest balance
  entries, bills, payments and service events.
* ``list [--state OPEN|STOPPED] [--kind PREPAID|POSTPAID] [--arrears]``.
* ``check``: the arrears check and the prepaid sweep once (``billingcenter.jobs.arrears``),
  with ``[arrears] grace`` and ``products``; the daemon runs it every ``[arrears] interval``.

Amounts are fen.  Exit codes: 0 done, 1 no such payer (show), 2 bad usage, 3 database
unreachable, 4 refused for now (a change of kind while a bill run is unfinished).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

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
from billingcenter.errors import InvalidArgument, InvalidState, Unavailable
from billingcenter.jobs.arrears import check
from billingcenter.ledger import payer_views
from billingcenter.ledger.accounts import Payer
from billingcenter.ledger.control import ServicePolicy
from billingcenter.ledger.payments import AccountStore, PayerSettings

EXIT_MISSING, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_REFUSED = 1, 2, 3, 4


def _now() -> datetime:
    """The clock, read only here (tests replace it)."""
    return datetime.now(UTC)


def register(subparsers: Any) -> None:
    """Add ``payer`` and its subcommands."""
    payer = subparsers.add_parser("payer", help="payer accounts, balances, service control")
    sub = payer.add_subparsers(dest="payer_command", required=True)
    setting = sub.add_parser("set", help="create or change a payer's account settings")
    setting.add_argument("payer_id", metavar="PAYER")
    kind = setting.add_mutually_exclusive_group()
    kind.add_argument("--prepaid", dest="kind", action="store_const", const="PREPAID",
                      help="charges are paid from the balance as they are rated")
    kind.add_argument("--postpaid", dest="kind", action="store_const", const="POSTPAID",
                      help="charges are billed on the billing day (the default)")
    setting.add_argument("--billing-day", type=int, metavar="N",
                         help="day of month of its bill run, 1-28 (default [billing] day)")
    setting.add_argument("--floor", type=int, metavar="FEN",
                         help="the lowest the balance may go (negative: credit)")
    setting.add_argument("--threshold", type=int, metavar="FEN",
                         help="a prepaid payer at or below this balance is stopped")
    setting.set_defaults(func=cmd_set)
    showing = sub.add_parser("show", help="a payer's balance, entries, bills and events")
    showing.add_argument("payer_id", metavar="PAYER")
    showing.add_argument("--limit", type=int, default=20, metavar="N",
                         help="rows of each kind, newest first (default 20)")
    showing.set_defaults(func=cmd_show)
    listing = sub.add_parser("list", help="payers, optionally stopped or in arrears")
    listing.add_argument("--state", choices=("OPEN", "STOPPED"))
    listing.add_argument("--kind", choices=("PREPAID", "POSTPAID"))
    listing.add_argument("--arrears", action="store_true", help="only payers with bills in arrears")
    listing.set_defaults(func=cmd_list)
    checking = sub.add_parser("check", help="run the arrears check and the prepaid sweep once")
    checking.add_argument("--at", type=moment, metavar="TIME",
                          help="the check's clock, ISO 8601 with offset (default now)")
    checking.set_defaults(func=cmd_check)
    for parser in (setting, showing, listing, checking):
        add_database_options(parser)


def account_store(engine: Engine, config: Config) -> AccountStore:
    """The store with ``[arrears]`` applied (what the daemon uses too)."""
    policy = ServicePolicy(timedelta(seconds=config.arrears.grace), config.arrears.products)
    return AccountStore(engine, policy, config.limits)


def _run(args: argparse.Namespace, work: Callable[[Engine, Config], int]) -> int:
    config = config_of(args)
    try:
        return with_engine(config, lambda engine: work(engine, config))
    except InvalidArgument as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return EXIT_USAGE
    except InvalidState as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return EXIT_REFUSED
    except (Unavailable, DBAPIError) as exc:
        print(f"error: {unreachable(exc)}", file=sys.stderr)
        return EXIT_UNREACHABLE


def cmd_set(args: argparse.Namespace) -> int:
    """Change a payer's settings and print the account."""
    settings = PayerSettings(args.kind, args.billing_day, args.floor, args.threshold)

    def work(engine: Engine, config: Config) -> int:
        print(describe(account_store(engine, config).set_payer(args.payer_id, settings, _now())))
        return 0

    return _run(args, work)


def cmd_show(args: argparse.Namespace) -> int:
    """Print a payer's account and its latest history."""
    def work(engine: Engine, config: Config) -> int:
        view = payer_views.show(engine, args.payer_id, args.limit)
        if view is None:
            print(f"no account for payer {args.payer_id!r}", file=sys.stderr)
            return EXIT_MISSING
        print(describe(view.payer))
        for title, rows in (("balance entries", view.entries), ("bills", view.bills),
                            ("payments", view.payments), ("service events", view.events)):
            print(f"{title}:" if rows else f"{title}: none")
            for row in rows:
                print("  " + "  ".join(_cell(value) for value in row))
        return 0

    return _run(args, work)


def cmd_list(args: argparse.Namespace) -> int:
    """Print one line per payer."""
    def work(engine: Engine, config: Config) -> int:
        for payer in payer_views.payers(engine, args.state, args.kind, args.arrears):
            print(describe(payer))
        return 0

    return _run(args, work)


def cmd_check(args: argparse.Namespace) -> int:
    """Run the arrears check and prepaid sweep once; print what it did."""
    def work(engine: Engine, config: Config) -> int:
        done = check(account_store(engine, config), args.at or _now())
        print(f"{done.payers} payers reviewed: {done.stopped} stopped, {done.reopened} "
              f"reopened, {done.notices} notices queued, {done.charges} prepaid charges "
              f"paid ({done.amount_fen} fen)")
        return 0

    return _run(args, work)


def describe(payer: Payer) -> str:
    """One line about a payer's account."""
    day = payer.billing_day if payer.billing_day is not None else "default"
    since = f" arrears since {payer.arrears_since.isoformat()}" if payer.arrears_since else ""
    return (f"{payer.payer_id}  {payer.kind}  {payer.service_state}  balance "
            f"{payer.balance_fen} fen  floor {payer.floor_fen}  threshold "
            f"{payer.threshold_fen}  billing day {day}{since}")


def _cell(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)
