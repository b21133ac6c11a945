"""A deliverer process killed (SIGKILL) in the middle of delivery: after its leases run
out another delivers what it held, and the account system deducts once per deductionId."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from billingcenter.ledger.schema_billing import DELIVERED, PENDING
from tests import fakes
from tests.outbound.support import add, deduction, rows, wait_for

REPO = Path(__file__).resolve().parents[2]
LEASE = 4
COUNT = 40

pytestmark = pytest.mark.network


def _start(args, out):
    return subprocess.Popen([sys.executable, *args], cwd=REPO, stdout=out,
                            stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONUNBUFFERED="1"))


@pytest.fixture
def fake_process(tmp_path):
    """The fake account system as a process, answering 0.3 s late."""
    log = tmp_path / "fake.log"
    with log.open("w") as out:
        process = _start(["-m", "tests.fakes", "account", "--port", "0", "--delay", "0.3"], out)
    try:
        line = wait_for(lambda: "listening on" in log.read_text() and log.read_text(), 30)
        yield line.split("listening on ")[1].split()[0]
    finally:
        process.kill()
        process.wait()


def _config(tmp_path, engine, url):
    path = tmp_path / "billingcenter.ini"
    database = engine.url.render_as_string(hide_password=False)
    path.write_text(f"[database]\nurl = {database}\n[account_system]\nurl = {url}\n"
                    f"timeout = 2\n[outbox]\ninterval = 0.1\nbatch = 8\nconcurrency = 4\n"
                    f"backoff_initial = 0.2\nlease = {LEASE}\n", encoding="utf-8")
    return path


def test_killed_deliverer(tmp_path, engine, fake_process):
    """Messages leased by a killed deliverer are delivered by the next one, once each."""
    add(engine, *[deduction(n) for n in range(1, COUNT + 1)])
    config = _config(tmp_path, engine, fake_process)
    command = ["-m", "billingcenter", "outbox", "deliver", "--config", str(config)]
    with (tmp_path / "victim.log").open("w") as out:
        victim = _start([*command, "--owner", "victim"], out)
    try:
        wait_for(lambda: fakes.state(fake_process)["calls"].get("chargeAccount", 0) >= 10, 60)
    finally:
        victim.send_signal(signal.SIGKILL)
        victim.wait()
    held = [r for r in rows(engine).values()
            if r.status == PENDING and (r.lease_owner or "").startswith("victim/")]
    assert held, "the victim held no lease when it was killed"
    fakes.configure(fake_process, delay=0, delay_times=0)
    time.sleep(LEASE + 0.5)
    rescue = subprocess.run([sys.executable, *command, "--until-empty", "--owner", "rescuer"],
                            cwd=REPO, capture_output=True, text=True, timeout=120)
    assert rescue.returncode == 0, rescue.stdout + rescue.stderr
    assert set(r.status for r in rows(engine).values()) == {DELIVERED}
    state = fakes.state(fake_process)
    assert sorted(state["deducted"]) == sorted(f"DED-P{n}-20260101" for n in range(1, COUNT + 1))
    repeated = {key for key, n in state["repeats"].items() if n > 1}
    assert repeated and repeated <= {r.message_key for r in held}
    assert max(state["repeats"].values()) == 2
