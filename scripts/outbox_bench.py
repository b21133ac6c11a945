"""The outbox delivery phase of the benchmarks (``scripts/bench-outbox``, ``bench-billing``).

``deliver_pending(database_url, count=None)`` starts the fake account system
(``python -m tests.fakes account``) on loopback, optionally enqueues ``count``
chargeAccount messages first, then runs ``billingcenter outbox deliver --until-empty``
as a child process against it and returns the figures: messages delivered, seconds,
messages/s, the child's CPU seconds and peak RSS, and what the fake received.
The database must be migrated.  Figures only, no asserts.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from billingcenter.ledger.engine import create_engine  # noqa: E402
from billingcenter.ledger.outbox import (  # noqa: E402
    ACCOUNT,
    CHARGE_ACCOUNT,
    OutboxMessage,
    enqueue,
)
from billingcenter.ledger.schema_billing import DELIVERED, PENDING, outbox  # noqa: E402

ENQUEUE_CHUNK = 5000


def enqueue_deductions(database_url: str, count: int, prefix: str = "BENCH") -> float:
    """Enqueue ``count`` chargeAccount messages; the seconds it took."""
    engine = create_engine(database_url, pool_size=1)
    started = time.monotonic()
    now = datetime.now(UTC)
    try:
        for first in range(0, count, ENQUEUE_CHUNK):
            batch = [_deduction(f"{prefix}{n:08d}", n, now)
                     for n in range(first, min(first + ENQUEUE_CHUNK, count))]
            with engine.begin() as conn:
                enqueue(conn, batch, now)
    finally:
        engine.dispose()
    return time.monotonic() - started


def _deduction(payer: str, n: int, now: datetime) -> OutboxMessage:
    key = f"DED-{payer}-{now:%Y%m%d}"
    return OutboxMessage(key, ACCOUNT, CHARGE_ACCOUNT, {
        "deductionId": key, "billId": n + 1, "payerId": payer, "amountFen": 100 + n % 9000,
        "billDate": f"{now:%Y-%m-%d}", "firstDay": "2026-01-01", "lastDay": "2026-01-31",
        "createdAt": int(now.timestamp()) * 1000,
    })


def pending_count(database_url: str) -> dict[str, int]:
    """Messages per status."""
    from sqlalchemy import func, select

    engine = create_engine(database_url, pool_size=1)
    try:
        with engine.connect() as conn:
            return {status: n for status, n in conn.execute(
                select(outbox.c.status, func.count()).group_by(outbox.c.status))}
    finally:
        engine.dispose()


def deliver_pending(database_url: str, count: int | None = None, concurrency: int = 16,
                    batch: int = 200) -> dict[str, Any]:
    """Deliver everything pending (after enqueueing ``count`` messages, if given)."""
    figures: dict[str, Any] = {}
    if count:
        figures["enqueue_seconds"] = round(enqueue_deductions(database_url, count), 2)
    before = pending_count(database_url)
    with tempfile.TemporaryDirectory(prefix="bench-outbox-") as tmp:
        fake, url = _start_fake(Path(tmp))
        try:
            config = Path(tmp) / "billingcenter.ini"
            config.write_text(
                f"[database]\nurl = {database_url}\n[account_system]\nurl = {url}\n"
                f"timeout = 10\n[outbox]\nconcurrency = {concurrency}\nbatch = {batch}\n"
                "interval = 0.2\n", encoding="utf-8")
            figures.update(_run_child(config))
            from tests.fakes import state

            received = state(url)
            figures["fake_calls"] = received["calls"].get("chargeAccount", 0)
            figures["fake_deducted"] = len(received["deducted"])
            figures["fake_cpu_seconds"] = _cpu_of(fake.pid)
        finally:
            fake.kill()
            fake.wait()
    after = pending_count(database_url)
    figures["delivered_now"] = after.get(DELIVERED, 0) - before.get(DELIVERED, 0)
    figures["pending_left"] = after.get(PENDING, 0)
    seconds = figures["seconds"]
    figures["messages_per_second"] = round(figures["delivered_now"] / seconds) if seconds else 0
    return figures


def _start_fake(tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    log = tmp / "fake.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.fakes", "account", "--port", "0"], cwd=REPO,
            stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = re.search(r"listening on (\S+)", log.read_text())
        if found:
            return process, found.group(1)
        time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"the fake account system did not start: {log.read_text()}")


def _run_child(config: Path) -> dict[str, Any]:
    """``billingcenter outbox deliver --until-empty``: wall time, CPU, peak RSS, output."""
    started = time.monotonic()
    child = subprocess.Popen(
        [sys.executable, "-m", "billingcenter", "outbox", "deliver", "--until-empty",
         "--config", str(config)], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert child.stdout is not None and child.stderr is not None
    out, err = child.stdout.read(), child.stderr.read()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.monotonic() - started
    return {
        "seconds": round(seconds, 2),
        "exit": child.returncode,
        "summary": out.decode(errors="replace").strip().splitlines()[-1:] or [""],
        "errors": err.decode(errors="replace").strip().splitlines()[-3:],
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
    }


def _cpu_of(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return round((int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), 2)
