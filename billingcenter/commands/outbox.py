"""``billingcenter outbox``: the outbound calls waiting, failed or made, and their delivery.

* ``outbox list [--status PENDING|DELIVERED|DEAD] [--limit N]``: the newest messages,
  with attempts, next attempt, lease and last error; a count per status first.
* ``outbox retry ID... | --dead``: make messages due now: ``DEAD`` ones start again
  with no attempts, ``PENDING`` ones waiting for their backoff are tried at once.
* ``outbox deliver [--until-empty]``: run the deliverer (as the daemon does, with the
  ``[outbox]``, ``[account_system]`` and ``[feedback]`` settings) in this process;
  with ``--until-empty`` it stops once nothing is due (messages waiting for a retry
  stay ``PENDING``), otherwise at Ctrl-C.  Prints delivered and failed counts and
  the rate.  Exit 0, or 1 when some calls failed, 2 bad usage, 3 database unreachable.
* ``outbox purge [--older-than DAYS]``: delete the ``DELIVERED`` messages delivered
  more than DAYS days ago (default ``[outbox] keep_delivered``; 0 with the default
  purges nothing), in short transactions of a few hundred rows; prints how many went.
  ``PENDING`` and ``DEAD`` messages are never purged.  Exit 0, 2 bad usage (nothing
  changed), 3 database unreachable.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import attrs
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from billingcenter.commands.usage import add_database_options, config_of, unreachable, with_engine
from billingcenter.config import Config, ConfigError
from billingcenter.errors import Unavailable
from billingcenter.ledger import outbox
from billingcenter.ledger.schema_billing import DEAD, DELIVERED, PENDING
from billingcenter.outbound.delivery import DeliveryStats

EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE = 1, 2, 3
STATUSES = (PENDING, DELIVERED, DEAD)
MAX_DAYS = 36_500  # --older-than: a century at most (keeps the cutoff a valid date)


def _now() -> datetime:
    """The clock, read only here (tests replace it)."""
    return datetime.now(UTC)


def register(subparsers: Any) -> None:
    """Add ``outbox`` and its actions ``list``, ``retry``, ``deliver``, ``purge``."""
    parser = subparsers.add_parser("outbox", help="outbound calls: list, retry, deliver, purge")
    actions = parser.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="the newest outbox messages")
    listing.add_argument("--status", choices=STATUSES, type=str.upper)
    listing.add_argument("--limit", type=int, default=50, metavar="N")
    listing.set_defaults(func=cmd_list)
    retry = actions.add_parser("retry", help="make messages due now (DEAD ones start again)")
    retry.add_argument("ids", nargs="*", type=int, metavar="ID")
    retry.add_argument("--dead", action="store_true", help="every DEAD message")
    retry.set_defaults(func=cmd_retry)
    deliver = actions.add_parser("deliver", help="deliver the outbox from this process")
    deliver.add_argument("--until-empty", action="store_true",
                         help="stop once nothing is due (default: run until Ctrl-C)")
    deliver.add_argument("--concurrency", type=int, metavar="N", help="calls at once")
    deliver.add_argument("--batch", type=int, metavar="N", help="messages leased at once")
    deliver.add_argument("--owner", help="lease owner name (default host:pid)")
    deliver.set_defaults(func=cmd_deliver)
    purge = actions.add_parser("purge", help="delete DELIVERED messages older than DAYS days")
    purge.add_argument("--older-than", type=_days, metavar="DAYS",
                       help="days since delivery (default: [outbox] keep_delivered)")
    purge.set_defaults(func=cmd_purge)
    for action in (listing, retry, deliver, purge):
        add_database_options(action)


def cmd_list(args: argparse.Namespace) -> int:
    """Print the counts per status and the newest messages."""
    def work(engine: Engine) -> int:
        found = outbox.counts(engine, _now())
        print(", ".join(f"{s} {found[s]}" for s in (*STATUSES, "DUE")))
        for row in outbox.list_messages(engine, args.status, args.limit):
            print(_line(row))
        return 0

    return _with_database(args, work)


def _line(row: outbox.MessageRow) -> str:
    when = row.delivered_at if row.status == DELIVERED else row.next_attempt_at
    lease = f" lease {row.lease_owner} until {_iso(row.lease_until)}" if row.lease_until else ""
    error = f" error {row.last_error}" if row.last_error else ""
    order = f" [{row.ordering_key}]" if row.ordering_key else ""
    return (f"{row.id} {row.status} {row.method} {row.message_key} -> {row.target}{order} "
            f"attempts {row.attempts} {'at' if row.status == DELIVERED else 'next'} "
            f"{_iso(when)}{lease}{error}")


def _iso(moment: datetime | None) -> str:
    return moment.isoformat(timespec="seconds") if moment is not None else "-"


def cmd_retry(args: argparse.Namespace) -> int:
    """Make the named (or all DEAD) messages due now."""
    if not args.ids and not args.dead:
        print("error: name message ids or --dead", file=sys.stderr)
        return EXIT_USAGE

    def work(engine: Engine) -> int:
        changed = outbox.retry(engine, _now(), args.ids, args.dead)
        print(f"{changed} message(s) due now")
        return 0

    return _with_database(args, work)


def cmd_deliver(args: argparse.Namespace) -> int:
    """Run the deliverer in a reactor and print what it did."""
    for name in ("concurrency", "batch"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            print(f"error: --{name} must be at least 1", file=sys.stderr)
            return EXIT_USAGE
    config = config_of(args)
    changes = {k: getattr(args, k) for k in ("concurrency", "batch") if getattr(args, k)}
    config = attrs.evolve(config, outbox=attrs.evolve(config.outbox, enabled=True, **changes))
    owner = args.owner or f"{socket.gethostname()}:{os.getpid()}"

    def work(engine: Engine) -> int:
        stats = run_deliverer(engine, config, owner, args.until_empty)
        print(summary(stats))
        return EXIT_FAILED if stats.failed else 0

    return _with_database(args, work, config, config.outbox.concurrency + 2)


def _days(text: str) -> int:
    """A whole number of days, 0 or more (``--older-than``)."""
    try:
        days = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a whole number of days, got {text!r}") from None
    if not 0 <= days <= MAX_DAYS:
        raise argparse.ArgumentTypeError(f"expected 0 to {MAX_DAYS} days, got {days}")
    return days


def cmd_purge(args: argparse.Namespace) -> int:
    """Delete the messages delivered more than DAYS days ago; print how many went."""
    config = config_of(args)
    days = args.older_than if args.older_than is not None else config.outbox.keep_delivered
    if days == 0 and args.older_than is None:
        print("0 message(s) purged: [outbox] keep_delivered = 0 keeps delivered messages "
              "forever (give --older-than DAYS)")
        return 0

    def work(engine: Engine) -> int:
        before = _now() - timedelta(days=days)
        purged = outbox.purge_all(engine, before)
        print(f"{purged} message(s) purged: DELIVERED before {_iso(before)}")
        return 0

    return _with_database(args, work, config)


def run_deliverer(engine: Engine, config: Config, owner: str, until_empty: bool
                  ) -> DeliveryStats:
    """Deliver in the global reactor (run here) until idle or until the reactor stops."""
    from twisted.internet import reactor as global_reactor
    from twisted.internet.threads import deferToThreadPool
    from twisted.python.threadpool import ThreadPool

    from billingcenter.outbound.delivery import Deliverer, remotes_of

    reactor: Any = global_reactor
    pool = ThreadPool(minthreads=1, maxthreads=4, name="outbox-db")
    deliverer = Deliverer(engine, partial(deferToThreadPool, reactor, pool), config.outbox,
                          remotes_of(config), owner, _now, reactor)

    def start() -> None:
        pool.start()
        deliverer.startService()
        if until_empty:
            deliverer.idle().addBoth(lambda _: reactor.stop())

    reactor.addSystemEventTrigger("before", "shutdown", deliverer.stopService)
    reactor.addSystemEventTrigger("after", "shutdown", pool.stop)
    reactor.callWhenRunning(start)
    reactor.run()
    return deliverer.stats


def summary(stats: DeliveryStats) -> str:
    """The line printed after a delivery run."""
    return (f"delivered {stats.delivered}, failed {stats.failed} "
            f"({stats.retried} to retry, {stats.dead} dead), given back {stats.released}, "
            f"{stats.rate():,.0f} messages/s")


def _with_database(args: argparse.Namespace, work: Any, config: Config | None = None,
                   connections: int = 2) -> int:
    try:
        return int(with_engine(config or config_of(args), work, connections))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (Unavailable, DBAPIError) as exc:
        print(f"error: {unreachable(exc)}", file=sys.stderr)
        return EXIT_UNREACHABLE
