"""Tests of billingcenter.jobs.arrears: the check's candidates and the ArrearsTimer."""

from __future__ import annotations

from datetime import UTC, datetime

from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock

from billingcenter.jobs.arrears import ArrearsTimer, CheckSummary

START = datetime(2026, 12, 1, tzinfo=UTC)


def timer(run):
    reactor = Clock()
    clock = lambda: datetime.fromtimestamp(START.timestamp() + reactor.seconds(), UTC)  # noqa: E731
    return reactor, ArrearsTimer(reactor, clock, 60, run)


class TestArrearsTimer:
    def test_checks_at_start_then_every_interval(self):
        """A check at start, then one each interval, with the clock's time."""
        seen = []
        reactor, service = timer(lambda now: seen.append(now) or succeed(CheckSummary()))
        service.startService()
        reactor.advance(0)
        reactor.advance(60)
        reactor.advance(60)
        assert [int((t - START).total_seconds()) for t in seen] == [0, 60, 120]

    def test_failure_is_retried_next_tick(self):
        """A failed check is logged and the timer goes on."""
        calls = []

        def run(now):
            calls.append(now)
            d = Deferred()
            d.errback(RuntimeError("db down")) if len(calls) == 1 else d.callback(CheckSummary())
            return d

        reactor, service = timer(run)
        service.startService()
        reactor.advance(0)
        reactor.advance(60)
        assert len(calls) == 2

    def test_runs_never_overlap_and_stop_waits(self):
        """A slow check delays the next; stopping waits for it and cancels the timer."""
        pending = Deferred()
        calls = []
        reactor, service = timer(lambda now: calls.append(now) or pending)
        service.startService()
        reactor.advance(0)
        reactor.advance(600)
        assert len(calls) == 1
        stopping = service.stopService()
        assert stopping is pending
        pending.callback(CheckSummary(stopped=1))
        reactor.advance(600)
        assert len(calls) == 1 and reactor.getDelayedCalls() == []

    def test_disabled_with_zero_interval(self):
        """Interval 0 disables the timer."""
        reactor = Clock()
        service = ArrearsTimer(reactor, lambda: START, 0, lambda now: succeed(CheckSummary()))
        service.startService()
        assert reactor.getDelayedCalls() == []
