"""``billingcenter check``: verify the ledger's invariants and print every breach.

Runs every check of ``billingcenter.ledger.invariants`` (each one set-based query; the
kinds and what they mean are in ``billingcenter.ledger.checks``) and prints, per kind
that has breaches, the breaches (ids, expected, found) and their number.  ``--limit N``
shows at most N breaches per kind (default 20; the count is always complete);
``--kind K`` (repeatable) runs only those kinds; ``--format json`` prints
``{"clean", "checked", "breaches": [{"kind", "description", "count", "shown": [...]}]}``.

Each invariant is judged in one statement, so a bill run or a payment in progress
never shows as a breach; run it at any time.

Exit codes: 0 the ledger is clean, 1 at least one breach, 2 bad usage (an unknown kind
is named with the list), 3 the database is unreachable.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from billingcenter.commands.usage import add_database_options, config_of, unreachable, with_engine
from billingcenter.errors import Unavailable
from billingcenter.ledger.checks import Breach, CheckResult, choose, run_checks
from billingcenter.ledger.invariants import CHECKS, KINDS

EXIT_BREACH, EXIT_USAGE, EXIT_UNREACHABLE = 1, 2, 3
DEFAULT_LIMIT = 20


def register(subparsers: Any) -> None:
    """Add the ``check`` subcommand."""
    check = subparsers.add_parser(
        "check", help="verify the ledger's invariants; print every breach",
        description="Verify the ledger: bills' charge bounds and payer rows, "
                    "bills equal to their lines and charges, bill status, deductions and "
                    "payments, balances equal to their entries.  Exit 1 on any breach.")
    check.add_argument("--limit", type=int, default=DEFAULT_LIMIT, metavar="N",
                       help=f"breaches shown per kind (default {DEFAULT_LIMIT})")
    check.add_argument("--kind", action="append", default=[], metavar="KIND",
                       help="check only this kind (repeatable)")
    check.add_argument("--format", choices=("text", "json"), default="text")
    add_database_options(check)
    check.set_defaults(func=cmd_check)


def cmd_check(args: argparse.Namespace) -> int:
    """Run the checks and print what they found."""
    unknown = [kind for kind in args.kind if kind not in KINDS]
    if unknown or args.limit < 1:
        problem = (f"unknown kind {', '.join(map(repr, unknown))}; known: {', '.join(KINDS)}"
                   if unknown else "--limit must be at least 1")
        print(f"error: {problem}", file=sys.stderr)
        return EXIT_USAGE
    checks = choose(CHECKS, args.kind)
    config = config_of(args)

    def work(engine: Engine) -> list[CheckResult]:
        return run_checks(engine, checks, args.limit)

    try:
        results = with_engine(config, work)
    except (Unavailable, DBAPIError) as exc:
        print(f"error: {unreachable(exc)}", file=sys.stderr)
        return EXIT_UNREACHABLE
    print(as_json(results) if args.format == "json" else as_text(results))
    return EXIT_BREACH if any(result.count for result in results) else 0


def _ids(breach: Breach) -> str:
    return ", ".join(f"{name} {value}" for name, value in breach.ids)


def as_text(results: list[CheckResult]) -> str:
    """Per kind with breaches: a heading, one line per breach shown; then a summary."""
    lines = []
    for result in results:
        if not result.count:
            continue
        shown = len(result.breaches)
        more = f", {shown} shown" if shown < result.count else ""
        lines.append(f"{result.kind}: {result.count} breaches{more} ({result.description})")
        lines.extend(f"  {_ids(b)}: expected {b.expected}; found {b.found}"
                     for b in result.breaches)
    found = sum(result.count for result in results)
    kinds = sum(1 for result in results if result.count)
    lines.append(f"{len(results)} checks: clean" if not found else
                 f"{len(results)} checks: {found} breaches of {kinds} kinds")
    return "\n".join(lines)


def as_json(results: list[CheckResult]) -> str:
    """The results as one JSON object."""
    breaches = [
        {"kind": r.kind, "description": r.description, "count": r.count,
         "shown": [{"ids": dict(b.ids), "expected": b.expected, "found": b.found}
                   for b in r.breaches]}
        for r in results if r.count
    ]
    document = {"clean": not breaches, "checked": [r.kind for r in results],
                "breaches": breaches}
    return json.dumps(document, ensure_ascii=False, indent=2)
