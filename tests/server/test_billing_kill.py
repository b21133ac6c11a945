"""The daemon killed with SIGKILL in a bill run and in outbox delivery, then restarted.

Real parts: ``billingcenter serve`` on MariaDB with its bill timer and deliverer on, the
fake account system as its own process answering a little late, so that both the run
and the delivery are caught half-way.  The daemon is killed (SIGKILL: no clean-up)
once while its bill run is part done (held there by a row lock on some charges),
restarted under the same ``[server] name`` (it
resumes its own chunks at once), killed again while deductions are being delivered,
and restarted again.  Afterwards:

* every payer due has exactly one bill, whose total is the sum of its charges, and
  every charge is on exactly one bill (none lost, none billed twice);
* every bill has one deduction id and one outbox message, delivered; the account system
  deducted exactly once per bill (a call cut off by the kill is sent again with the same
  id, which the account system recognizes);
* ``billingcenter check`` finds nothing wrong.
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from billingcenter.cli import main as cli_main
from billingcenter.ledger import migrate
from tests.fakes import state as fake_state
from tests.server.conftest import _stop, start_server
from tests.server.test_billing_e2e import billing_date_for, start_fake, wait_for
from tests.support import mysql_test_url, reset_mysql_database

pytestmark = pytest.mark.mariadb

URL = mysql_test_url("kill", "BILLINGCENTER_TEST_KILL_MYSQL_URL")
TZ = ZoneInfo("Asia/Shanghai")
PAYERS = 3000
DAYS = 10
WAIT = 240.0  # seconds for each stage (the disk's commits set the pace)
BATCH = 40  # outbox messages leased at once
CHUNK = 25  # payers per claimed chunk: 120 transactions, so the run takes a while
MIDDLE = f"kp-{PAYERS // 2:05d}"  # the payer whose row is locked during the first run
SEED = """
INSERT INTO charge (kind, source_key, order_id, payer_id, product_code, day, rule_set,
    rule_set_version, rule_id, units, unit_price, amount_fen, explanation, rated_at, run_id)
SELECT 'daily', CONCAT('k-', p.seq, '/', :first + INTERVAL d.seq DAY), CONCAT('k-', p.seq),
    CONCAT('kp-', LPAD(p.seq, 5, '0')), 'CRM-BASIC', :first + INTERVAL d.seq DAY,
    'saas-crm-basic', '2026.11.1', 'crm-daily', 1, 3.00, 300 + p.seq % 7,
    '{"mode":"daily"}', :rated, 'seed'
FROM seq_1_to_PAYERS p STRAIGHT_JOIN seq_0_to_LAST d
"""


@pytest.fixture()
def engine() -> Iterator[sa.engine.Engine]:
    """A fresh, migrated MariaDB ledger with PAYERS x DAYS charges before the bill date."""
    reset_mysql_database(URL)
    migrate.upgrade(URL)
    found = sa.create_engine(URL)
    bill_date = billing_date_for(datetime.now(TZ).date())
    with found.begin() as conn:
        seed = SEED.replace("PAYERS", str(PAYERS)).replace("LAST", str(DAYS - 1))
        conn.execute(sa.text(seed),
                     {"first": bill_date - timedelta(days=DAYS), "rated": datetime.now()})
        # The middle payer's row exists before the run (as after a ``payer set``), with
        # its lowest charge id known, so that locking it holds the run in its bills only.
        conn.execute(sa.text(
            "INSERT INTO payer_account (payer_id, kind, balance_fen, floor_fen, threshold_fen,"
            " service_state, updated_at, unbilled_from) SELECT :payer, 'POSTPAID', 0, 0, 0,"
            " 'OPEN', NOW(), MIN(id) FROM charge WHERE payer_id = :payer"), {"payer": MIDDLE})
    try:
        yield found
    finally:
        found.dispose()


def _count(engine: sa.engine.Engine, query: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text(query)).scalar_one())


def _kill(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)


def test_killed_in_bill_run_and_delivery(engine: sa.engine.Engine, tmp_path: Path) -> None:
    """No bill lost, none twice, one deduction per bill, check clean (see the module doc)."""
    bill_date = billing_date_for(datetime.now(TZ).date())
    fake, account_url = start_fake("account", tmp_path, "--delay", "0.02")
    config = (
        f"[server]\nname = kill-test-daemon\n[database]\nurl = {URL}\n"
        "[rating]\nenabled = false\n"
        f"[billing]\nday = {bill_date.day}\ndelay = 0\nchunk = {CHUNK}\n"
        f"[account_system]\nurl = {account_url}\ntimeout = 5\n"
        f"[outbox]\ninterval = 0.2\nlease = 3\nconcurrency = 4\nbatch = {BATCH}\n"
        "backoff_initial = 0.2\nbackoff_max = 1\n"
    )
    try:
        bills, delivered, runs = _kill_and_restart(engine, tmp_path, config)
        assert bills["at first kill"] < PAYERS, bills  # killed in the middle of the run
        assert 0 < delivered["at second kill"] < PAYERS, delivered  # ... and of delivery
        account = fake_state(account_url)
    finally:
        _stop(fake)

    totals = _ledger_totals(engine)
    assert totals["bills"] == PAYERS
    assert totals["payers billed twice"] == 0
    assert totals["unbilled charges"] == 0
    assert totals["billed fen"] == totals["charged fen"]
    assert totals["bills off their charges"] == 0
    assert totals["messages"] == PAYERS and totals["delivered"] == PAYERS
    deduction_ids = {r for r, in engine.connect().execute(sa.text(
        "SELECT deduction_id FROM bill"))}
    assert len(deduction_ids) == PAYERS
    assert sorted(account["deducted"]) == sorted(deduction_ids)  # once per bill
    # Calls answered but not yet marked delivered when the daemon died are sent again,
    # with the same id: at most one leased batch per kill.
    resent = {k: n for k, n in account["repeats"].items() if n > 1}
    assert len(resent) <= BATCH * runs and set(resent.values()) <= {2, 3}, resent
    assert cli_main(["check", "--database-url", URL]) == 0


def _kill_and_restart(engine: sa.engine.Engine, workdir: Path, config: str
                      ) -> tuple[dict[str, int], dict[str, int], int]:
    """Start, kill in the run, restart, kill in delivery, restart, wait for the end.

    The first kill is made certain to land inside the bill run: the row of a payer in the
    middle is locked from here, so the run waits on it (after billing what comes before,
    whatever order it works in) until the daemon is killed.
    """
    bills: dict[str, int] = {}
    delivered: dict[str, int] = {}
    finished = "SELECT COUNT(*) FROM bill WHERE status IN ('OWED', 'EMPTY', 'SETTLED')"
    done_count = "SELECT COUNT(*) FROM outbox WHERE status = 'DELIVERED'"
    waits = "SELECT COUNT(*) FROM information_schema.INNODB_LOCK_WAITS"
    servers = []
    locker = engine.connect()
    try:
        held = locker.begin()
        locker.execute(sa.text("SELECT id FROM payer_account WHERE payer_id = :payer "
                               "FOR UPDATE"), {"payer": MIDDLE})
        servers.append(start_server(_fresh(workdir / "run1"), config))
        wait_for("the bill run waiting on the locked charges", lambda: _count(engine, waits),
                 timeout=WAIT, explain=servers[-1].logs)
        _kill(servers[-1].proc)
        held.rollback()
        bills["at first kill"] = _count(engine, finished)
        servers.append(start_server(_fresh(workdir / "run2"), config))
        wait_for("every bill", lambda: _count(engine, finished) == PAYERS, timeout=WAIT,
                 explain=servers[-1].logs)
        wait_for("half the deductions delivered",
                 lambda: _count(engine, done_count) >= PAYERS // 2, timeout=WAIT,
                 explain=servers[-1].logs)
        _kill(servers[-1].proc)
        delivered["at second kill"] = _count(engine, done_count)
        servers.append(start_server(_fresh(workdir / "run3"), config))
        wait_for("every deduction delivered",
                 lambda: _count(engine, done_count) == PAYERS, timeout=WAIT,
                 explain=servers[-1].logs)
    finally:
        locker.close()
        for server in servers:
            _stop(server.proc)
    return bills, delivered, 2  # kills


def _fresh(path: Path) -> Path:
    """A new working directory for one daemon process (its logs)."""
    path.mkdir(parents=True)
    return path


def _ledger_totals(engine: sa.engine.Engine) -> dict[str, int]:
    queries = {
        "bills": "SELECT COUNT(*) FROM bill",
        "payers billed twice": "SELECT COUNT(*) FROM (SELECT payer_id FROM bill "
                               "GROUP BY payer_id HAVING COUNT(*) > 1) t",
        "unbilled charges": "SELECT COUNT(*) FROM charge c LEFT JOIN payer_account p "
                            "ON p.payer_id = c.payer_id WHERE c.entry_id = 0 AND NOT "
                            "(c.id <= COALESCE(p.billed_upto, 0) AND c.day < p.billed_before)",
        "billed fen": "SELECT COALESCE(SUM(total_fen), 0) FROM bill",
        "charged fen": "SELECT COALESCE(SUM(amount_fen), 0) FROM charge",
        "bills off their charges": "SELECT COUNT(*) FROM bill b WHERE b.total_fen <> "
                                   "(SELECT COALESCE(SUM(c.amount_fen), 0) FROM charge c "
                                   "WHERE c.payer_id = b.payer_id AND c.entry_id = 0 "
                                   "AND c.id <= b.upto_id AND c.day < b.bill_date)",
        "messages": "SELECT COUNT(*) FROM outbox WHERE method = 'chargeAccount'",
        "delivered": "SELECT COUNT(*) FROM outbox WHERE status = 'DELIVERED'",
    }
    return {name: _count(engine, query) for name, query in queries.items()}
