"""A Twisted Hessian client for the outbound calls, speaking as Caucho's proxy does.

``HessianClient.call(remote, method, args)`` POSTs what ``HessianProxyFactory`` sends by
default (a Hessian 1 call body asking for a Hessian 2 reply, ``c 02 00 m ...``), with
``Content-Type: x-application/hessian`` and HTTP Basic credentials when the ``Remote``
names a user.  Connections are kept alive in one persistent pool (at most
``per_host`` per remote).  ``Remote.timeout`` bounds the connect and, separately, the
whole call (sending, waiting, reading the answer).

The Deferred fires with the reply's value, or fails with a ``CallFailed``:
``RemoteFault`` (the remote answered a Hessian fault), ``HttpStatus`` (not 200),
``CallTimeout``, ``Unreachable`` (refused, reset, no route, name unknown) or
``BadReply`` (200 but not Hessian).  ``str()`` of each is a one-line reason fit for
``outbox.last_error``.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any, cast

from twisted.internet import defer, error, protocol
from twisted.internet.defer import Deferred, succeed
from twisted.python.failure import Failure
from twisted.web import client as web_client
from twisted.web import http as web_http
from twisted.web.http_headers import Headers
from twisted.web.iweb import UNKNOWN_LENGTH, IBodyProducer, IResponse
from zope.interface import implementer

from billingcenter.config import Remote
from billingcenter.hessian import DecodeError, EncodeError, Fault, decode_reply, encode_call

CONTENT_TYPE = b"x-application/hessian"  # what Caucho's HessianURLConnection sends
CALL_VERSION = "c2"  # HessianProxyFactory's default: Hessian 1 call, Hessian 2 reply
IDLE_SECONDS = 4  # under the JDK's 5 s keep-alive, so a kept connection is seldom stale
BODY_SHOWN = 200  # bytes of a non-200 answer kept in the error


class CallFailed(Exception):
    """An outbound call did not get a reply value; the message says why, on one line."""

    kind = "failed"

    def __str__(self) -> str:
        return f"{self.kind}: {self.args[0] if self.args else ''}"


class RemoteFault(CallFailed):
    """The remote answered a Hessian fault."""

    kind = "fault"

    def __init__(self, fault: Fault) -> None:
        super().__init__(f"{fault.code}: {fault.message}")
        self.fault = fault


class HttpStatus(CallFailed):
    """The remote answered an HTTP status other than 200."""

    kind = "http"

    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(f"{status} {body[:BODY_SHOWN]!r}")
        self.status = status


class CallTimeout(CallFailed):
    """No connection or no complete answer within the remote's timeout."""

    kind = "timeout"


class Unreachable(CallFailed):
    """The connection was refused, reset or could not be made."""

    kind = "unreachable"


class BadReply(CallFailed):
    """The remote answered 200 with bytes that are not a Hessian reply."""

    kind = "bad reply"


@implementer(IBodyProducer)
class _Body:
    """A request body written in one piece (with a Content-Length)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.length: int | object = len(data) if data else UNKNOWN_LENGTH

    def startProducing(self, consumer: Any) -> Deferred[None]:
        consumer.write(self.data)
        return succeed(None)

    def pauseProducing(self) -> None:
        pass

    def resumeProducing(self) -> None:
        pass

    def stopProducing(self) -> None:
        pass


class HessianClient:
    """Calls remote Hessian services over one persistent connection pool."""

    def __init__(self, reactor: Any, per_host: int = 16) -> None:
        self._reactor = reactor
        self._pool = web_client.HTTPConnectionPool(reactor, persistent=True)
        self._pool.maxPersistentPerHost = per_host
        self._pool.cachedConnectionTimeout = IDLE_SECONDS
        self._pool.retryAutomatically = False  # a POST is never resent behind our back
        self._agents: dict[float, web_client.Agent] = {}

    def call(self, remote: Remote, method: str, args: Sequence[Any]) -> Deferred[Any]:
        """Call ``method`` at ``remote``: the reply value, or a ``CallFailed`` failure."""
        try:
            body = encode_call(method, list(args), CALL_VERSION)
            url = remote.url.encode("ascii")
        except (EncodeError, UnicodeError) as exc:
            return defer.fail(CallFailed(f"cannot make the call: {exc}"))
        requested = self._agent(remote.timeout).request(
            b"POST", url, _headers(remote), cast(IBodyProducer, _Body(body)))
        requested.addCallback(self._answer)
        requested.addTimeout(remote.timeout, self._reactor)
        requested.addErrback(_failure)
        return requested

    def close(self) -> Deferred[Any]:
        """Close the kept-alive connections."""
        return self._pool.closeCachedConnections()

    def _agent(self, timeout: float) -> web_client.Agent:
        agent = self._agents.get(timeout)
        if agent is None:
            agent = web_client.Agent(self._reactor, connectTimeout=timeout, pool=self._pool)
            self._agents[timeout] = agent
        return agent

    def _answer(self, response: IResponse) -> Deferred[Any]:
        read = _read_body(response)
        if response.code != 200:
            status = response.code

            def refused(data: bytes) -> Any:
                raise HttpStatus(status, data)

            return read.addCallback(refused)
        return read.addCallback(_decode)


class _Collect(protocol.Protocol):
    """Collects a response body; a cancelled read stops the connection."""

    def __init__(self, done: Deferred[bytes]) -> None:
        self.done = done
        self.parts: list[bytes] = []

    def dataReceived(self, data: bytes) -> None:
        self.parts.append(data)

    def connectionLost(self, reason: Failure = protocol.connectionDone) -> None:
        if self.done.called:
            return
        if reason.check(web_client.ResponseDone, web_http.PotentialDataLoss):
            self.done.callback(b"".join(self.parts))
        else:
            self.done.errback(reason)


def _read_body(response: IResponse) -> Deferred[bytes]:
    """The whole body (``readBody`` without its deprecation warning on a proxied transport)."""
    collector: _Collect

    def cancel(_: Deferred[bytes]) -> None:
        if collector.transport is not None:
            collector.transport.stopProducing()

    done: Deferred[bytes] = Deferred(cancel)
    collector = _Collect(done)
    cast(Any, response).deliverBody(collector)  # IResponse declares it without self
    return done


def _headers(remote: Remote) -> Headers:
    headers = Headers({b"content-type": [CONTENT_TYPE]})
    if remote.user:
        token = base64.b64encode(f"{remote.user}:{remote.password}".encode())
        headers.addRawHeader(b"authorization", b"Basic " + token)
    return headers


def _decode(data: bytes) -> Any:
    try:
        return decode_reply(data)
    except Fault as fault:
        raise RemoteFault(fault) from None
    except DecodeError as exc:
        raise BadReply(str(exc)) from None


_TIMEOUTS = (defer.TimeoutError, defer.CancelledError, error.TimeoutError)
_UNREACHABLE = (error.ConnectError, error.ConnectionLost, error.ConnectionDone,
                web_client.ResponseNeverReceived, web_client.ResponseFailed,
                web_client.RequestTransmissionFailed)


def _failure(failure: Failure) -> Failure:
    """Turn transport failures into ``CallFailed`` (timeouts, refusals, resets)."""
    if failure.check(CallFailed):
        return failure
    reason = failure.value
    if failure.check(*_TIMEOUTS) or _wrapped(reason, _TIMEOUTS):
        return Failure(CallTimeout(f"no answer within the timeout ({_name(reason)})"))
    if failure.check(*_UNREACHABLE):
        return Failure(Unreachable(_describe(reason)))
    return failure


def _wrapped(reason: BaseException, kinds: tuple[type[BaseException], ...]) -> bool:
    """Whether a ResponseFailed-style error wraps one of ``kinds``."""
    inner = getattr(reason, "reasons", None) or []
    return any(isinstance(f, Failure) and f.check(*kinds) for f in inner)


def _describe(reason: BaseException) -> str:
    inner = getattr(reason, "reasons", None)
    if inner:
        return "; ".join(_describe(f.value) if isinstance(f, Failure) else str(f)
                         for f in inner)
    text = str(reason).strip().rstrip(".")
    return f"{_name(reason)}: {text}" if text else _name(reason)


def _name(reason: BaseException) -> str:
    return type(reason).__name__
