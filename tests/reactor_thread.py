"""The global Twisted reactor run in a background thread, for tests that need real sockets.

``reactor_thread()`` starts it once per process (no signal handlers) and returns a
``ReactorThread`` whose ``call(f, *args)`` runs ``f`` in the reactor thread, waits for
its result (a Deferred is waited for too) and returns it or raises its error.
"""

from __future__ import annotations

import threading
from typing import Any

from twisted.internet import defer
from twisted.python.failure import Failure

DEFAULT_TIMEOUT = 60.0


class ReactorThread:
    """A running reactor and a way to call into it from the test's thread."""

    def __init__(self) -> None:
        from twisted.internet import reactor

        self.reactor: Any = reactor
        started = threading.Event()
        self.reactor.callWhenRunning(started.set)
        self.thread = threading.Thread(
            target=self.reactor.run, kwargs={"installSignalHandlers": False},
            name="test-reactor", daemon=True)
        self.thread.start()
        if not started.wait(30):
            raise RuntimeError("the reactor did not start")

    def call(self, function: Any, *args: Any, timeout: float = DEFAULT_TIMEOUT,
             **kwargs: Any) -> Any:
        """Run ``function(*args, **kwargs)`` in the reactor thread; its (awaited) result."""
        done = threading.Event()
        box: list[Any] = []

        def finish(result: Any) -> None:
            box.append(result)
            done.set()

        def start() -> None:
            defer.maybeDeferred(function, *args, **kwargs).addBoth(finish)

        self.reactor.callFromThread(start)
        if not done.wait(timeout):
            raise TimeoutError(f"{getattr(function, '__name__', function)} took over {timeout} s")
        result = box[0]
        if isinstance(result, Failure):
            result.raiseException()
        return result


_running: ReactorThread | None = None
_lock = threading.Lock()


def reactor_thread() -> ReactorThread:
    """The process's reactor thread, started on first use."""
    global _running
    with _lock:
        if _running is None:
            _running = ReactorThread()
        return _running
