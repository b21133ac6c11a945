"""The ledger port: what the service asks of storage, implemented by SQL and in memory.

Every method is blocking and runs on a thread of the service's pool (never on the
reactor thread); every method is one transaction; only frozen model values go in
and come out.  Each ``add_*`` is idempotent on the caller's key:

* first time: the record is checked against the stored facts (``billingcenter.intake``),
  stored, and a ``Receipt`` with ``recorded_at=now`` is returned;
* the same key with the same content (``digest()`` of the record as the caller sent
  it): the stored receipt is returned again and nothing changes;
* the same key with other content: ``DuplicateConflict`` and nothing changes.

A receipt's status is ``ACCEPTED`` (``billingcenter.ledger.semantics``).  A
database failure is raised as ``billingcenter.errors.Unavailable`` after the
transaction was rolled back; the caller may retry with the same key.

Domain refusals are raised as ``billingcenter.errors.BillingError`` subclasses; the
caller (the service) records them with ``add_error``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Protocol

from billingcenter.errors import BillingError
from billingcenter.model import (
    AccountNumChange,
    ErrorRecord,
    Order,
    OrderStatus,
    Product,
    Receipt,
    StateEvent,
    Usage,
)


class Ledger(Protocol):
    """Storage of the intake: orders, state events, usage, account counts, errors."""

    def sync_products(self, products: Iterable[Product]) -> None:
        """Insert or update the catalogue's products (and their plans); never delete."""

    def add_order(self, order: Order, now: datetime) -> Receipt:
        """Store an order mirror (key ``order_id``)."""

    def add_state_event(self, event: StateEvent, now: datetime) -> Receipt:
        """Store a state event (key ``event_id``) and update the order's current status.

        The current status is that of the event with the latest ``changed_at`` (ties
        broken by ``event_id``), so the order of arrival does not matter.
        """

    def add_usage(self, usage: Usage, now: datetime) -> Receipt:
        """Store a usage record (key ``op_id``) with the payer resolved from its order."""

    def add_usages(self, batch: Sequence[tuple[Usage, datetime]]) -> list[Receipt | BillingError]:
        """Store many usage records in one transaction (group commit).

        The answer for each record is exactly what ``add_usage`` would have answered
        (a receipt or the error it would have raised); a refused record does not stop
        the others.  Two records of the batch with the same key behave as a first call
        and a repeat.
        """

    def add_account_change(self, change: AccountNumChange, now: datetime) -> bool:
        """Record a change of the authorized-account count of (payer, product).

        Requires an order of that payer for that product (else ``UnknownOrder``).  A
        count equal to the latest recorded one stores nothing and returns False;
        otherwise a row with ``changed_at`` is appended and True returned.
        """

    def add_error(self, record: ErrorRecord) -> None:
        """Keep a refused record with its reason for later correction and recycling."""

    def get_order(self, order_id: str) -> Order | None:
        """The stored order mirror, or None."""

    def order_status(self, order_id: str) -> OrderStatus | None:
        """The order's current status (``ACTIVE`` until its first event), or None."""

    def get_usage(self, op_id: str) -> Usage | None:
        """The stored usage record, its payer resolved from the order, or None."""

    def row_counts(self) -> dict[str, int]:
        """Rows per table; used by checks and tests to prove nothing changed."""
