"""A small blocking Hessian client over HTTP, for operators (``billingcenter call``),
benchmarks and tests.  The daemon's outbound calls use a Twisted client instead."""

from __future__ import annotations

import base64
import http.client
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from billingcenter.hessian.decoder import decode_reply
from billingcenter.hessian.encoder import encode_call


class HttpError(Exception):
    """The server answered with an HTTP status other than 200."""

    def __init__(self, status: int, reason: str, body: bytes) -> None:
        super().__init__(f"HTTP {status} {reason}: {body[:200]!r}")
        self.status = status
        self.body = body


class HessianClient:
    """Calls methods of one Hessian URL over a kept-alive connection."""

    def __init__(
        self, url: str, user: str | None = None, password: str | None = None,
        version: str = "H2", timeout: float = 30.0,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self.path = parts.path or "/"
        self.version = version
        conn_class = (http.client.HTTPSConnection if parts.scheme == "https"
                      else http.client.HTTPConnection)
        self.connection = conn_class(parts.hostname, parts.port, timeout=timeout)
        self.headers = {"Content-Type": "application/x-hessian"}
        if user is not None:
            token = base64.b64encode(f"{user}:{password or ''}".encode()).decode("ascii")
            self.headers["Authorization"] = f"Basic {token}"

    def call_raw(self, body: bytes) -> bytes:
        """POST raw bytes and return the raw 200 answer."""
        self.connection.request("POST", self.path, body, self.headers)
        response = self.connection.getresponse()
        data = response.read()
        if response.status != 200:
            raise HttpError(response.status, response.reason, data)
        return data

    def call(self, method: str, *args: Any) -> Any:
        """Call ``method``; a fault is raised as ``billingcenter.hessian.Fault``."""
        return decode_reply(self.call_raw(encode_call(method, list(args), self.version)))

    def close(self) -> None:
        """Close the connection."""
        self.connection.close()


def call_once(url: str, method: str, args: Sequence[Any], **kwargs: Any) -> Any:
    """Open a client, make one call, close."""
    client = HessianClient(url, **kwargs)
    try:
        return client.call(method, *args)
    finally:
        client.close()
