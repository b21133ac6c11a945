"""Callers' credentials: hashed passwords, HTTP Basic checks, and the loopback rule.

Passwords are stored as ``pbkdf2_sha256$ITERATIONS$SALT$HASH`` (base64).  A slow
hash on every call would cap throughput, so a successful check is remembered for
the life of the process under a keyed digest of the credentials (never the
password itself).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import os
import re
import secrets

import attrs

from billingcenter.config import Caller, ConfigError

ITERATIONS = 200_000
_CACHE_MAX = 1024


def hash_password(password: str, iterations: int = ITERATIONS, salt: bytes | None = None) -> str:
    """Hash a password for the config file."""
    salt = salt if salt is not None else os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)
    return "$".join(
        ["pbkdf2_sha256", str(iterations), _b64(salt), _b64(digest)]
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def check_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches a stored hash; a malformed hash never matches."""
    try:
        scheme, iterations, salt, digest = stored.split("$")
        if scheme != "pbkdf2_sha256":
            return False
        expected = base64.b64decode(digest, validate=True)
        actual = hashlib.pbkdf2_hmac(
            "sha256", password.encode("utf-8"), base64.b64decode(salt, validate=True),
            int(iterations),
        )
    except (ValueError, binascii.Error):
        return False
    return hmac.compare_digest(expected, actual)


def validate_hash(stored: str) -> None:
    """Raise ConfigError unless ``stored`` is a well-formed password hash."""
    parts = stored.split("$")
    if len(parts) != 4 or parts[0] != "pbkdf2_sha256" or not parts[1].isdigit():
        raise ConfigError(
            "password_hash must look like pbkdf2_sha256$ITERATIONS$SALT$HASH "
            "(make one with: billingcenter hash-password)"
        )


def parse_basic(header: bytes | None) -> tuple[str, str] | None:
    """Decode an HTTP Basic ``Authorization`` header into (user, password)."""
    if not header:
        return None
    scheme, _, token = header.partition(b" ")
    if scheme.lower() != b"basic":
        return None
    try:
        user, sep, password = base64.b64decode(token.strip(), validate=True).decode(
            "utf-8"
        ).partition(":")
    except (ValueError, binascii.Error):
        return None
    return (user, password) if sep else None


@attrs.define
class Authenticator:
    """Checks a request's credentials against the configured callers."""

    callers: dict[str, Caller]
    _key: bytes = attrs.field(factory=lambda: secrets.token_bytes(32))
    _verified: dict[bytes, str] = attrs.field(factory=dict)

    @classmethod
    def from_callers(cls, callers: tuple[Caller, ...]) -> Authenticator:
        """Build from the config, refusing malformed hashes at start rather than at call."""
        for caller in callers:
            validate_hash(caller.password_hash)
        return cls({c.name: c for c in callers})

    def authenticate(self, header: bytes | None) -> Caller | None:
        """The caller these credentials prove, or None."""
        creds = parse_basic(header)
        if creds is None:
            return None
        user, password = creds
        caller = self.callers.get(user)
        if caller is None:
            return None
        mark = hmac.new(self._key, f"{user}\0{password}".encode(), "sha256").digest()
        if self._verified.get(mark) == user:
            return caller
        if not check_password(password, caller.password_hash):
            return None
        if len(self._verified) >= _CACHE_MAX:
            self._verified.clear()
        self._verified[mark] = user
        return caller


def _is_loopback(host: str) -> bool:
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_listen_safety(endpoint: str, auth_enabled: bool) -> None:
    """Refuse to listen beyond loopback when no caller credentials are configured."""
    if auth_enabled:
        return
    kind, _, rest = endpoint.partition(":")
    if kind == "unix":
        return
    parts = [part.replace("\\:", ":") for part in re.split(r"(?<!\\):", rest)]
    options = dict(part.split("=", 1) for part in parts if "=" in part)
    interface = options.get("interface")
    if kind in ("tcp", "tcp6", "ssl") and interface is not None and _is_loopback(interface):
        return
    raise ConfigError(
        f"refusing to listen on {endpoint!r} without credentials: with no [caller:NAME] "
        "section in the config the server only listens on loopback "
        "(interface=127.0.0.1 or ::1) or a unix socket; add callers to listen elsewhere"
    )
