"""Charge and claim storage (``billingcenter.ledger.charges``) on SQLite and MariaDB."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from billingcenter.jobs.claims import PlannedChunk, claim, may_take
from billingcenter.ledger import charges as store
from billingcenter.ledger.charges import ChargeStoreError, ChunkResult, Claim
from billingcenter.ledger.schema_rating import charge
from billingcenter.rating.model import Charge, ChargeKind
from tests.jobs import rating_support as support
from tests.jobs.rating_support import (
    DAY,
    RUN_AT,
    Clock,
)

NASTY = "o-'quote'\\back\"slash;\n--\x00 中文 😀"

# The shared fixtures: SQLite and MariaDB databases of the rating-job tests.
rating_sqlite_template = support.rating_sqlite_template
rating_mysql_engine = support.rating_mysql_engine
engine = support.engine


def a_charge(key: str = "o-1/2026-11-10", units: str = "1", price: str = "3.00",
             amount: int = 300, **changes) -> Charge:
    """A daily charge."""
    fields = dict(kind=ChargeKind.DAILY, source_key=key, order_id=key.split("/")[0],
                  payer_id="p-1", product_code="CRM-BASIC", day=DAY, rule_set="test-daily",
                  rule_set_version="2026.11.1", rule_id="crm-daily", units=Decimal(units),
                  unit_price=Decimal(price), amount_fen=amount,
                  explanation={"mode": "daily", "why": "test"})
    fields.update(changes)
    return Charge(**fields)


def insert(engine, *items: Charge, run_id: str = "run-1") -> int:
    """Insert the charges in one transaction; how many were new."""
    with engine.begin() as conn:
        return store.insert_charges(conn, [store.charge_row(c, RUN_AT, run_id) for c in items])


class TestInsertCharges:
    def test_new_rows_are_inserted_and_counted(self, engine):
        """Every new (kind, source_key) is written, values exact."""
        assert insert(engine, a_charge(), a_charge("o-2/2026-11-10", "7", "0.333333", 233)) == 2
        stored = {row.source_key: row for row in _charges(engine)}
        assert stored["o-2/2026-11-10"].units == Decimal("7")
        assert stored["o-2/2026-11-10"].unit_price == Decimal("0.333333")
        assert stored["o-1/2026-11-10"].explanation == '{"mode":"daily","why":"test"}'
        assert stored["o-1/2026-11-10"].rated_at == RUN_AT
        assert stored["o-1/2026-11-10"].day == DAY

    def test_a_stored_key_is_skipped_not_replaced(self, engine):
        """A second charge with a stored (kind, source_key) changes nothing."""
        insert(engine, a_charge(amount=300))
        assert insert(engine, a_charge(amount=999), a_charge("o-3/2026-11-10"),
                      run_id="run-2") == 1
        assert {r.source_key: (r.amount_fen, r.run_id) for r in _charges(engine)} == {
            "o-1/2026-11-10": (300, "run-1"), "o-3/2026-11-10": (300, "run-2")}

    def test_the_same_key_of_another_kind_is_another_charge(self, engine):
        """Keys are unique per kind."""
        assert insert(engine, a_charge("k"), a_charge("k", kind=ChargeKind.USAGE)) == 2

    def test_strings_are_stored_exactly(self, engine):
        """Quotes, backslashes, NUL, newlines and non-BMP text survive the insert."""
        insert(engine, a_charge(NASTY, explanation={"note": NASTY}))
        (row,) = _charges(engine)
        assert row.source_key == NASTY
        assert json.loads(row.explanation) == {"note": NASTY}

    def test_many_rows_in_several_statements(self, engine):
        """More rows than one statement holds are all inserted."""
        items = [a_charge(f"o-{i}/2026-11-10") for i in range(store.MYSQL_BATCH + 7)]
        assert insert(engine, *items) == len(items)

    def test_inserted_totals_count_only_this_runs_rows(self, engine):
        """Of a batch partly stored before, count and total only what this run wrote."""
        insert(engine, a_charge("a", amount=100))
        batch = [a_charge("a", amount=100), a_charge("b", amount=250)]
        insert(engine, *batch, run_id="run-2")
        with engine.connect() as conn:
            rows_ = [store.charge_row(c, RUN_AT, "run-2") for c in batch]
            assert store.inserted_totals(conn, rows_, "run-2") == (1, 250)

    @pytest.mark.parametrize("units", ["0.1234567", "1e20", "NaN"])
    def test_a_decimal_the_column_cannot_hold_is_refused(self, units):
        """Units with more than 6 decimals or 14 integer digits are refused, not rounded."""
        with pytest.raises(ChargeStoreError, match="DECIMAL"):
            store.charge_row(a_charge(units=units), RUN_AT, "run")

    @pytest.mark.parametrize(
        "engine", [pytest.param("mariadb", marks=pytest.mark.mariadb)], indirect=True
    )
    def test_a_value_mysql_would_clip_is_refused(self, engine):
        """On MySQL a too-long value is an error, not a silently clipped row."""
        with pytest.raises(ChargeStoreError, match="altered"):
            insert(engine, a_charge(rule_id="r" * 500))
        assert _charges(engine) == []


class TestClaims:
    def test_the_first_claim_wins(self, engine):
        """Of two owners claiming one chunk, the second gets nothing while it runs."""
        planned = PlannedChunk(0, 3, 3)
        clock = Clock()
        first = _claim(engine, planned, "a", clock)
        assert first is not None and (first.owner, first.status) == ("a", "running")
        assert _claim(engine, planned, "b", clock) is None

    def test_the_same_owner_takes_its_own_claim_back(self, engine):
        """An owner restarted after a crash takes its running chunk back at once."""
        clock = Clock()
        _claim(engine, PlannedChunk(0, 3, 3), "a", clock)
        again = _claim(engine, PlannedChunk(0, 3, 3), "a", clock)
        assert again is not None and again.owner == "a"

    def test_a_stale_claim_is_taken_over(self, engine):
        """A claim running longer than stale_after is taken by another owner."""
        clock = Clock()
        _claim(engine, PlannedChunk(0, 3, 3), "a", clock)
        clock.advance(timedelta(minutes=11))
        taken = _claim(engine, PlannedChunk(0, 3, 3), "b", clock)
        assert taken is not None and taken.owner == "b"

    def test_finishing_a_lost_claim_fails(self, engine):
        """Only the current holder can mark a chunk done."""
        clock = Clock()
        held = _claim(engine, PlannedChunk(0, 3, 3), "a", clock)
        clock.advance(timedelta(minutes=11))
        _claim(engine, PlannedChunk(0, 3, 3), "b", clock)
        with engine.begin() as conn:
            assert not store.finish_claim(conn, held, ChunkResult(3, 3, 3, 900), clock())

    def test_a_done_chunk_is_taken_only_for_new_work(self, engine):
        """A done chunk is claimed again only when ``redo`` says it has new work."""
        clock = Clock()
        held = _claim(engine, PlannedChunk(0, 3, 3), "a", clock)
        with engine.begin() as conn:
            assert store.finish_claim(conn, held, ChunkResult(3, 3, 2, 600), clock())
        assert _claim(engine, PlannedChunk(0, 3, 3), "b", clock) is None
        again = _claim(engine, PlannedChunk(0, 4, 4), "b", clock, redo=True)
        assert again is not None
        with engine.begin() as conn:
            assert store.finish_claim(conn, again, ChunkResult(4, 4, 1, 300), clock())
            found = store.get_claim(conn, "daily", DAY, 0)
        assert (found.status, found.last_id, found.charges, found.amount_fen) == (
            "done", 4, 3, 900)

    def test_may_take(self):
        """The takeover rule: own or stale running claims, done ones with new work."""
        now = RUN_AT
        running = Claim("daily", DAY, 0, 5, "running", "a", now, None, None, 0, 0, 0)
        done = Claim("daily", DAY, 0, 5, "done", "a", now, now, 5, 5, 5, 5)
        ten = timedelta(minutes=10)
        assert may_take(running, "a", now, ten, False)
        assert not may_take(running, "b", now + ten, ten, False)
        assert may_take(running, "b", now + ten + timedelta(seconds=1), ten, False)
        assert not may_take(done, "a", now, ten, False)
        assert may_take(done, "b", now, ten, True)


def _claim(engine, planned, owner, clock, redo=False):
    return claim(engine, "daily", DAY, 5, planned, owner, clock, timedelta(minutes=10),
                 lambda held: redo)


def _charges(engine):
    with engine.connect() as conn:
        return conn.execute(sa.select(charge).order_by(charge.c.id)).all()
