"""The Hessian resource: ``POST /billing`` answered the way Caucho's HessianSkeleton does.

Decode the call, check the caller, find the method, run it, and answer a reply or
a fault in the version the caller spoke, in one write.  Deliberate refusals
(``BillingError``) become faults whose detail is a Java ``BillingException``;
anything else is logged and hidden behind an ``INTERNAL_ERROR`` fault.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web import http, pages, resource, server

from billingcenter.api import dto
from billingcenter.api.methods import Method
from billingcenter.auth import Authenticator
from billingcenter.config import Caller
from billingcenter.errors import BillingError, InvalidArgument, Unauthorized
from billingcenter.hessian import Call, DecodeError
from billingcenter.hessian.decoder import decode_call
from billingcenter.hessian.encoder import encode_fault, encode_reply

log = Logger()
CONTENT_TYPE = b"application/x-hessian"
MAGIC = (ord("c"), ord("C"), ord("H"))


class HessianResource(resource.Resource):
    """Serves a method table over Hessian 1 and 2."""

    isLeaf = True

    def __init__(
        self,
        service: Any,
        methods: dict[str, Method],
        authenticator: Authenticator | None = None,
        max_depth: int = 64,
    ) -> None:
        super().__init__()
        self.service = service
        self.methods = methods
        self.authenticator = authenticator
        self.max_depth = max_depth

    def render_GET(self, request: server.Request) -> bytes:
        """Say what this is, as HessianServlet does for a browser."""
        request.setResponseCode(http.NOT_ALLOWED)
        request.setHeader(b"allow", b"POST")
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        return b"billingcenter Hessian service: POST a Hessian call here.\n"

    def render_POST(self, request: server.Request) -> Any:
        """Answer one Hessian call."""
        caller = self._authenticate(request)
        if caller is False:
            return _plain(request, http.UNAUTHORIZED, b"authentication required\n",
                          (b"www-authenticate", b'Basic realm="billingcenter"'))
        assert request.content is not None
        body = request.content.read()
        if not body or body[0] not in MAGIC:
            return _plain(request, http.BAD_REQUEST, b"not a Hessian call\n")
        try:
            call = decode_call(body, max_depth=self.max_depth)
        except DecodeError as exc:
            version = 2 if body[0] != ord("c") or body[1:2] != b"\x01" else 1
            return _hessian(request, encode_fault(
                "ProtocolException", f"malformed Hessian call: {exc}", None, version))
        version = 1 if call.version == "c1" else 2
        try:
            result = self._dispatch(call, caller)
        except (BillingError, _NoSuchMethod) as error:
            return _hessian(request, self._refusal(error, call, version))
        except Exception:
            return _hessian(request, self._fault(Failure(), call, version))
        if not isinstance(result, Deferred):
            return _hessian(request, self._encode(result, call, version))
        # The answer comes later (the database): write it unless the caller has gone.
        finished = [False]
        request.notifyFinish().addBoth(lambda _: finished.__setitem__(0, True))
        result.addCallbacks(self._encode, self._fault, (call, version), None, (call, version))
        result.addCallback(lambda data: None if finished[0] else _write(request, data))
        result.addErrback(lambda f: log.failure("could not answer {method}", f,
                                                method=call.method))
        return server.NOT_DONE_YET

    def _authenticate(self, request: server.Request) -> Caller | None | bool:
        if self.authenticator is None:
            return None
        caller = self.authenticator.authenticate(request.getHeader(b"authorization"))
        return False if caller is None else caller

    def _dispatch(self, call: Call, caller: Caller | None) -> Any:
        """Find and run the method: its wire value, or a Deferred of it."""
        method = self.methods.get(call.method)
        if method is None:
            raise _NoSuchMethod(call.method)
        if caller is not None and method.name not in caller.methods:
            raise Unauthorized(f"caller {caller.name!r} may not call {method.name}")
        if len(call.args) != len(method.params):
            raise InvalidArgument(
                f"{method.name} takes {len(method.params)} argument(s), got {len(call.args)}"
            )
        result = method.invoke(self.service, call.args)
        if isinstance(result, Deferred):
            return result.addCallback(method.render)
        return method.render(result)

    def _encode(self, value: Any, call: Call, version: int) -> bytes:
        try:
            return encode_reply(value, version)
        except Exception:
            return self._fault(Failure(), call, version)

    def _fault(self, failure: Failure, call: Call, version: int) -> bytes:
        """The fault for a failed call; anything unexpected is logged and hidden."""
        error = failure.value
        if isinstance(error, BillingError | _NoSuchMethod):
            return self._refusal(error, call, version)
        log.failure("{method} failed", failure, method=call.method)
        return self._refusal(BillingError("internal error; see the server log"), call, version)

    def _refusal(self, error: BillingError | _NoSuchMethod, call: Call, version: int) -> bytes:
        """The fault for a deliberate refusal.

        Refused records are kept in the error store, so only a caller reaching for a method
        it may not call is logged here.
        """
        if isinstance(error, _NoSuchMethod):
            return encode_fault("NoSuchMethodException",
                                f"The service has no method named: {error.name}", None, version)
        if isinstance(error, Unauthorized):
            log.warn("{method} refused: {message}", method=call.method, message=error.message)
        return encode_fault("ServiceException", error.message, dto.exception_detail(error),
                            version)


class _NoSuchMethod(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def _hessian(request: server.Request, data: bytes) -> bytes:
    """Answer Hessian bytes from ``render`` (Twisted sets Content-Length, one write)."""
    request.setHeader(b"content-type", CONTENT_TYPE)
    return data


def _write(request: server.Request, data: bytes) -> None:
    """Answer Hessian bytes later, in one write."""
    request.setHeader(b"content-type", CONTENT_TYPE)
    request.setHeader(b"content-length", b"%d" % len(data))
    request.write(data)
    request.finish()

def _plain(request: server.Request, code: int, text: bytes, *headers: tuple[bytes, bytes]) -> bytes:
    request.setResponseCode(code)
    request.setHeader(b"content-type", b"text/plain; charset=utf-8")
    for name, value in headers:
        request.setHeader(name, value)
    return text


def _max_body(request: server.Request) -> int | None:
    site = getattr(request.channel, "site", None)
    return getattr(site, "max_body", None)


class LimitedRequest(server.Request):
    """A request that refuses bodies larger than its site's ``max_body`` with HTTP 413."""

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        """Skip Twisted's form parsing: a Hessian body is never a form.

        Twisted parses the Content-Type of every POST with the ``email`` package to look
        for form data; that alone costs about a fifth of a small call.  Caucho sends
        ``x-application/hessian``; nothing here reads the header.
        """
        self.requestHeaders.removeHeader(b"content-type")
        super().requestReceived(command, path, version)

    def gotLength(self, length: int | None) -> None:
        """Refuse early when the declared length is over the limit."""
        limit = _max_body(self)
        self._received = 0
        self._too_large = limit is not None and length is not None and length > limit
        super().gotLength(length)

    def handleContentChunk(self, data: bytes) -> None:
        """Count the body and stop storing it once it is over the limit."""
        limit = _max_body(self)
        self._received += len(data)
        if limit is not None and self._received > limit:
            self._too_large = True
        if not self._too_large:
            super().handleContentChunk(data)

    def process(self) -> None:
        """Answer 413 instead of rendering when the body was too large."""
        if self._too_large:
            self.setResponseCode(http.REQUEST_ENTITY_TOO_LARGE)
            self.setHeader(b"content-type", b"text/plain; charset=utf-8")
            self.setHeader(b"connection", b"close")
            self.write(b"request body too large\n")
            self.finish()
            return
        super().process()


class BillingSite(server.Site):
    """A Site with a body limit, no request logging per call, and TCP_NODELAY."""

    requestFactory = LimitedRequest

    def __init__(self, root: resource.Resource, max_body: int, **kwargs: Any) -> None:
        super().__init__(root, **kwargs)
        self.max_body = max_body

    def log(self, request: http.Request) -> None:
        """Access logs per call would dominate the cost of a call; metrics come later."""

    def buildProtocol(self, addr: Any) -> Any:
        """Set TCP_NODELAY so a reply never waits on Nagle's algorithm."""
        protocol = super().buildProtocol(addr)
        make_connection: Callable[[Any], None] = protocol.makeConnection

        def makeConnection(transport: Any) -> None:
            if hasattr(transport, "setTcpNoDelay"):
                try:
                    transport.setTcpNoDelay(True)
                except OSError:
                    pass
            make_connection(transport)

        protocol.makeConnection = makeConnection
        return protocol


class _Root(resource.Resource):
    """Serves ``/billing``; any other path is a plain 404."""

    def getChild(self, path: bytes, request: server.Request) -> resource.IResource:
        """Anything but the registered children is not found."""
        return pages.notFound()


def make_site(root_resource: HessianResource, max_body: int) -> BillingSite:
    """The site: ``/billing`` serves Hessian; everything else is 404."""
    root = _Root()
    root.putChild(b"billing", cast(resource.IResource, root_resource))
    return BillingSite(root, max_body)
