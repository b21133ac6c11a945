"""Tests of billingcenter.auth."""

import base64

import pytest

from billingcenter.auth import (
    Authenticator,
    check_listen_safety,
    check_password,
    hash_password,
    parse_basic,
)
from billingcenter.config import Caller, ConfigError


def basic(user: str, password: str) -> bytes:
    return b"Basic " + base64.b64encode(f"{user}:{password}".encode())


class TestHashing:
    def test_round_trip(self):
        """A hash accepts its password and nothing else."""
        stored = hash_password("s3cret", iterations=1000)
        assert check_password("s3cret", stored)
        assert not check_password("s3cret ", stored)

    def test_malformed_hash_never_matches(self):
        """A broken stored hash is a mismatch, not a crash."""
        assert not check_password("x", "pbkdf2_sha256$x$y$z")
        assert not check_password("x", "plain")


class TestParseBasic:
    def test_decodes(self):
        """The user and a password containing a colon come back."""
        assert parse_basic(basic("order", "a:b")) == ("order", "a:b")

    @pytest.mark.parametrize("header", [None, b"", b"Bearer x", b"Basic !!!", b"Basic " +
                                        base64.b64encode(b"nocolon")])
    def test_rejects(self, header):
        """Anything but well-formed Basic credentials is None."""
        assert parse_basic(header) is None


class TestAuthenticator:
    def make(self):
        caller = Caller("order", hash_password("pw", iterations=1000), frozenset({"installOrder"}))
        return Authenticator.from_callers((caller,)), caller

    def test_accepts_right_password_twice(self):
        """The right password proves the caller, also from the cache."""
        auth, caller = self.make()
        assert auth.authenticate(basic("order", "pw")) == caller
        assert auth.authenticate(basic("order", "pw")) == caller

    def test_rejects_wrong_password_after_success(self):
        """A cached success does not let another password in."""
        auth, _ = self.make()
        auth.authenticate(basic("order", "pw"))
        assert auth.authenticate(basic("order", "pw2")) is None
        assert auth.authenticate(basic("nobody", "pw")) is None

    def test_malformed_hash_refused_at_start(self):
        """A config with a malformed hash fails when loaded, not at the first call."""
        with pytest.raises(ConfigError):
            Authenticator.from_callers((Caller("x", "plaintext", frozenset({"a"})),))


class TestListenSafety:
    @pytest.mark.parametrize("endpoint", [
        "tcp:8080:interface=127.0.0.1", "tcp:0:interface=127.0.0.5",
        r"tcp6:8080:interface=\:\:1", "unix:/tmp/billing.sock", "tcp:1:interface=localhost",
    ])
    def test_loopback_allowed_without_credentials(self, endpoint):
        """Loopback and unix sockets need no credentials."""
        check_listen_safety(endpoint, auth_enabled=False)

    @pytest.mark.parametrize("endpoint", [
        "tcp:8080", "tcp:8080:interface=0.0.0.0", r"tcp6:8080:interface=\:\:",
        "tcp:8080:interface=10.0.0.1",
    ])
    def test_elsewhere_refused_without_credentials(self, endpoint):
        """Listening beyond loopback without credentials is refused with the reason."""
        with pytest.raises(ConfigError, match="refusing to listen"):
            check_listen_safety(endpoint, auth_enabled=False)

    def test_elsewhere_allowed_with_credentials(self):
        """With callers configured any interface is allowed."""
        check_listen_safety("tcp:8080", auth_enabled=True)
