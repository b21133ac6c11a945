"""Facts recorded after their day was rated, on SQLite and MariaDB: the daily job rates
the chunks they touch again, adds what is missing, and reports what it cannot change."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa
from twisted.internet import defer, task

from billingcenter.config import RatingSettings
from billingcenter.jobs.daily import day_differences, rate_day_job
from billingcenter.jobs.late import LATE_MARGIN, Difference
from billingcenter.jobs.timer import DayRater, RatingTimer
from billingcenter.ledger.schema_billing import payer_account
from billingcenter.ledger.schema_rating import charge, job_claim
from billingcenter.model import StateKind
from tests.jobs import rating_support as support
from tests.jobs.rating_support import (
    DAY,
    EVENTS_RECORDED,
    RUN_AT,
    TZ,
    Clock,
    Facts,
    book,
    charges,
    local,
    rows,
)

KEY = f"/{DAY.isoformat()}"
LATER = RUN_AT + timedelta(hours=6)  # when a late fact arrives
RERUN_AT = RUN_AT + timedelta(days=1)  # when the day is rated again

# The shared fixtures: SQLite and MariaDB databases of the rating-job tests.
rating_sqlite_template = support.rating_sqlite_template
rating_mysql_engine = support.rating_mysql_engine
engine = support.engine


def run(engine, at=RUN_AT, chunk=2):
    """Rate DAY with the test rules at ``at``, two orders a chunk."""
    return rate_day_job(engine, book(), DAY, TZ, chunk, "owner", Clock(at))


def orders(facts: Facts, recorded: datetime = EVENTS_RECORDED) -> dict[str, int]:
    """Six orders in three chunks of two (events ``recorded`` then); the charges (fen) of
    DAY they make."""
    facts.order("crm-1")
    facts.order("crm-2")
    facts.order("crm-paused")  # paused before the day: no charge
    facts.event("crm-paused", StateKind.PAUSED, "2026-11-08T12:00:00", recorded=recorded)
    facts.order("crm-3")
    facts.order("pc2-a", "PC2", "PC2-DAILY-ACCOUNTS", payer="pa", accounts=3)
    facts.order("crm-4")
    return {"crm-1" + KEY: 300, "crm-2" + KEY: 300, "crm-3" + KEY: 300,
            "pc2-a" + KEY: 105, "crm-4" + KEY: 300}


class TestLateFacts:
    def test_a_late_resumption_adds_exactly_the_missing_day(self, engine):
        """A RESUMED dated before the day, recorded after it was rated, charges the day
        once: only its chunk is rated again, nothing else is written or changed."""
        facts = Facts(engine)
        expected = orders(facts)
        first = run(engine)
        assert charges(engine) == expected and first.chunks == 3
        before = rows(engine, charge)
        facts.event("crm-paused", StateKind.RESUMED, "2026-11-09T12:00:00", recorded=LATER)
        again = run(engine, RERUN_AT)
        assert (again.planned, again.chunks, again.skipped) == (3, 1, 2)
        assert (again.charges, again.amount_fen, again.differences) == (1, 300, 0)
        assert charges(engine) == {**expected, "crm-paused" + KEY: 300}
        assert rows(engine, charge)[:len(before)] == before
        third = run(engine, RERUN_AT + timedelta(days=1))
        assert (third.chunks, third.charges) == (0, 0)
        assert len(rows(engine, charge)) == len(before) + 1

    def test_an_unchanged_day_reruns_no_chunk(self, engine):
        """With nothing recorded since, or only facts dated after the day, a rerun rates
        no chunk and writes nothing."""
        facts = Facts(engine)
        orders(facts)
        run(engine)
        facts.event("crm-1", StateKind.PAUSED, "2026-11-11T09:00:00", recorded=LATER)
        facts.accounts("pa", "PC2", 9, "2026-11-11T10:00:00", recorded=LATER)
        before = rows(engine, charge), rows(engine, job_claim)
        again = run(engine, RERUN_AT)
        assert (again.planned, again.chunks, again.skipped, again.charges) == (3, 0, 3, 0)
        assert (rows(engine, charge), rows(engine, job_claim)) == before

    def test_a_fact_recorded_just_before_the_claim_is_looked_at_once(self, engine):
        """Recorded within ``LATE_MARGIN`` before the chunk was claimed, it may have been
        committed after the chunk was read: the next run rates the chunk again, once."""
        facts = Facts(engine)
        orders(facts)
        facts.event("crm-1", StateKind.PAUSED, "2026-11-10T09:00:00",
                    recorded=RUN_AT - LATE_MARGIN / 2)
        run(engine)
        assert run(engine, RERUN_AT).chunks == 1
        assert run(engine, RERUN_AT + timedelta(days=1)).chunks == 0

    def test_a_late_pause_that_removes_the_day_is_reported_not_changed(self, engine):
        """A PAUSED dated before the day: the stored charge stays, the rerun counts it
        (300 fen too much) and ``day_differences`` lists it."""
        facts = Facts(engine)
        expected = orders(facts)
        run(engine)
        before = rows(engine, charge)
        facts.event("crm-3", StateKind.PAUSED, "2026-11-09T23:00:00", recorded=LATER)
        again = run(engine, RERUN_AT)
        assert (again.chunks, again.charges, again.amount_fen) == (1, 0, 0)
        assert (again.differences, again.over_fen, again.under_fen) == (1, 300, 0)
        assert rows(engine, charge) == before and charges(engine) == expected
        assert list(day_differences(engine, book(), DAY, TZ, 2)) == [
            Difference(DAY, "crm-3" + KEY, "crm-3", "p-crm-3", 300, None, 0)]

    def test_a_late_account_change_is_reported_as_charged_too_little(self, engine):
        """An account change inside the day recorded after it was rated (the day was
        rated before it closed): 8 accounts x 0.35 = 280 fen, 105 stored, 175 too little."""
        early = datetime(2026, 11, 10, 3, 0, tzinfo=UTC)  # 11:00 on the day itself
        facts = Facts(engine)
        orders(facts, recorded=early - timedelta(hours=1))
        run(engine, early)
        facts.accounts("pa", "PC2", 8, "2026-11-10T12:00:00", recorded=local("2026-11-10T12:00:00"))
        again = run(engine, RERUN_AT)
        assert (again.chunks, again.charges) == (1, 0)
        assert (again.differences, again.over_fen, again.under_fen) == (1, 0, 175)
        assert charges(engine)["pc2-a" + KEY] == 105
        (found,) = day_differences(engine, book(), DAY, TZ, 5)
        assert (found.order_id, found.stored_fen, found.current_fen) == ("pc2-a", 105, 280)

    def test_differences_say_whether_the_charge_is_billed(self, engine):
        """A charge already on a bill is listed as billed, for the operator's credit."""
        facts = Facts(engine)
        orders(facts)
        run(engine)
        with engine.begin() as conn:
            stored = conn.execute(sa.select(charge.c.id, charge.c.payer_id).where(
                charge.c.source_key == "crm-1" + KEY)).one()
            conn.execute(payer_account.insert().values(
                payer_id=stored.payer_id, kind="POSTPAID", balance_fen=0, floor_fen=0,
                threshold_fen=0, service_state="OPEN", updated_at=LATER,
                billed_upto=stored.id, billed_before=DAY + timedelta(days=1)))
        facts.event("crm-1", StateKind.CANCELLED, "2026-11-09T08:00:00", recorded=LATER)
        assert [(d.order_id, d.over_fen, d.billed)
                for d in day_differences(engine, book(), DAY, TZ, 2)] == [("crm-1", 300, True)]
        facts.event("pc2-a", StateKind.CANCELLED, "2026-11-09T08:00:00", recorded=LATER)
        assert {(d.order_id, d.billed) for d in day_differences(engine, book(), DAY, TZ, 2)} == {
            ("crm-1", True), ("pc2-a", False)}  # payer "pa" has never been billed


class TestLookback:
    def test_the_timer_rates_a_late_event_three_days_back(self, engine):
        """A RESUMED for a day rated three days ago is charged by the next tick, since
        ``lookback`` covers the day; a timer looking one day back never sees it."""
        facts = Facts(engine)
        expected = orders(facts)
        run(engine)
        tick = local("2026-11-13T00:30:00")  # DAY + 3 closed and due
        facts.event("crm-paused", StateKind.RESUMED, "2026-11-09T12:00:00",
                    recorded=tick - timedelta(hours=1))
        reactor = task.Clock()
        reactor.advance(tick.timestamp())
        rater = DayRater(engine, book, TZ, 2, "daemon", Clock(tick))
        rated: list[date] = []

        def run_day(day: date) -> defer.Deferred:
            rated.append(day)
            return defer.succeed(rater(day))

        def now() -> datetime:
            return datetime.fromtimestamp(reactor.seconds(), UTC)

        short = RatingTimer(reactor, now, RatingSettings(delay=1800), TZ, run_day)
        assert DAY not in short.due_days(tick)
        timer = RatingTimer(reactor, now, RatingSettings(delay=1800), TZ, run_day,
                            lookback=RatingSettings().lookback)
        timer.startService()
        reactor.advance(0)
        timer.stopService()
        assert DAY in rated and rated[-1] == date(2026, 11, 12)
        of_day = {key: fen for key, fen in charges(engine, "daily").items() if key.endswith(KEY)}
        assert of_day == {**expected, "crm-paused" + KEY: 300}
