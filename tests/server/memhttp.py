"""A full HTTP round trip through the real Site with no socket (StringTransport).

The service runs its ledger work synchronously on a MemoryLedger (or any ledger
passed in), so a response is complete when ``post`` returns.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
from twisted.internet.address import IPv4Address
from twisted.internet.defer import maybeDeferred
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure

from billingcenter.api.methods import method_table
from billingcenter.auth import Authenticator
from billingcenter.catalogue import load_catalogue
from billingcenter.config import Caller
from billingcenter.ledger.memory import MemoryLedger
from billingcenter.rating.model import RuleBook
from billingcenter.rating.ruleset import parse_rule_set
from billingcenter.resource import BillingSite, HessianResource, make_site
from billingcenter.service import BillingService

NOW = datetime(2026, 11, 22, 8, 0, 0, 123000, tzinfo=UTC)
CATALOGUE = Path(__file__).resolve().parents[2] / "conf" / "catalogue.toml"
RULES = CATALOGUE.parent / "rules"


def sync_run(f: Callable[..., Any], *args: Any) -> Any:
    """Run 'on the pool' at once: the Deferred has fired when this returns."""
    return maybeDeferred(f, *args)


@attrs.define
class Response:
    """A parsed HTTP response."""

    status: int
    headers: dict[str, str]
    body: bytes


@attrs.define
class Harness:
    """A site, its service and its ledger, driven without sockets."""

    site: BillingSite
    service: BillingService
    ledger: Any

    def connect(self) -> tuple[Any, StringTransport]:
        """A new keep-alive connection to the site."""
        protocol = self.site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40000))
        transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 40000))
        protocol.makeConnection(transport)
        return protocol, transport

    def post(self, body: bytes, headers: Iterable[tuple[str, str]] = (),
             path: str = "/billing", method: str = "POST") -> Response:
        """Send one request on a fresh connection and parse the answer."""
        protocol, transport = self.connect()
        protocol.dataReceived(raw_request(body, headers, path, method))
        protocol.connectionLost(Failure(ConnectionDone()))
        responses = parse_responses(transport.value())
        assert len(responses) == 1, transport.value()
        return responses[0]


def raw_request(body: bytes, headers: Iterable[tuple[str, str]] = (), path: str = "/billing",
                method: str = "POST") -> bytes:
    """The bytes of one HTTP/1.1 request."""
    lines = [f"{method} {path} HTTP/1.1", "Host: test", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def parse_responses(data: bytes) -> list[Response]:
    """Split a byte stream of HTTP/1.1 responses (Content-Length framed)."""
    responses = []
    while data:
        head, _, rest = data.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", len(rest)))
        responses.append(Response(int(status_line.split()[1]), headers, rest[:length]))
        data = rest[length:]
    return responses


def shipped_rules() -> RuleBook:
    """Every rule set shipped in conf/rules, as if published."""
    return RuleBook(tuple(parse_rule_set(path.read_text(encoding="utf-8"))
                          for path in sorted(RULES.glob("*.toml"))))


def harness(ledger: Any = None, callers: tuple[Caller, ...] = (), max_body: int = 1 << 20,
            max_depth: int = 64, run: Callable[..., Any] = sync_run,
            clock: Callable[[], datetime] = lambda: NOW,
            rules: Callable[[], RuleBook] = shipped_rules) -> Harness:
    """A site over a MemoryLedger holding the shipped catalogue."""
    if ledger is None:
        ledger = MemoryLedger()
        ledger.sync_products(load_catalogue(CATALOGUE))
    service = BillingService.create(ledger, run, clock, rules=rules)
    authenticator = Authenticator.from_callers(callers) if callers else None
    resource = HessianResource(service, method_table(), authenticator, max_depth)
    site = make_site(resource, max_body)
    site.reactor = MemoryReactorClock()
    site.timeOut = None  # no idle timers: a test connection lives as long as the test
    return Harness(site, service, ledger)
