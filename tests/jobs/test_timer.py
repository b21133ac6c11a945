"""The rating timer on a fake reactor clock, and the day rater on a real database."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import attrs
import pytest
from twisted.internet import defer, task
from twisted.logger import Logger, formatEvent

from billingcenter.config import RatingSettings
from billingcenter.jobs import timer as timer_module
from billingcenter.jobs.claims import RunSummary
from billingcenter.jobs.timer import DayRater, RatingTimer
from tests.jobs import rating_support as support
from tests.jobs.rating_support import DAY, TZ, Clock, Facts, book, charges, local

# The shared fixtures: SQLite and MariaDB databases of the rating-job tests.
rating_sqlite_template = support.rating_sqlite_template
rating_mysql_engine = support.rating_mysql_engine
engine = support.engine

STARTED = local("2026-11-10T10:00:00")


def summary(day: date, job: str = "daily") -> RunSummary:
    """A summary of a run of ``day``."""
    return RunSummary(job, day, "me", "run", 5, planned=2, chunks=2, seen=7, charges=6,
                      amount_fen=1234, errors=1, seconds=0.5)


class Harness:
    """A timer on a ``task.Clock`` whose ``run_day`` answers as told."""

    def __init__(self, enabled: bool = True, started: datetime = STARTED) -> None:
        self.reactor = task.Clock()
        self.reactor.advance(started.timestamp())
        self.calls: list[date] = []
        self.pending: list[defer.Deferred] = []
        self.answer = "succeed"
        self.stops = 0
        self.timer = RatingTimer(
            self.reactor, self.now, RatingSettings(enabled=enabled, delay=1800), TZ,
            self.run_day, on_stop=self.stopped,
        )

    def now(self) -> datetime:
        """The fake reactor's time."""
        return datetime.fromtimestamp(self.reactor.seconds(), UTC)

    def run_day(self, day: date) -> defer.Deferred:
        """Record the day; succeed, fail or hang as told."""
        self.calls.append(day)
        if self.answer == "succeed":
            return defer.succeed([summary(day)])
        if self.answer == "fail":
            return defer.fail(RuntimeError("database down"))
        pending: defer.Deferred = defer.Deferred()
        self.pending.append(pending)
        return pending

    def stopped(self) -> None:
        """Count the requests to stop a running rater."""
        self.stops += 1

    def advance_to(self, moment: datetime) -> None:
        """Move the fake reactor on to ``moment``."""
        self.reactor.advance(moment.timestamp() - self.reactor.seconds())


def days(*texts: str) -> list[date]:
    """Days from ISO strings."""
    return [date.fromisoformat(t) for t in texts]


class TestRatingTimer:
    def test_rates_the_days_due_when_it_starts(self):
        """At start the latest closed day and the one before are rated at once."""
        harness = Harness()
        harness.timer.startService()
        harness.reactor.advance(0)
        assert harness.calls == days("2026-11-08", "2026-11-09")

    def test_rates_each_day_delay_seconds_after_it_closes(self):
        """The 10th is rated at 00:30 on the 11th (with the 9th), not a second earlier."""
        harness = Harness()
        harness.timer.startService()
        harness.reactor.advance(0)
        harness.calls.clear()
        harness.advance_to(local("2026-11-11T00:29:59"))
        assert harness.calls == []
        harness.advance_to(local("2026-11-11T00:30:00"))
        assert harness.calls == days("2026-11-09", "2026-11-10")
        harness.advance_to(local("2026-11-12T00:30:00"))
        assert harness.calls[2:] == days("2026-11-10", "2026-11-11")

    def test_a_start_just_after_midnight_waits_for_the_delay(self):
        """Started at 00:10, the day before is not due yet: only older days run now."""
        harness = Harness(started=local("2026-11-11T00:10:00"))
        harness.timer.startService()
        harness.reactor.advance(0)
        assert harness.calls == days("2026-11-08", "2026-11-09")
        harness.advance_to(local("2026-11-11T00:30:00"))
        assert harness.calls[2:] == days("2026-11-09", "2026-11-10")

    def test_a_failure_is_retried_after_retry_after(self):
        """A failed run is logged and the same days are tried again 15 minutes later."""
        harness = Harness()
        harness.answer = "fail"
        harness.timer.startService()
        harness.reactor.advance(0)
        assert harness.calls == days("2026-11-08")  # the chain stops at the failure
        harness.answer = "succeed"
        harness.reactor.advance(15 * 60 - 1)
        assert len(harness.calls) == 1
        harness.reactor.advance(1)
        assert harness.calls[1:] == days("2026-11-08", "2026-11-09")

    def test_runs_never_overlap(self):
        """While a run is in progress no tick starts another; the next is due after it."""
        harness = Harness()
        harness.answer = "hang"
        harness.timer.startService()
        harness.reactor.advance(0)
        harness.advance_to(local("2026-11-12T00:00:00"))
        assert harness.calls == days("2026-11-08")
        harness.answer = "succeed"
        harness.pending[0].callback([summary(DAY)])
        assert harness.calls == days("2026-11-08", "2026-11-09")
        harness.reactor.advance(0)  # the 10th became due meanwhile: at once
        assert harness.calls[2:] == days("2026-11-09", "2026-11-10")

    def test_stopping_cancels_the_next_tick(self):
        """After stopService nothing is scheduled."""
        harness = Harness()
        harness.timer.startService()
        harness.reactor.advance(0)
        assert harness.timer.stopService() is None
        assert harness.reactor.getDelayedCalls() == []
        assert harness.stops == 0

    def test_stopping_during_a_run_asks_it_to_stop_and_waits(self):
        """A run in progress is asked to stop and waited for; nothing is scheduled after."""
        harness = Harness()
        harness.answer = "hang"
        harness.timer.startService()
        harness.reactor.advance(0)
        fired = []
        harness.timer.stopService().addBoth(fired.append)
        assert harness.stops == 1 and fired == []
        harness.pending[0].callback([])
        assert fired == [None]
        assert harness.reactor.getDelayedCalls() == []

    def test_disabled(self):
        """With [rating] enabled = false nothing is ever run."""
        harness = Harness(enabled=False)
        harness.timer.startService()
        harness.reactor.advance(86400 * 3)
        assert harness.calls == []

    def test_summaries_are_logged(self, monkeypatch):
        """Each job's summary is one log line with its figures."""
        events = []
        monkeypatch.setattr(timer_module, "log", Logger(observer=events.append))
        harness = Harness()
        harness.timer.startService()
        harness.reactor.advance(0)
        assert formatEvent(events[0]) == (
            "rated 2026-11-08 daily: 2 of 2 chunks, 7 looked at, 6 charges, 1234 fen, "
            "1 without a rule, 0.5 s")


    def test_differences_are_a_warning(self, monkeypatch):
        """A run that found stored charges the history now prices otherwise says so."""
        events = []
        monkeypatch.setattr(timer_module, "log", Logger(observer=events.append))
        harness = Harness()
        harness.run_day = lambda day: defer.succeed(  # type: ignore[method-assign]
            [attrs.evolve(summary(day), differences=2, over_fen=600, under_fen=35)])
        harness.timer = RatingTimer(harness.reactor, harness.now, RatingSettings(), TZ,
                                    harness.run_day)
        harness.timer.startService()
        harness.reactor.advance(0)
        assert formatEvent(events[1]) == (
            "rated 2026-11-08 daily: 2 stored charges differ from the current history, "
            "600 fen charged too much, 35 fen too little; list them: "
            "billingcenter rate --day 2026-11-08 --differences")
        assert events[1]["log_level"].name == "warn"


class TestDayRater:
    def test_rates_both_jobs_of_a_day(self, engine):
        """One call runs the daily and the per-use job with the rules of the moment."""
        facts = Facts(engine)
        facts.order("crm-1")
        facts.order("sms-1", "SMS-NOTIFY", "SMS-PER-USE")
        facts.usage("u1", "sms-1", "2026-11-10T09:00:00", 2, channel="api")
        rater = DayRater(engine, book, TZ, 10, "daemon", Clock())
        found = rater(DAY)
        assert [(s.job, s.charges, s.amount_fen) for s in found] == [
            ("daily", 1, 300), ("usage", 1, 10)]
        assert charges(engine) == {"crm-1/2026-11-10": 300, "u1": 10}

    def test_a_stopping_rater_rates_nothing_more(self, engine):
        """Once asked to stop, the rater starts no job and no chunk."""
        Facts(engine).order("crm-1")
        rater = DayRater(engine, book, TZ, 10, "daemon", Clock())
        rater.stopping.set()
        assert rater(DAY) == []
        assert charges(engine) == {}


@pytest.mark.parametrize("now, expected", [
    ("2026-11-11T00:30:00", "2026-11-10"),
    ("2026-11-11T00:29:59", "2026-11-09"),
    ("2026-11-10T23:59:59", "2026-11-09"),
])
def test_due_days(now, expected):
    """The latest due day is the one that closed at least ``delay`` ago."""
    harness = Harness()
    assert harness.timer.due_days(local(now))[-1] == date.fromisoformat(expected)
    assert len(harness.timer.due_days(local(now))) == 2


def test_due_at():
    """A day is due at its end (midnight in the business time zone) plus ``delay``."""
    assert Harness().timer.due_at(DAY) == local("2026-11-11T00:30:00")
    harness = Harness()
    other = RatingTimer(harness.reactor, harness.now, RatingSettings(delay=60), TZ,
                        harness.run_day)
    assert other.due_at(DAY) == local("2026-11-11T00:00:00") + timedelta(seconds=60)
