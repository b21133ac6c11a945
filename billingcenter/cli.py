"""The ``billingcenter`` command: serve, db, call, hash-password.

Exit codes: 0 success, 1 the call answered a fault, 2 bad usage or configuration,
3 the server or database could not be reached.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs

from billingcenter.commands import bill as commands_bill
from billingcenter.commands import check as commands_check
from billingcenter.commands import errors as commands_errors
from billingcenter.commands import outbox as commands_outbox
from billingcenter.commands import payer as commands_payer
from billingcenter.commands import rate as commands_rate
from billingcenter.commands import report as commands_report
from billingcenter.commands import rules as commands_rules
from billingcenter.commands import usage as commands_usage
from billingcenter.config import Config, ConfigError, load_config
from billingcenter.hessian import Fault, HessianError, HessianObject, Long, TypedList, TypedMap

EXIT_FAULT, EXIT_USAGE, EXIT_UNREACHABLE = 1, 2, 3


def _config(args: argparse.Namespace) -> Config:
    config = load_config(Path(args.config) if args.config else None)
    changes: dict[str, Any] = {}
    if getattr(args, "endpoint", None):
        changes["endpoint"] = args.endpoint
    if args.database_url:
        changes["database_url"] = args.database_url
    if args.data_dir:
        changes["data_dir"] = Path(args.data_dir)
    return attrs.evolve(config, **changes)


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the daemon in the foreground until SIGINT/SIGTERM."""
    from twisted.internet import reactor as global_reactor
    from twisted.logger import (
        FilteringLogObserver,
        LogLevel,
        LogLevelFilterPredicate,
        globalLogBeginner,
        textFileLogObserver,
    )

    from billingcenter.tap import makeService

    config = _config(args)
    reactor: Any = global_reactor
    level = LogLevel.levelWithName(args.log_level)
    # zope interfaces are invisible to mypy: these objects do provide them.
    predicate: Any = LogLevelFilterPredicate(defaultLogLevel=level)
    text: Any = textFileLogObserver(sys.stderr)
    observer: Any = FilteringLogObserver(text, [predicate])
    globalLogBeginner.beginLoggingTo([observer], redirectStandardIO=False)
    top = makeService(config, reactor)
    top.startService()
    reactor.addSystemEventTrigger("before", "shutdown", top.stopService)
    reactor.run()
    return 0


def cmd_db(args: argparse.Namespace) -> int:
    """Migrate the schema to the current version, or show the version."""
    from billingcenter.ledger import migrate
    from billingcenter.tap import database_url

    url = database_url(_config(args))
    if args.action == "upgrade":
        migrate.upgrade(url)
        print(f"schema at {migrate.current(url)}")
    else:
        print(migrate.current(url) or "empty (run: billingcenter db upgrade)")
    return 0


def cmd_hash_password(args: argparse.Namespace) -> int:
    """Print a password hash for a ``[caller:NAME]`` section."""
    from billingcenter.auth import hash_password

    password = args.password
    if password is None:
        password = sys.stdin.readline().rstrip("\n") if not sys.stdin.isatty() else (
            getpass.getpass("password: "))
    if not password:
        print("error: empty password", file=sys.stderr)
        return EXIT_USAGE
    print(hash_password(password))
    return 0


def from_json(value: Any) -> Any:
    """JSON argument -> Hessian value: {"@type": T, ...} objects, {"@date"}, {"@long"}."""
    if isinstance(value, dict):
        if set(value) == {"@date"}:
            return _parse_date(value["@date"])
        if set(value) == {"@long"}:
            return Long(int(value["@long"]))
        if "@type" in value:
            fields = {k: from_json(v) for k, v in value.items() if k != "@type"}
            return HessianObject(str(value["@type"]), fields)
        return {k: from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_json(v) for v in value]
    if isinstance(value, float):
        raise ValueError("floats are not accepted: amounts are integer fen")
    return value


def _parse_date(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"date {text!r} needs a time zone (e.g. Z or +08:00)")
    return moment.astimezone(UTC)


def to_json(value: Any) -> Any:
    """Hessian value -> JSON-ready value (the inverse of ``from_json``)."""
    if isinstance(value, HessianObject):
        return {"@type": value.type, **{k: to_json(v) for k, v in value.fields.items()}}
    if isinstance(value, TypedList):
        return [to_json(v) for v in value.items]
    if isinstance(value, TypedMap):
        return {str(k): to_json(v) for k, v in value.entries.items()}
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    if isinstance(value, datetime):
        return {"@date": value.isoformat().replace("+00:00", "Z")}
    if isinstance(value, bytes):
        return {"@binary": value.hex()}
    return value


def cmd_call(args: argparse.Namespace) -> int:
    """Call a method of a running server and print the reply as JSON."""
    from billingcenter.client import HessianClient, HttpError

    try:
        call_args = [from_json(json.loads(text)) for text in args.args]
    except ValueError as exc:
        print(f"error: an argument is not valid JSON for a Hessian value: {exc}", file=sys.stderr)
        return EXIT_USAGE
    password = args.password or os.environ.get("BILLINGCENTER_PASSWORD")
    client = HessianClient(args.url, args.user, password, version=args.protocol,
                           timeout=args.timeout)
    try:
        reply = client.call(args.method, *call_args)
    except Fault as fault:
        print(json.dumps({"fault": fault.code, "message": fault.message,
                          "detail": to_json(fault.detail)}, ensure_ascii=False, indent=2))
        return EXIT_FAULT
    except HttpError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE if exc.status >= 500 else EXIT_USAGE
    except (OSError, HessianError) as exc:
        print(f"error: cannot call {args.url}: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    finally:
        client.close()
    print(json.dumps(to_json(reply), ensure_ascii=False, indent=2))
    return 0


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="ini file (see conf/billingcenter.ini)")
    parser.add_argument("--database-url", help="SQLAlchemy URL (default: SQLite in data dir)")
    parser.add_argument("--data-dir", help="directory of the embedded SQLite database")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog="billingcenter", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the Hessian server in the foreground")
    _common(serve)
    serve.add_argument("--endpoint", help="Twisted endpoint (default tcp:8080:interface=127.0.0.1)")
    serve.add_argument("--log-level", choices=("debug", "info", "warn", "error"),
                       default="info")
    serve.set_defaults(func=cmd_serve)
    db = sub.add_parser("db", help="database schema: upgrade or show the current version")
    db.add_argument("action", choices=("upgrade", "current"))
    _common(db)
    db.set_defaults(func=cmd_db)
    call = sub.add_parser("call", help="call a method of a running server, print the reply")
    call.add_argument("url", help="e.g. http://127.0.0.1:8080/billing")
    call.add_argument("method")
    call.add_argument("args", nargs="*", help='JSON values; objects as {"@type": "...", ...}, '
                      'dates as {"@date": "2026-01-01T00:00:00Z"}, longs as {"@long": 5}')
    call.add_argument("--user")
    call.add_argument("--password", help="or set BILLINGCENTER_PASSWORD")
    call.add_argument("--protocol", choices=("H2", "c1", "c2"), default="H2")
    call.add_argument("--timeout", type=float, default=30.0)
    call.set_defaults(func=cmd_call)
    hashp = sub.add_parser("hash-password", help="hash a caller's password for the config")
    hashp.add_argument("password", nargs="?", help="read from stdin when omitted")
    hashp.set_defaults(func=cmd_hash_password)
    for module in (commands_rules, commands_rate, commands_usage, commands_errors,
                   commands_bill, commands_payer, commands_outbox, commands_report,
                   commands_check):
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
