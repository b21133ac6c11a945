"""Which bill holds a charge: the rule, as SQL conditions.

A bill run of date X fixes a charge id bound ``upto_id`` (``billingcenter.ledger.fence``)
and writes one bill per due payer.  A payer's bill ``b`` holds the payer's charges with

    entry_id = 0  AND  id <= b.upto_id  AND  day < b.bill_date

that no earlier bill of the payer holds.  Bill dates and bounds only grow from one bill
of a payer to the next, so a charge is held by some bill of the payer exactly when the
latest one's rule holds, and ``payer_account`` keeps that bill's bound and date
(``billed_upto``, ``billed_before``).  Nothing is written to a charge when it is billed:
a charge rated after the run (a higher id), or for the bill date or later, waits for the
payer's next bill; one paid from a balance (``entry_id`` set) is never billed.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, false, func, not_
from sqlalchemy.sql.elements import ColumnElement

from billingcenter.ledger.schema_billing import payer_account
from billingcenter.ledger.schema_rating import charge

PAYER = object()  # the bound and date of the joined payer_account row


def covered(upto: Any = PAYER, before: Any = PAYER, c: Any = None) -> ColumnElement[bool]:
    """The charge is held by a bill whose bound and date are ``upto`` and ``before``
    (columns or values, None for none; default the joined payer row's ``billed_upto``
    and ``billed_before``); false when there is no such bill (NULL or 0: never billed,
    or an outer join that found no payer row)."""
    c = charge.c if c is None else c
    upto = payer_account.c.billed_upto if upto is PAYER else upto
    before = payer_account.c.billed_before if before is PAYER else before
    if upto is None or before is None:
        return false()
    return and_(c.id <= func.coalesce(upto, 0), c.day < before)


def billed(upto: Any = PAYER, before: Any = PAYER, c: Any = None) -> ColumnElement[bool]:
    """The charge is on one of the payer's bills (joined with its ``payer_account``)."""
    c = charge.c if c is None else c
    return and_(c.entry_id == 0, covered(upto, before, c))


def waiting(upto: Any = PAYER, before: Any = PAYER, c: Any = None) -> ColumnElement[bool]:
    """The charge is neither billed nor paid: it waits for a bill (or a balance)."""
    c = charge.c if c is None else c
    return and_(c.entry_id == 0, not_(covered(upto, before, c)))


def on_bill(upto: Any, before: Any, prev_upto: Any, prev_before: Any,
            c: Any = None) -> ColumnElement[bool]:
    """The charge (of the bill's payer) is on the bill with bound ``upto`` and date
    ``before`` whose payer's previous bill had ``prev_upto``/``prev_before`` (NULL: none)."""
    c = charge.c if c is None else c
    return and_(c.entry_id == 0, covered(upto, before, c),
                not_(covered(prev_upto, prev_before, c)))
