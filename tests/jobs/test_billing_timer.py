"""The bill timer on a fake reactor clock, and the bill runner on a real database."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from twisted.internet import defer, task

from billingcenter.config import BillingSettings
from billingcenter.jobs.bill_timer import BillRunner, BillTimer
from billingcenter.jobs.billing import BillRunSummary
from billingcenter.jobs.claims import RunSummary
from tests.jobs import billing_support as support
from tests.jobs.billing_support import SETTINGS, Clock, bills, month

billing_sqlite_template = support.billing_sqlite_template
billing_mysql_engine = support.billing_mysql_engine
engine = support.engine

TZ = ZoneInfo("Asia/Shanghai")
DELAY = 7200


def local(text: str) -> datetime:
    """A business-time moment (+08:00) as aware UTC."""
    return datetime.fromisoformat(text + "+08:00").astimezone(UTC)


def summary(bill_date: date) -> BillRunSummary:
    """A summary of a run of ``bill_date``."""
    return BillRunSummary(RunSummary("bill", bill_date, "me", "run", 2, planned=1, chunks=1,
                                     seen=3, charges=9, amount_fen=900), bills=3, owed=3)


class Harness:
    """A timer on a ``task.Clock`` whose ``run_date`` answers as told."""

    def __init__(self, started: str, enabled: bool = True, lookback: int = 1) -> None:
        self.reactor = task.Clock()
        self.reactor.advance(local(started).timestamp())
        self.calls: list[date] = []
        self.answer = "succeed"
        self.pending: list[defer.Deferred] = []
        self.stops = 0
        self.timer = BillTimer(self.reactor, self.now,
                               BillingSettings(enabled=enabled, delay=DELAY), TZ, self.run_date,
                               lookback=lookback, on_stop=self.stopped)

    def now(self) -> datetime:
        """The fake reactor's time."""
        return datetime.fromtimestamp(self.reactor.seconds(), UTC)

    def run_date(self, bill_date: date) -> defer.Deferred:
        """Record the date; succeed, fail or hang as told."""
        self.calls.append(bill_date)
        if self.answer == "succeed":
            return defer.succeed(summary(bill_date))
        if self.answer == "fail":
            return defer.fail(RuntimeError("database down"))
        pending: defer.Deferred = defer.Deferred()
        self.pending.append(pending)
        return pending

    def stopped(self) -> None:
        """Count the stop requests."""
        self.stops += 1

    def at(self, text: str) -> None:
        """Move the reactor to business time ``text``."""
        self.reactor.advance(local(text).timestamp() - self.reactor.seconds())


class TestBillTimer:
    def test_due_dates_start_plus_delay(self):
        """A date is due two hours (the delay) after its business midnight."""
        timer = Harness("2026-12-01T10:00:00").timer
        assert timer.due_at(date(2026, 12, 1)) == local("2026-12-01T02:00:00")
        assert timer.due_dates(local("2026-12-01T01:59:59")) == [
            date(2026, 11, 29), date(2026, 11, 30)]
        assert timer.due_dates(local("2026-12-01T02:00:00")) == [
            date(2026, 11, 30), date(2026, 12, 1)]

    def test_start_catches_up_then_waits_for_the_next_date(self):
        """Starting runs the due dates (lookback first); the next run is at the next due."""
        harness = Harness("2026-12-01T10:00:00")
        harness.timer.startService()
        harness.reactor.advance(0)
        assert harness.calls == [date(2026, 11, 30), date(2026, 12, 1)]
        harness.at("2026-12-02T01:59:00")
        assert len(harness.calls) == 2
        harness.at("2026-12-02T02:00:00")
        assert harness.calls[2:] == [date(2026, 12, 1), date(2026, 12, 2)]

    def test_a_failure_is_retried(self):
        """A failed run is tried again after retry_after (15 minutes)."""
        harness = Harness("2026-12-01T10:00:00", lookback=0)
        harness.answer = "fail"
        harness.timer.startService()
        harness.reactor.advance(0)
        assert harness.calls == [date(2026, 12, 1)]
        harness.answer = "succeed"
        harness.reactor.advance(14 * 60)
        assert len(harness.calls) == 1
        harness.reactor.advance(60)
        assert harness.calls == [date(2026, 12, 1), date(2026, 12, 1)]

    def test_disabled_does_nothing(self):
        """With [billing] enabled = false nothing is scheduled."""
        harness = Harness("2026-12-01T10:00:00", enabled=False)
        harness.timer.startService()
        harness.reactor.advance(3 * 86400)
        assert harness.calls == []

    def test_stopping_waits_for_the_run_and_asks_it_to_stop(self):
        """stopService asks the running run to stop and fires when it has ended."""
        harness = Harness("2026-12-01T10:00:00", lookback=0)
        harness.answer = "hang"
        harness.timer.startService()
        harness.reactor.advance(0)
        ended: list[object] = []
        harness.timer.stopService().addBoth(ended.append)
        assert (harness.stops, ended) == (1, [])
        harness.pending[0].callback(summary(date(2026, 12, 1)))
        assert len(ended) == 1
        harness.reactor.advance(2 * 86400)
        assert harness.calls == [date(2026, 12, 1)]


class TestBillRunner:
    def test_runs_the_bill_run(self, engine):
        """The runner bills the date it is given."""
        month(engine, "p-1", "o-1", date(2026, 11, 29), 2, 150)
        runner = BillRunner(engine, SETTINGS, "daemon", Clock())
        found = runner(date(2026, 12, 1))
        assert (found.bills, found.total_fen) == (1, 300)
        assert bills(engine)[("p-1", date(2026, 12, 1))].status == "OWED"

    def test_a_stopping_runner_bills_no_chunk(self, engine):
        """Once asked to stop, the runner ends before its next chunk."""
        month(engine, "p-1", "o-1", date(2026, 11, 29), 2, 150)
        runner = BillRunner(engine, SETTINGS, "daemon", Clock())
        runner.stopping.set()
        found = runner(date(2026, 12, 1))
        assert (found.bills, found.run.stopped) == (0, True)
        assert bills(engine) == {}
