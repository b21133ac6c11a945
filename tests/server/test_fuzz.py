"""Bad input: random and mutated bodies never crash or hang the server or change the ledger.

Every answer must be a Hessian fault (HTTP 200) or an HTTP 4xx.  The seeds are calls of
every method in every envelope that the ledger refuses (unknown order, payer or product),
so no mutation short of rewriting a whole key can turn one into an accepted record; the
only table allowed to grow is the error store.
"""

from __future__ import annotations

import random
import time
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billingcenter.catalogue import load_catalogue
from billingcenter.hessian import HessianObject, Long
from billingcenter.hessian.encoder import encode_call
from billingcenter.ledger.engine import create_engine
from billingcenter.ledger.migrate import upgrade
from billingcenter.ledger.store import SqlLedger
from billingcenter.model import Order
from tests.server.memhttp import CATALOGUE, NOW, harness

API = "org.billingcenter.api."
FAULT_PREFIXES = (b"H\x02\x00F", b"r\x01\x00f")
MUTATED_BODIES = 100_000


def seeds() -> list[bytes]:
    """Refused calls of all six methods in the three envelopes Caucho sends."""
    when = NOW - timedelta(hours=1)
    calls = [
        ("insertServiceOp", [HessianObject(API + "ServiceOp", {
            "opId": "fz-op-1", "orderId": "fz-unknown-order", "productCode": "SMS-NOTIFY",
            "itemCode": "sms", "userId": "员工😀", "payerId": None, "quantity": Long(3),
            "occurredAt": when, "attributes": {"callType": "local", "peer": "CMCC"}})]),
        ("installOrder", [HessianObject(API + "Order", {
            "orderId": "fz-order-9", "payerId": "fz-payer", "userId": "u", "productCode":
            "FZ-NO-SUCH-PRODUCT", "planCode": "FZ-NO-PLAN", "activatedAt": when,
            "accountNum": 3})]),
        ("updateOrderState", [HessianObject(API + "OrderStateChange", {
            "eventId": "fz-e-1", "orderId": "fz-unknown-order", "state": "PAUSED",
            "changedAt": when})]),
        ("changeAccountNum", ["fz-unknown-payer", 7, "PC2"]),
        ("getTotalPrice", [HessianObject(API + "PriceRequest", {
            "payerId": "fz-payer", "productCode": "FZ-NO-PRODUCT", "quantity": Long(1), "days": 1,
            "accountNum": 2, "at": when, "attributes": {}})]),
        ("payCallback", [HessianObject(API + "PayNotice", {
            "serial": "fz-s", "deductionId": "fz-d", "payerId": "fz-payer",
            "amountFen": Long(100), "status": "SUCCESS", "paidAt": when})]),
    ]
    return [encode_call(m, a, v) for m, a in calls for v in ("c1", "c2", "H2")]


def mutate(rng: random.Random, seed_bodies: list[bytes]) -> bytes:
    """One random body: pure noise, or a seed with a few byte-level mutations."""
    if rng.random() < 0.15:
        head = rng.choice([b"", b"H\x02\x00C", b"c\x01\x00m", b"c\x02\x00", b"C"])
        return head + rng.randbytes(rng.randrange(0, 200))
    body = bytearray(rng.choice(seed_bodies))
    for _ in range(rng.randint(1, 6)):
        op = rng.random()
        pos = rng.randrange(len(body) + 1)
        if op < 0.35 and body:
            body[min(pos, len(body) - 1)] = rng.randrange(256)
        elif op < 0.55:
            body[pos:pos] = bytes([rng.randrange(256)])
        elif op < 0.7 and body:
            del body[pos:pos + rng.randint(1, 8)]
        elif op < 0.8:
            del body[pos:]
        elif op < 0.9:
            other = rng.choice(seed_bodies)
            start = rng.randrange(len(other))
            body[pos:pos] = other[start:start + rng.randint(1, 40)]
        else:
            body[pos:pos] = rng.choice([b"\x51\x90", b"R\x00\x00\x00\x05", b"V", b"M", b"Z",
                                        b"z", b"\x7f" * 3, b"O\x90", b"C\x05hello\x90"])
    return bytes(body)


def assert_refused(response) -> None:
    """A fault in HTTP 200, or an HTTP 4xx; never a 5xx, never a normal reply."""
    if response.status == 200:
        assert response.body.startswith(FAULT_PREFIXES), response.body[:60]
    else:
        assert 400 <= response.status < 500, response


def business_rows(ledger) -> dict[str, int]:
    counts = ledger.row_counts()
    counts.pop("error_record")
    return counts


def with_known_order(h):
    """Store one real order so there is something that must not change."""
    h.ledger.add_order(Order("known-order-0001", "known-payer", "u", "PC2", "PC2-DAILY-ACCOUNTS",
                             NOW - timedelta(days=2), 4), NOW)
    return h.ledger.get_order("known-order-0001")


def run_fuzz(h, count: int, rng_seed: int) -> dict[int, int]:
    rng = random.Random(rng_seed)
    seed_bodies = seeds()
    statuses: dict[int, int] = {}
    for _ in range(count):
        response = h.post(mutate(rng, seed_bodies))
        assert_refused(response)
        statuses[response.status] = statuses.get(response.status, 0) + 1
    return statuses


class TestFuzz:
    def test_seeds_are_refused(self):
        """Every seed on its own is answered with a fault and stores nothing."""
        h = harness()
        before = business_rows(h.ledger)
        for body in seeds():
            assert_refused(h.post(body))
        assert business_rows(h.ledger) == before

    def test_mutated_bodies_memory_ledger(self):
        """100,000 random and mutated bodies: only faults and 4xx, the ledger unchanged."""
        h = harness()
        order = with_known_order(h)
        before = business_rows(h.ledger)
        started = time.monotonic()
        statuses = run_fuzz(h, MUTATED_BODIES, rng_seed=20261122)
        elapsed = time.monotonic() - started
        assert business_rows(h.ledger) == before
        assert h.ledger.get_order("known-order-0001") == order
        assert sum(statuses.values()) == MUTATED_BODIES
        print(f"\nfuzz: {MUTATED_BODIES} bodies in {elapsed:.1f} s, statuses {statuses}")

    def test_mutated_bodies_sqlite_ledger(self, tmp_path):
        """The same on the real SQL ledger (SQLite), fewer bodies."""
        url = f"sqlite:///{tmp_path / 'fuzz.sqlite3'}"
        upgrade(url)
        ledger = SqlLedger(create_engine(url))
        ledger.sync_products(load_catalogue(CATALOGUE))
        h = harness(ledger=ledger)
        order = with_known_order(h)
        before = business_rows(ledger)
        run_fuzz(h, 3_000, rng_seed=7)
        assert business_rows(ledger) == before
        assert ledger.get_order("known-order-0001") == order

    @settings(max_examples=1500, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(st.binary(max_size=400))
    def test_arbitrary_bytes(self, body):
        """Hypothesis-generated bodies are refused cleanly."""
        assert_refused(_SHARED.post(body))


_SHARED = harness()
