"""Tests of the ``billingcenter`` command against a real server on a loopback port."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from billingcenter.auth import check_password
from billingcenter.cli import from_json, main, to_json
from billingcenter.hessian import HessianObject, Long

REPO = Path(__file__).resolve().parents[2]
ORDER = json.dumps({
    "@type": "org.billingcenter.api.Order", "orderId": "cli-o-1", "payerId": "cli-boss",
    "userId": "张三", "productCode": "PC2", "planCode": "PC2-DAILY-ACCOUNTS",
    "activatedAt": {"@date": "2026-01-01T00:00:00Z"}, "accountNum": 3,
}, ensure_ascii=False)


def cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "billingcenter", *args], capture_output=True,
                          text=True, input=stdin, env=env, cwd=REPO, timeout=60)


@pytest.mark.network
class TestCall:
    def test_call_prints_reply_and_fault(self, open_server):
        """`call` prints a reply as JSON (exit 0) and a fault with its code (exit 1)."""
        first = cli("call", open_server.url, "installOrder", ORDER)
        assert first.returncode == 0, first.stderr
        assert json.loads(first.stdout)["key"] == "cli-o-1"
        changed = ORDER.replace('"accountNum": 3', '"accountNum": 4')
        second = cli("call", "--protocol", "c1", open_server.url, "installOrder", changed)
        assert second.returncode == 1
        assert json.loads(second.stdout)["detail"]["code"] == "DUPLICATE_CONFLICT"
        counted = cli("call", "--protocol", "c2", open_server.url, "changeAccountNum",
                      '"cli-boss"', "5", '"PC2"')
        assert (counted.returncode, json.loads(counted.stdout)) == (0, "1")

    def test_call_bad_json_is_usage_error(self, open_server):
        """An argument that is not JSON is exit 2 with a message."""
        result = cli("call", open_server.url, "installOrder", "{not json")
        assert result.returncode == 2
        assert "not valid JSON" in result.stderr

    def test_call_unreachable(self):
        """A server that is not there is exit 3."""
        result = cli("call", "http://127.0.0.1:9/billing", "installOrder", ORDER)
        assert result.returncode == 3
        assert "cannot call" in result.stderr


class TestServeRefusals:
    def test_refuses_public_interface_without_callers(self, tmp_path):
        """Listening beyond loopback without credentials: exit 2 and the reason."""
        result = cli("serve", "--endpoint", "tcp:0:interface=0.0.0.0", "--data-dir",
                     str(tmp_path))
        assert result.returncode == 2
        assert "refusing to listen" in result.stderr

    def test_refuses_broken_config(self, tmp_path):
        """A config with a bad value: exit 2 naming the key."""
        ini = tmp_path / "b.ini"
        ini.write_text("[server]\nmax_body = lots\n")
        result = cli("serve", "--config", str(ini))
        assert result.returncode == 2
        assert "max_body must be an integer" in result.stderr


    def test_refuses_unknown_time_zone(self, tmp_path):
        """An unknown business time zone: exit 2 naming it."""
        ini = tmp_path / "b.ini"
        ini.write_text("[business]\ntime_zone = Mars/Olympus\n")
        result = cli("serve", "--config", str(ini), "--data-dir", str(tmp_path))
        assert result.returncode == 2
        assert "'Mars/Olympus' is not a known time zone" in result.stderr


class TestCommands:
    def test_db_upgrade_and_current(self, tmp_path):
        """`db upgrade` migrates the embedded database; `db current` shows the version."""
        assert main(["db", "current", "--data-dir", str(tmp_path)]) == 0
        assert main(["db", "upgrade", "--data-dir", str(tmp_path)]) == 0
        result = cli("db", "current", "--data-dir", str(tmp_path))
        assert result.returncode == 0 and result.stdout.strip() not in ("", "None")
        assert "empty" not in result.stdout

    def test_hash_password_from_stdin(self):
        """`hash-password` reads stdin and prints a hash that checks."""
        result = cli("hash-password", stdin="s3cret\n")
        assert result.returncode == 0
        assert check_password("s3cret", result.stdout.strip())

    def test_hash_password_refuses_empty(self):
        """An empty password is refused."""
        assert cli("hash-password", stdin="\n").returncode == 2


class TestJsonMapping:
    def test_round_trip(self):
        """JSON objects with @type, @date and @long map to Hessian values and back."""
        value = from_json({"@type": "T", "n": {"@long": 5},
                           "d": {"@date": "2026-01-01T08:00:00+08:00"}})
        assert value == HessianObject("T", {"n": Long(5), "d": from_json(
            {"@date": "2026-01-01T00:00:00Z"})})
        assert to_json(value) == {"@type": "T", "n": 5, "d": {"@date": "2026-01-01T00:00:00Z"}}

    def test_refuses_floats_and_naive_dates(self):
        """Floats (money is fen) and dates without a zone are refused."""
        with pytest.raises(ValueError):
            from_json(1.5)
        with pytest.raises(ValueError):
            from_json({"@date": "2026-01-01T00:00:00"})
