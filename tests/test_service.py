"""Tests of billingcenter.service: refusals kept, usage group commit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from twisted.internet.defer import Deferred, maybeDeferred

from billingcenter.errors import InvalidArgument, NoRule, Unavailable, UnknownOrder
from billingcenter.ledger.memory import MemoryLedger
from billingcenter.model import Order, Product, Usage
from billingcenter.service import BillingService, UsageBatcher, payload_text

NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)


def sync_run(f, *args):
    return maybeDeferred(f, *args)


def ledger_with_order():
    ledger = MemoryLedger()
    ledger.sync_products([Product("SMS-NOTIFY", "SMS", frozenset({"SMS-PER-USE"}))])
    ledger.add_order(Order("o-1", "boss", "boss", "SMS-NOTIFY", "SMS-PER-USE",
                           NOW - timedelta(days=1), 0), NOW)
    return ledger


def usage(op_id, order_id="o-1", quantity=1):
    return Usage(op_id, order_id, "SMS-NOTIFY", "sms", "emp", "", quantity, NOW)


class ManualRunner:
    """A pool whose work runs only when the test says so."""

    def __init__(self):
        self.pending = []

    def __call__(self, f, *args):
        d = Deferred()
        self.pending.append((d, f, args))
        return d

    def run_next(self):
        d, f, args = self.pending.pop(0)
        try:
            d.callback(f(*args))
        except Exception as error:  # noqa: BLE001 - handed to the Deferred like the pool does
            d.errback(error)


class TestUsageBatcher:
    def test_records_arriving_during_a_flush_share_the_next(self):
        """With one batch in flight, later records wait and go together in one transaction."""
        runner = ManualRunner()
        ledger = ledger_with_order()
        batcher = UsageBatcher(ledger, runner, concurrency=1)
        results = [batcher.submit(usage(f"op-{i}"), NOW) for i in range(5)]
        assert [len(args[0]) for _, _, args in runner.pending] == [1]
        runner.run_next()
        assert [len(args[0]) for _, _, args in runner.pending] == [4]
        runner.run_next()
        receipts = [r.result for r in results]
        assert [r.key for r in receipts] == [f"op-{i}" for i in range(5)]
        assert ledger.row_counts()["usage_record"] == 5

    def test_refusal_fails_only_its_own_record(self):
        """An invalid record in a batch fails alone; its neighbours are stored."""
        runner = ManualRunner()
        batcher = UsageBatcher(ledger_with_order(), runner, concurrency=1)
        first = batcher.submit(usage("op-a"), NOW)
        bad = batcher.submit(usage("op-b", order_id="nope"), NOW)
        good = batcher.submit(usage("op-c"), NOW)
        runner.run_next()
        runner.run_next()
        assert first.result.key == "op-a" and good.result.key == "op-c"
        assert isinstance(bad.result.value, UnknownOrder)
        bad.addErrback(lambda f: None)

    def test_database_failure_fails_the_whole_batch(self):
        """When the transaction fails every waiting caller hears it, then the next batch runs."""
        runner = ManualRunner()

        class Down:
            def add_usages(self, batch):
                raise Unavailable("database unreachable")

        batcher = UsageBatcher(Down(), runner, concurrency=1)
        results = [batcher.submit(usage(f"op-{i}"), NOW) for i in range(3)]
        runner.run_next()
        runner.run_next()
        assert all(isinstance(r.result.value, Unavailable) for r in results)
        for r in results:
            r.addErrback(lambda f: None)


class TestRefusals:
    def test_refused_record_is_kept_with_reason(self):
        """A refused usage record lands in the error store with its code and payload."""
        ledger = ledger_with_order()
        service = BillingService.create(ledger, sync_run, lambda: NOW)
        d = service.insert_service_op(usage("op-x", order_id="missing"))
        assert isinstance(d.result.value, UnknownOrder)
        d.addErrback(lambda f: None)
        assert ledger.row_counts()["error_record"] == 1

    def test_outage_is_not_kept(self):
        """An outage is not a bad record: nothing goes to the error store."""
        ledger = ledger_with_order()

        class Down(MemoryLedger):
            def add_order(self, order, now):
                raise Unavailable("down")

        down = Down()
        service = BillingService.create(down, sync_run, lambda: NOW)
        d = service.install_order(Order("o-2", "p", "u", "SMS-NOTIFY", "", NOW, 0))
        assert isinstance(d.result.value, Unavailable)
        d.addErrback(lambda f: None)
        assert down.row_counts()["error_record"] == 0
        assert ledger.row_counts()["error_record"] == 0

    def test_refuse_before_ledger(self):
        """A DTO that could not be read is kept too, with what was sent."""
        ledger = ledger_with_order()
        service = BillingService.create(ledger, sync_run, lambda: NOW)
        d = service.refuse("insertServiceOp", "op-1", {"quantity": "x"},
                           InvalidArgument("quantity must be an integer"))
        assert isinstance(d.result.value, InvalidArgument)
        d.addErrback(lambda f: None)
        assert ledger.row_counts()["error_record"] == 1

    def test_payload_text(self):
        """Payloads render as JSON with dates and nested values."""
        text = payload_text(usage("op-1"))
        assert '"op_id": "op-1"' in text and "2026-11-22T08:00:00+00:00" in text


class TestQuoteRules:
    def test_rule_book_reread_at_most_every_second(self):
        """Quotes reuse the published rules for a second, then see a new publish."""
        from billingcenter.rating.model import QuoteRequest, RuleBook
        from tests.server.memhttp import shipped_rules

        books = [RuleBook(), shipped_rules()]
        loads = []

        def rules():
            loads.append(1)
            return books[min(len(loads), 2) - 1]

        now = [NOW]
        service = BillingService.create(MemoryLedger(), sync_run, lambda: now[0], rules=rules)
        request = QuoteRequest("p", "SMS-NOTIFY", "SMS-PER-USE", "", 10, 0, 0, NOW, {})
        first = service.get_total_price(request)
        assert first.result.value.code == "NO_RULE"
        first.addErrback(lambda f: None)
        now[0] = NOW + timedelta(milliseconds=500)
        with pytest.raises(NoRule):  # the cached empty book: refused at once, no re-read
            service.get_total_price(request)
        assert len(loads) == 1
        now[0] = NOW + timedelta(seconds=1)
        assert service.get_total_price(request).result.total_fen == 50
        assert len(loads) == 2
