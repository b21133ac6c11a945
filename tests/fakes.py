"""A fake account system and a fake business system: real Hessian services on loopback.

Each fake is a Twisted resource answering like Caucho's ``HessianSkeleton`` (a
``H 02 00 R`` reply to ``c 02 00`` / ``H 02 00 C`` calls, ``r 01 00`` to ``c 01 00``, a
fault in HTTP 200), decoded with our codec, recording every call it receives
(``calls``), including the ones it answers with a fault or too late.

* ``FakeAccountSystem`` implements ``AccountService.chargeAccount``: it deducts at most
  once per ``deductionId`` (a repeat gets the same answer) and, with ``billing_url``,
  reports each deduction's outcome to billing's ``payCallback`` (``outcome``, per payer
  ``outcome_by_payer``, per deduction ``outcome_by_deduction``: SUCCESS, FAILED or
  INSUFFICIENT_FUNDS), serial ``PAY-<deductionId>``.
* ``FakeBusinessSystem`` implements ``BusinessService.feedbackUser``: it acts once per
  ``noticeId`` (``notices``, in arrival order).

Misbehaviour, on both: ``fail(n)`` answers the next ``n`` calls with a fault;
``slow(seconds, times)`` does the work at once but answers the next ``times`` calls
``seconds`` late; ``FakeServer.stop()`` stops listening and drops open connections
(connections are refused) and ``start()`` listens again on the same port.

As a process (for kill tests and benchmarks)::

    python -m tests.fakes account --port 0 [--billing-url URL] [--fail N] [--delay S]
    python -m tests.fakes business --port 0

prints ``fake account listening on http://127.0.0.1:PORT/`` and serves until killed;
its state is read with the Hessian method ``_fakeState`` (``tests.fakes.state(url)``)
and changed with ``_fakeConfigure(map)``.
"""

from __future__ import annotations

import argparse
import base64
import sys
import time
import weakref
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import attrs
from twisted.internet import reactor as global_reactor
from twisted.web import resource, server

from billingcenter.config import Remote
from billingcenter.hessian import Call, DecodeError, HessianObject, Long, decode_call
from billingcenter.hessian.encoder import encode_fault, encode_reply, reply_version

PAY_NOTICE = "org.billingcenter.api.PayNotice"
SUCCESS, FAILED, INSUFFICIENT_FUNDS = "SUCCESS", "FAILED", "INSUFFICIENT_FUNDS"
CALLBACK_ATTEMPTS = 5


class FakeFault(Exception):
    """Raised by a handler: answer a fault with this code and message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message = code, message


@attrs.frozen
class Received:
    """One call as the fake received it."""

    method: str
    args: tuple[Any, ...]
    version: str  # c1, c2, H2
    user: str | None
    at: float
    answer: str  # "reply", "fault", "late"


def _fields(value: Any) -> dict[str, Any]:
    return dict(value.fields) if isinstance(value, HessianObject) else dict(value or {})


class FakeHessianService(resource.Resource):
    """A Hessian service of handlers ``name -> function(*args) -> value`` (see module doc)."""

    isLeaf = True

    def __init__(self, reactor: Any = None, user: str = "", password: str = "") -> None:
        super().__init__()
        self.reactor = reactor or global_reactor
        self.user, self.password = user, password
        self.calls: list[Received] = []
        self.faults_left = 0
        self.delay, self.delays_left = 0.0, 0
        self.handlers: dict[str, Callable[..., Any]] = {
            "_fakeState": self.state, "_fakeConfigure": self.configure}

    def fail(self, times: int) -> None:
        """Answer the next ``times`` calls with a fault (the work is not done)."""
        self.faults_left = times

    def slow(self, seconds: float, times: int = 1) -> None:
        """Do the work of the next ``times`` calls at once but answer ``seconds`` late."""
        self.delay, self.delays_left = seconds, times

    def configure(self, settings: Any) -> str:
        """``_fakeConfigure``: ``fail``, ``delay`` + ``delay_times``, and subclass keys."""
        settings = _fields(settings)
        if "fail" in settings:
            self.fail(int(settings["fail"]))
        if "delay" in settings:
            self.slow(float(settings["delay"]), int(settings.get("delay_times", 1)))
        return "OK"

    def state(self) -> dict[str, Any]:
        """``_fakeState``: what the fake has seen, as plain values."""
        methods = Counter(c.method for c in self.calls if not c.method.startswith("_fake"))
        return {"calls": dict(methods)}

    def method_calls(self, method: str) -> list[Received]:
        """The recorded calls of one method."""
        return [c for c in self.calls if c.method == method]

    def render_POST(self, request: server.Request) -> Any:
        """Answer one Hessian call, as Caucho's skeleton would."""
        user = self._user(request)
        if self.user and user != self.user:
            request.setResponseCode(401)
            request.setHeader(b"www-authenticate", b'Basic realm="fake"')
            return b"authentication required\n"
        assert request.content is not None
        try:
            call = decode_call(request.content.read())
        except DecodeError as exc:
            request.setResponseCode(500)
            return f"not Hessian: {exc}\n".encode()
        data, answer = self._answer(call)
        self.calls.append(Received(call.method, call.args, call.version, user, time.time(),
                                   answer))
        request.setHeader(b"content-type", b"application/x-hessian")
        if answer != "late":
            return data
        self.reactor.callLater(self.delay, _write_late, request, data)
        return server.NOT_DONE_YET

    def _answer(self, call: Call) -> tuple[bytes, str]:
        version = reply_version(call.version)
        handler = self.handlers.get(call.method)
        if handler is None:
            return encode_fault("NoSuchMethodException",
                                f"The service has no method named: {call.method}", None,
                                version), "fault"
        control = call.method.startswith("_fake")
        if self.faults_left > 0 and not control:
            self.faults_left -= 1
            return encode_fault("ServiceException", "fake: told to fail", None, version), "fault"
        try:
            value = handler(*call.args)
        except FakeFault as fault:
            return encode_fault(fault.code, fault.message, None, version), "fault"
        data = encode_reply(value, version)
        if self.delays_left > 0 and not control:
            self.delays_left -= 1
            return data, "late"
        return data, "reply"

    def _user(self, request: server.Request) -> str | None:
        header = request.getHeader(b"authorization")
        if not header or not header.startswith(b"Basic "):
            return None
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        return user if (not self.user or password == self.password) else f"{user} (bad password)"


def _write_late(request: server.Request, data: bytes) -> None:
    if request.finished or request.channel is None:
        return  # the caller gave up and closed the connection
    request.setHeader(b"content-length", b"%d" % len(data))
    request.write(data)
    request.finish()


class FakeAccountSystem(FakeHessianService):
    """``chargeAccount``, deducting once per deductionId; reports to ``payCallback``."""

    def __init__(self, reactor: Any = None, billing_url: str = "", **kwargs: Any) -> None:
        super().__init__(reactor, **kwargs)
        self.handlers["chargeAccount"] = self.charge_account
        self.deductions: dict[str, dict[str, Any]] = {}  # deductionId -> request, in order
        self.billing_url = billing_url
        self.billing_user, self.billing_password = "", ""
        self.outcome = SUCCESS
        self.outcome_by_payer: dict[str, str] = {}
        self.outcome_by_deduction: dict[str, str] = {}
        self.callbacks: list[tuple[str, str, str]] = []  # (deductionId, status, result)

    def charge_account(self, request: Any) -> str:
        """Deduct once per deductionId; the same answer for a repeat."""
        fields = _fields(request)
        deduction_id = fields.get("deductionId")
        if not isinstance(deduction_id, str) or not deduction_id:
            raise FakeFault("IllegalArgumentException", "deductionId is required")
        if deduction_id not in self.deductions:
            self.deductions[deduction_id] = fields
            if self.billing_url:
                self.reactor.callLater(0, self._report, fields, 0)
        return f"ACCEPTED {deduction_id}"

    def repeats(self) -> dict[str, int]:
        """chargeAccount calls per deductionId."""
        return dict(Counter(_fields(c.args[0]).get("deductionId")
                            for c in self.method_calls("chargeAccount")))

    def status_of(self, fields: dict[str, Any]) -> str:
        """The outcome this fake reports for a deduction."""
        return self.outcome_by_deduction.get(
            fields["deductionId"], self.outcome_by_payer.get(fields.get("payerId", ""),
                                                             self.outcome))

    def pay_notice(self, fields: dict[str, Any]) -> HessianObject:
        """The PayNotice reporting a deduction (primitives first, as Caucho writes)."""
        return HessianObject(PAY_NOTICE, {
            "amountFen": Long(fields.get("amountFen") or 0),
            "serial": f"PAY-{fields['deductionId']}", "deductionId": fields["deductionId"],
            "payerId": fields.get("payerId"), "status": self.status_of(fields),
            "paidAt": datetime.fromtimestamp(int(time.time() * 1000) / 1000, UTC),
        })

    def _report(self, fields: dict[str, Any], attempt: int) -> None:
        from billingcenter.outbound.client import HessianClient

        remote = Remote(self.billing_url, self.billing_user, self.billing_password, 10.0)
        notice = self.pay_notice(fields)
        client = HessianClient(self.reactor, per_host=2)
        called = client.call(remote, "payCallback", [notice])
        called.addBoth(lambda result: client.close().addBoth(lambda _: result))

        def done(result: Any) -> None:
            self.callbacks.append((fields["deductionId"], notice.fields["status"],
                                   _text(result)))
            if _failed(result) and attempt + 1 < CALLBACK_ATTEMPTS:
                self.reactor.callLater(0.5, self._report, fields, attempt + 1)

        called.addBoth(done)

    def configure(self, settings: Any) -> str:
        """Also ``outcome``, ``outcome_by_payer``, ``outcome_by_deduction``, ``billing_url``."""
        super().configure(settings)
        settings = _fields(settings)
        self.outcome = settings.get("outcome", self.outcome)
        self.outcome_by_payer.update(_fields(settings.get("outcome_by_payer")))
        self.outcome_by_deduction.update(_fields(settings.get("outcome_by_deduction")))
        self.billing_url = settings.get("billing_url", self.billing_url)
        return "OK"

    def state(self) -> dict[str, Any]:
        """Also the deductions made and the calls per deduction id."""
        found = super().state()
        found.update(deducted=list(self.deductions), repeats=self.repeats(),
                     callbacks=[list(c) for c in self.callbacks],
                     requests=[dict(fields) for fields in self.deductions.values()])
        return found


def _failed(result: Any) -> bool:
    return hasattr(result, "raiseException")


def _text(result: Any) -> str:
    if _failed(result):
        return f"error: {result.value}"
    return str(getattr(result, "fields", result))


class FakeBusinessSystem(FakeHessianService):
    """``feedbackUser``, acting once per noticeId."""

    def __init__(self, reactor: Any = None, **kwargs: Any) -> None:
        super().__init__(reactor, **kwargs)
        self.handlers["feedbackUser"] = self.feedback_user
        self.notices: dict[str, dict[str, Any]] = {}  # noticeId -> notice, in order

    def feedback_user(self, notice: Any) -> str:
        """Act once per noticeId."""
        fields = _fields(notice)
        notice_id = fields.get("noticeId")
        if not isinstance(notice_id, str) or not notice_id:
            raise FakeFault("IllegalArgumentException", "noticeId is required")
        self.notices.setdefault(notice_id, fields)
        return f"ACCEPTED {notice_id}"

    def state(self) -> dict[str, Any]:
        """Also the notices acted on, in order."""
        found = super().state()
        found["notices"] = [dict(n, at=None) for n in self.notices.values()]
        return found


class _TrackingSite(server.Site):
    """A Site that remembers its open connections, so ``stop`` can drop them."""

    def __init__(self, root: resource.Resource) -> None:
        super().__init__(root)
        self.open: weakref.WeakSet[Any] = weakref.WeakSet()
        self.noisy = False

    def log(self, request: Any) -> None:
        """No access log."""

    def buildProtocol(self, addr: Any) -> Any:
        """Remember the transport and set TCP_NODELAY (answers go out in one write)."""
        protocol = super().buildProtocol(addr)
        make_connection = protocol.makeConnection

        def makeConnection(transport: Any) -> None:
            self.open.add(transport)
            transport.setTcpNoDelay(True)
            make_connection(transport)

        protocol.makeConnection = makeConnection
        return protocol


class FakeServer:
    """A fake served on 127.0.0.1; ``stop`` refuses connections until ``start``."""

    def __init__(self, fake: FakeHessianService, reactor: Any = None) -> None:
        self.fake = fake
        self.reactor = reactor or fake.reactor
        self.site = _TrackingSite(fake)
        self.port_number = 0
        self.listening: Any = None

    def start(self, port: int | None = None) -> FakeServer:
        """Listen (on ``port``, else the previous port, else a free one); call in the reactor."""
        self.listening = self.reactor.listenTCP(
            port if port is not None else self.port_number, self.site, interface="127.0.0.1")
        self.port_number = self.listening.getHost().port
        return self

    def stop(self) -> Any:
        """Stop listening and drop the open connections; call in the reactor thread."""
        for transport in list(self.site.open):
            transport.abortConnection()
        listening, self.listening = self.listening, None
        return listening.stopListening() if listening is not None else None

    @property
    def url(self) -> str:
        """Where the fake answers (any path works)."""
        return f"http://127.0.0.1:{self.port_number}/"


def state(url: str) -> dict[str, Any]:
    """The state of a fake running as a process (``_fakeState``), with the blocking client."""
    from billingcenter.client import call_once

    return dict(call_once(url, "_fakeState", []))


def configure(url: str, **settings: Any) -> None:
    """Change a fake running as a process (``_fakeConfigure``)."""
    from billingcenter.client import call_once

    call_once(url, "_fakeConfigure", [settings])


def main(argv: list[str] | None = None) -> int:
    """Serve one fake until killed (see the module doc)."""
    parser = argparse.ArgumentParser(prog="python -m tests.fakes")
    parser.add_argument("kind", choices=("account", "business"))
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--user", default="", help="require HTTP Basic with this user")
    parser.add_argument("--password", default="")
    parser.add_argument("--billing-url", default="", help="report outcomes to payCallback here")
    parser.add_argument("--outcome", default=SUCCESS, choices=(SUCCESS, FAILED,
                                                               INSUFFICIENT_FUNDS))
    parser.add_argument("--fail", type=int, default=0, help="fault the first N calls")
    parser.add_argument("--delay", type=float, default=0.0, help="answer S seconds late")
    parser.add_argument("--delay-times", type=int, default=1 << 30)
    args = parser.parse_args(argv)
    fake: FakeHessianService
    if args.kind == "account":
        fake = FakeAccountSystem(global_reactor, args.billing_url, user=args.user,
                                 password=args.password)
        fake.outcome = args.outcome
    else:
        fake = FakeBusinessSystem(global_reactor, user=args.user, password=args.password)
    fake.fail(args.fail)
    if args.delay:
        fake.slow(args.delay, args.delay_times)
    from twisted.logger import globalLogBeginner, textFileLogObserver

    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stderr)], redirectStandardIO=False)
    served = FakeServer(fake).start(args.port)
    print(f"fake {args.kind} listening on {served.url}", flush=True)
    global_reactor.run()  # type: ignore[attr-defined]
    return 0


if __name__ == "__main__":
    sys.exit(main())
