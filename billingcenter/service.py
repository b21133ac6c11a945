"""The billing service: the one place where the pure core and the ledger meet.

Every operation runs its ledger work on the service's thread pool through ``run``
(a ``deferToThreadPool`` bound to the reactor and pool that ``makeService`` owns)
and answers a ``Deferred`` of frozen model values.  Refused records are kept in the
ledger's error store with their reason before the refusal reaches the caller.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar

import attrs
from twisted.internet.defer import Deferred
from twisted.logger import Logger

from billingcenter.errors import (
    AmountMismatch,
    BillingError,
    DuplicateConflict,
    InvalidArgument,
    InvalidState,
    NoRule,
    NotImplementedYet,
    UnknownDeduction,
    UnknownOrder,
    UnknownProduct,
)
from billingcenter.ledger.port import Ledger
from billingcenter.model import (
    AccountNumChange,
    ErrorRecord,
    Order,
    PayNotice,
    Receipt,
    StateEvent,
    Usage,
)
from billingcenter.rating.model import Quote, QuoteRequest, RatingError, RuleBook
from billingcenter.rating.quote import quote

T = TypeVar("T")
log = Logger()

# Refusals worth keeping for correction and recycling (not outages or unfinished methods).
RECORDED = (InvalidArgument, UnknownOrder, UnknownProduct, DuplicateConflict, InvalidState,
            UnknownDeduction, AmountMismatch)


class Runner(Protocol):
    """Runs a blocking function on the service's thread pool."""

    def __call__(self, f: Callable[..., T], *args: Any) -> Deferred[T]: ...


class Payments(Protocol):
    """Where payCallback goes (``billingcenter.ledger.payments.AccountStore``)."""

    def pay_callback(self, notice: PayNotice, now: datetime) -> Receipt:
        """Apply one payCallback in one transaction; its receipt (blocking)."""


def payload_text(value: Any) -> str:
    """A JSON rendering of a refused record, for the error store."""

    def default(obj: Any) -> Any:
        if isinstance(obj, datetime):
            return obj.isoformat()
        if attrs.has(type(obj)):
            return attrs.asdict(obj, recurse=False)
        if hasattr(obj, "value"):
            return obj.value
        if isinstance(obj, bytes):
            return obj.hex()
        return repr(obj)

    return json.dumps(value, default=default, ensure_ascii=False, sort_keys=True)


@attrs.define
class UsageBatcher:
    """Group commit for usage records: concurrent calls share one transaction.

    At most ``concurrency`` batches are in flight; records arriving meanwhile wait
    and go together in the next batch (up to ``max_batch``).  With no load a record
    is written at once, alone.
    """

    ledger: Ledger
    run: Runner
    concurrency: int = 1
    max_batch: int = 200
    _pending: list[tuple[Usage, datetime, Deferred[Receipt]]] = attrs.field(factory=list)
    _in_flight: int = 0

    def submit(self, usage: Usage, now: datetime) -> Deferred[Receipt]:
        """Queue one record; the Deferred fires with its receipt or its refusal."""
        d: Deferred[Receipt] = Deferred()
        self._pending.append((usage, now, d))
        self._flush()
        return d

    def _flush(self) -> None:
        while self._pending and self._in_flight < self.concurrency:
            batch = self._pending[: self.max_batch]
            del self._pending[: self.max_batch]
            self._in_flight += 1
            d = self.run(self.ledger.add_usages, [(u, now) for u, now, _ in batch])
            d.addBoth(self._done, batch)

    def _done(self, outcome: Any, batch: list[tuple[Usage, datetime, Deferred[Receipt]]]) -> None:
        self._in_flight -= 1
        if isinstance(outcome, list):
            for (_, _, d), result in zip(batch, outcome, strict=True):
                if isinstance(result, BillingError):
                    d.errback(result)
                else:
                    d.callback(result)
        else:
            for _, _, d in batch:
                d.errback(outcome)
        self._flush()


@attrs.define
class BillingService:
    """Orchestrates the intake: ledger work on the pool, refusals into the error store."""

    ledger: Ledger
    run: Runner
    clock: Callable[[], datetime]
    batcher: UsageBatcher
    rules: Callable[[], RuleBook] = RuleBook  # the published rules (blocking; on the pool)
    rules_max_age: timedelta = timedelta(seconds=1)
    _book: RuleBook | None = None
    _book_read_at: datetime = datetime.min.replace(tzinfo=UTC)
    payments: Payments | None = None  # None: payCallback answers NOT_IMPLEMENTED

    @classmethod
    def create(
        cls, ledger: Ledger, run: Runner, clock: Callable[[], datetime], concurrency: int = 1,
        rules: Callable[[], RuleBook] = RuleBook,
        rules_max_age: timedelta = timedelta(seconds=1), payments: Payments | None = None,
    ) -> BillingService:
        """Build a service with its usage batcher."""
        return cls(ledger, run, clock, UsageBatcher(ledger, run, concurrency), rules,
                   rules_max_age, payments=payments)

    def install_order(self, order: Order) -> Deferred[Receipt]:
        """Mirror a new order line."""
        d = self.run(self.ledger.add_order, order, self.clock())
        return self._keep_refusal(d, "installOrder", order.order_id, order)

    def update_order_state(self, event: StateEvent) -> Deferred[Receipt]:
        """Record a state change of an order."""
        d = self.run(self.ledger.add_state_event, event, self.clock())
        return self._keep_refusal(d, "updateOrderState", event.event_id, event)

    def insert_service_op(self, usage: Usage) -> Deferred[Receipt]:
        """Record one per-use consumption (group-committed with its neighbours)."""
        d = self.batcher.submit(usage, self.clock())
        return self._keep_refusal(d, "insertServiceOp", usage.op_id, usage)

    def change_account_num(self, change: AccountNumChange) -> Deferred[str]:
        """Record a change of the authorized-account count; answers ``"1"``."""
        d = self.run(self.ledger.add_account_change, change, self.clock())
        answer: Deferred[str] = d.addCallback(lambda _: "1")
        key = f"{change.payer_id}/{change.product_code}"
        return self._keep_refusal(answer, "changeAccountNum", key, change)

    def get_total_price(self, request: QuoteRequest) -> Quote | Deferred[Quote]:
        """Quote a price under the rules in force at ``request.at``.

        The published rule book is re-read (on the pool) at most every
        ``rules_max_age``; in between a quote is pure work on the calling thread.
        """
        now = self.clock()
        if self._book is not None and now - self._book_read_at < self.rules_max_age:
            return _quote(request, self._book)
        d = self.run(self.rules)
        d.addCallback(self._keep_book, now)
        return d.addCallback(lambda book: _quote(request, book))

    def _keep_book(self, book: RuleBook, read_at: datetime) -> RuleBook:
        self._book, self._book_read_at = book, read_at
        return book

    def pay_callback(self, notice: PayNotice) -> Deferred[Receipt]:
        """Apply a deduction outcome or a top-up (key ``serial``); the receipt's status
        is the outcome (``SETTLED``, ``ARREARS``, ``TOPUP``, ``IGNORED``)."""
        if self.payments is None:
            return self.refuse("payCallback", notice.serial, notice,
                               NotImplementedYet("payCallback needs the SQL ledger"))
        d = self.run(self.payments.pay_callback, notice, self.clock())
        return self._keep_refusal(d, "payCallback", notice.serial, notice)

    def refuse(self, method: str, key: str, payload: Any, error: BillingError) -> Deferred[Any]:
        """Keep a record refused before it reached the ledger, then fail with ``error``."""
        d: Deferred[Any] = Deferred()
        d.errback(error)
        return self._keep_refusal(d, method, key, payload)

    def _keep_refusal(self, d: Deferred[T], method: str, key: str, payload: Any) -> Deferred[T]:
        def keep(failure: Any) -> Any:
            error = failure.value
            if not isinstance(error, RECORDED):
                return failure
            record = ErrorRecord(
                method, key[:64], error.code, error.message[:1000], payload_text(payload),
                self.clock(),
            )
            stored = self.run(self.ledger.add_error, record)
            stored.addErrback(
                lambda f: log.failure("could not keep refused {method} {key}", f,
                                      method=method, key=key)
            )
            stored.addBoth(lambda _: failure)
            return stored

        return d.addErrback(keep)


def _quote(request: QuoteRequest, book: RuleBook) -> Quote:
    try:
        return quote(request, book)
    except RatingError as exc:
        raise NoRule(str(exc)) from exc
