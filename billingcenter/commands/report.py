"""``billingcenter report``: totals of charges, grouped by any combination of dimensions.

``--by payer,month`` groups by the listed dimensions, in that order (any of
``payer``, ``product``, ``order``, ``rule_set``, ``day``, ``month``; none: the grand
total only).  ``--from DAY --to DAY`` are business days (``charge.day``), **both
inclusive**, as in ``rate`` and ``rules simulate``; a month is the charges of its
business days.  ``--payer``, ``--product`` and ``--rule-set`` may be repeated (any of
them); ``--billed`` (on a bill), ``--prepaid`` (paid from a balance) and ``--open``
(neither yet; ``--unbilled`` is the same) choose by what became of the charge.

Every row gives the number of charges, the amount in integer fen and in yuan as exact
text (``1234.50``).  ``--format table`` (default) ends with a ``TOTAL`` line; ``csv``
has a header and ends with a row whose first cell is ``TOTAL`` and whose other
dimension cells are empty (``--no-total`` leaves it out); ``json`` is one object
``{"by", "rows", "total"}``.  CSV and JSON are written as the rows stream from the
database; the table is aligned, so it is held in memory.

Exit codes: 0 done (also when nothing matches), 2 bad usage (an unknown dimension is
named with the list of known ones), 3 the database is unreachable.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from billingcenter.commands.rate import day_of
from billingcenter.commands.usage import add_database_options, config_of, unreachable, with_engine
from billingcenter.errors import Unavailable
from billingcenter.ledger import transact
from billingcenter.ledger.reports import (
    BILLED,
    DIMENSIONS,
    OPEN,
    PREPAID,
    ReportFilter,
    ReportRow,
    report_rows,
    unknown_dimensions,
)

EXIT_USAGE, EXIT_UNREACHABLE = 2, 3
FORMATS = ("table", "csv", "json")
TOTAL = "TOTAL"
AMOUNT_COLUMNS = ("charges", "amount_fen", "amount_yuan")


def register(subparsers: Any) -> None:
    """Add the ``report`` subcommand."""
    report = subparsers.add_parser(
        "report", help="totals of charges by payer, product, order, rule set, day, month",
        description="Totals of charges (count, fen, yuan) grouped by any combination of "
                    "dimensions, with a grand total.  Days are business days; --from and "
                    "--to are both inclusive.")
    report.add_argument("--by", default="", metavar="DIM[,DIM...]",
                        help=f"group by these, in order: {', '.join(DIMENSIONS)} "
                             "(default: the grand total only)")
    report.add_argument("--from", dest="first", type=day_of, metavar="DAY",
                        help="first business day counted (inclusive)")
    report.add_argument("--to", dest="last", type=day_of, metavar="DAY",
                        help="last business day counted (inclusive)")
    report.add_argument("--payer", action="append", default=[], metavar="ID")
    report.add_argument("--product", action="append", default=[], metavar="CODE")
    report.add_argument("--rule-set", action="append", default=[], metavar="NAME")
    state = report.add_mutually_exclusive_group()
    state.add_argument("--billed", dest="settlement", action="store_const", const=BILLED,
                       help="only charges on a bill")
    state.add_argument("--prepaid", dest="settlement", action="store_const", const=PREPAID,
                       help="only charges paid from a prepaid balance")
    state.add_argument("--open", "--unbilled", dest="settlement", action="store_const",
                       const=OPEN, help="only charges neither billed nor paid from a balance")
    report.add_argument("--format", choices=FORMATS, default="table")
    report.add_argument("--no-total", action="store_true",
                        help="csv: leave out the TOTAL row")
    add_database_options(report)
    report.set_defaults(func=cmd_report)


def dimensions_of(text: str) -> list[str] | str:
    """The dimensions of ``--by``, or why they are wrong."""
    by = [name.strip() for name in text.split(",") if name.strip()]
    unknown = unknown_dimensions(by)
    if unknown:
        return (f"unknown dimension {', '.join(map(repr, unknown))} in --by; "
                f"known: {', '.join(DIMENSIONS)}")
    if len(set(by)) != len(by):
        return f"a dimension is named twice in --by {text!r}"
    return by


def cmd_report(args: argparse.Namespace) -> int:
    """Print the report in the chosen format."""
    by = dimensions_of(args.by)
    if not isinstance(by, str) and args.first and args.last and args.last < args.first:
        by = f"--to {args.last} is before --from {args.first}"
    if isinstance(by, str):
        print(f"error: {by}", file=sys.stderr)
        return EXIT_USAGE
    where = ReportFilter(args.first, args.last, tuple(args.payer), tuple(args.product),
                         tuple(args.rule_set), args.settlement)
    config = config_of(args)

    def work(engine: Engine) -> int:
        def run(conn: Connection) -> None:
            write_report(sys.stdout, by, report_rows(conn, by, where), args.format,
                         not args.no_total)
        transact.read(engine, run)
        return 0

    try:
        return int(with_engine(config, work))
    except (Unavailable, DBAPIError) as exc:
        print(f"error: {unreachable(exc)}", file=sys.stderr)
        return EXIT_UNREACHABLE


def yuan(fen: int) -> str:
    """Integer fen as exact yuan text: ``123450`` -> ``"1234.50"``."""
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}"


class _Total:
    """The grand total, summed as the rows pass."""

    def __init__(self) -> None:
        self.charges = 0
        self.amount_fen = 0

    def count(self, rows: Iterable[ReportRow]) -> Iterator[ReportRow]:
        for row in rows:
            self.charges += row.charges
            self.amount_fen += row.amount_fen
            yield row


def write_report(out: TextIO, by: list[str], rows: Iterable[ReportRow], form: str,
                 with_total: bool = True) -> None:
    """Write the rows (and the grand total) to ``out`` as a table, CSV or JSON."""
    total = _Total()
    if not by:  # the one row of a report without dimensions is the grand total itself
        for _ in total.count(rows):
            pass
        rows = ()
    writers = {"table": _table, "csv": _csv, "json": _json}
    writers[form](out, by, total.count(rows), total, with_total)


def _amounts(charges: int, amount_fen: int) -> list[str]:
    return [str(charges), str(amount_fen), yuan(amount_fen)]


def _table(out: TextIO, by: list[str], rows: Iterable[ReportRow], total: _Total,
           with_total: bool) -> None:
    header = [name.upper() for name in by] + [c.upper() for c in AMOUNT_COLUMNS]
    lines = [[*row.keys, *_amounts(row.charges, row.amount_fen)] for row in rows]
    ending = [TOTAL, *[""] * max(len(by) - 1, 0)] if by else [TOTAL]
    if not by:
        header = ["", *header]
    lines.append([*ending, *_amounts(total.charges, total.amount_fen)])
    widths = [max(len(cells[i]) for cells in [header, *lines]) for i in range(len(header))]
    numeric = len(header) - len(AMOUNT_COLUMNS)
    for cells in [header, *lines]:
        text = [cell.rjust(w) if i >= numeric else cell.ljust(w)
                for i, (cell, w) in enumerate(zip(cells, widths, strict=True))]
        out.write("  ".join(text).rstrip() + "\n")


def _csv(out: TextIO, by: list[str], rows: Iterable[ReportRow], total: _Total,
         with_total: bool) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*by, *AMOUNT_COLUMNS])
    for row in rows:
        writer.writerow([*row.keys, *_amounts(row.charges, row.amount_fen)])
    if with_total or not by:
        ending = [TOTAL, *[""] * (len(by) - 1)] if by else []
        writer.writerow([*ending, *_amounts(total.charges, total.amount_fen)])


def _amount_object(charges: int, amount_fen: int) -> dict[str, Any]:
    return {"charges": charges, "amount_fen": amount_fen, "amount_yuan": yuan(amount_fen)}


def _json(out: TextIO, by: list[str], rows: Iterable[ReportRow], total: _Total,
          with_total: bool) -> None:
    out.write('{"by": ' + json.dumps(by) + ', "rows": [')
    for n, row in enumerate(rows):
        item = {**dict(zip(by, row.keys, strict=True)),
                **_amount_object(row.charges, row.amount_fen)}
        out.write(("," if n else "") + "\n  " + json.dumps(item, ensure_ascii=False))
    out.write('\n], "total": ' + json.dumps(_amount_object(total.charges, total.amount_fen))
              + "}\n")
