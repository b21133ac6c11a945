"""The Ledger port under concurrent callers (threads), on every backend."""

from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from billingcenter.errors import BillingError, DuplicateConflict
from billingcenter.model import OrderStatus, Receipt, StateKind

from .builders import ACTIVATED, CATALOGUE, NOW, event, order, usage

THREADS = 8


@pytest.fixture
def ledger(ledger):
    """A ledger on each backend with the catalogue synced and order o-1 installed."""
    ledger.sync_products(CATALOGUE)
    ledger.add_order(order(), NOW)
    return ledger


def all_at_once(calls):
    """Run the calls on threads released together; each answer or the error it raised."""
    barrier = threading.Barrier(len(calls))

    def run(call):
        barrier.wait()
        try:
            return call()
        except BillingError as exc:
            return exc

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


class TestConcurrentRepeats:
    def test_same_usage(self, ledger):
        """The same record sent at once from many threads: one row, one receipt for all."""
        answers = all_at_once(
            [
                lambda n=n: ledger.add_usage(usage(), NOW + timedelta(seconds=n))
                for n in range(THREADS)
            ]
        )
        assert all(isinstance(a, Receipt) for a in answers), answers
        assert len(set(answers)) == 1
        assert ledger.row_counts()["usage_record"] == 1

    def test_conflicting_usages(self, ledger):
        """Different contents under one key at once: one wins, every other one conflicts."""
        answers = all_at_once(
            [lambda n=n: ledger.add_usage(usage(quantity=n), NOW) for n in range(THREADS)]
        )
        winners = [n for n, a in enumerate(answers) if isinstance(a, Receipt)]
        assert len(winners) == 1, answers
        assert all(
            isinstance(a, DuplicateConflict) for n, a in enumerate(answers) if n not in winners
        )
        assert ledger.get_usage("op-1").quantity == winners[0]

    def test_same_order(self, ledger):
        """The same order installed at once from many threads: one row, one receipt."""
        answers = all_at_once(
            [
                lambda n=n: ledger.add_order(order(order_id="o-2"), NOW + timedelta(seconds=n))
                for n in range(THREADS)
            ]
        )
        assert len(set(answers)) == 1 and isinstance(answers[0], Receipt), answers
        assert ledger.row_counts()["order_mirror"] == 2

    def test_overlapping_batches(self, ledger):
        """Batches sharing keys, shuffled, at once: each key one row and one receipt."""
        keys = [f"op-{n}" for n in range(50)]

        def send(seed):
            shuffled = random.Random(seed).sample(keys, len(keys))
            return ledger.add_usages(
                [(usage(op_id=k), NOW + timedelta(seconds=seed)) for k in shuffled]
            )

        answers = all_at_once([lambda s=s: send(s) for s in range(THREADS)])
        by_key = {}
        for batch in answers:
            assert not isinstance(batch, BillingError), batch
            for receipt in batch:
                assert isinstance(receipt, Receipt), receipt
                by_key.setdefault(receipt.key, set()).add(receipt)
        assert sorted(by_key) == sorted(keys)
        assert all(len(receipts) == 1 for receipts in by_key.values())
        assert ledger.row_counts()["usage_record"] == len(keys)

    def test_events_of_one_order(self, ledger):
        """Events of one order arriving at once in any order: the latest sets the status."""
        kinds = [StateKind.PAUSED, StateKind.RESUMED] * (THREADS // 2)
        kinds[3] = StateKind.EXPIRED
        events = [
            event(event_id=f"e-{n}", kind=kinds[n], changed_at=ACTIVATED + timedelta(hours=n))
            for n in range(THREADS)
        ]
        events[3] = event(
            event_id="e-3", kind=StateKind.EXPIRED, changed_at=ACTIVATED + timedelta(days=3)
        )
        random.Random(7).shuffle(events)
        answers = all_at_once([lambda e=e: ledger.add_state_event(e, NOW) for e in events])
        assert all(isinstance(a, Receipt) for a in answers), answers
        assert ledger.order_status("o-1") is OrderStatus.EXPIRED
        assert ledger.row_counts()["order_state_event"] == THREADS

    def test_same_account_count(self, ledger):
        """The same new count reported at once from many threads is appended once."""
        from .builders import account_change

        answers = all_at_once(
            [lambda: ledger.add_account_change(account_change(), NOW) for _ in range(THREADS)]
        )
        assert sorted(answers) == [False] * (THREADS - 1) + [True]
        assert ledger.row_counts()["account_num_change"] == 1
