"""The billing loop end to end, driven through Hessian only, on MariaDB.

Real parts throughout: ``billingcenter serve`` as a subprocess on a MariaDB ledger, the
fake account system and the fake business system as real Hessian services in their own
processes (``python -m tests.fakes``), and the ops commands (``rate``, ``bill``,
``check``) run as an operator runs them.  The billing date is today (the 28th on the
29th to 31st), so the bill holds the days before it; only the rating of today itself
(which holds the authorized-account change, made "now") runs with its clock set to
tomorrow, as the daemon would rate it.

The story, with every amount checked to the fen against the shipped rule sets:

* payer A: a PC2 order (0.50 per authorized account and day, first 7 days free)
  installed with 2 accounts, paused at 23:59 and resumed at 00:01 the next day, paused and
  resumed again within one day, raised to 5 accounts now (charged on today, which goes
  on the next bill: a late charge is never lost nor billed twice); an SMS order used by an
  employee (1,500 messages: 1,000 x 0.05 + 500 x 0.045, then 3 more);
* payer B: a CRM order (3.00 a day) cancelled and a new one ordered the same day;
* every day rated, the bill run on the billing date, ``chargeAccount`` received by the
  account system, which reports INSUFFICIENT_FUNDS for A (arrears: A's two orders are
  stopped through ``feedbackUser``) and SUCCESS for B (settled); then A pays, which
  settles A's bill and reopens both orders through ``feedbackUser``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from billingcenter.cli import main as cli_main
from billingcenter.client import HessianClient
from billingcenter.hessian import Fault, HessianObject, Long
from billingcenter.ledger import migrate
from tests.fakes import configure
from tests.fakes import state as fake_state
from tests.server.conftest import REPO, _stop, publish_shipped_rules, start_server
from tests.support import mysql_test_url, reset_mysql_database

pytestmark = pytest.mark.mariadb

URL = mysql_test_url("e2e", "BILLINGCENTER_TEST_E2E_MYSQL_URL")
TZ = ZoneInfo("Asia/Shanghai")
API = "org.billingcenter.api."
FAKE_LISTENING = re.compile(r"fake \w+ listening on (http://\S+)")
WAIT = 30.0


# ---------------------------------------------------------------------------- processes


def start_fake(kind: str, workdir: Path, *args: str) -> tuple[subprocess.Popen[bytes], str]:
    """``python -m tests.fakes KIND`` on a free loopback port; (process, url)."""
    out = workdir / f"fake-{kind}.log"
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    with open(out, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "tests.fakes", kind, "--port", "0",
                                 *args], cwd=REPO, env=env, stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        found = FAKE_LISTENING.search(out.read_text(errors="replace"))
        if found:
            return proc, found.group(1)
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    _stop(proc)
    pytest.fail(f"fake {kind} did not start:\n{out.read_text(errors='replace')}",
                pytrace=False)
    raise AssertionError("unreachable")


def wait_for(what: str, found: Callable[[], Any], timeout: float = WAIT,
             explain: Callable[[], str] = str) -> Any:
    """Poll ``found`` until it returns something true; fail with ``what`` after timeout."""
    deadline = time.monotonic() + timeout
    value = found()
    while not value and time.monotonic() < deadline:
        time.sleep(0.1)
        value = found()
    if not value:
        pytest.fail(f"timed out after {timeout}s waiting for {what}\n{explain()}",
                    pytrace=False)
    return value


# ---------------------------------------------------------------------------- the world


def business(day: date, hour: int, minute: int = 0) -> datetime:
    """A moment of a business day (Asia/Shanghai), as an aware datetime."""
    return datetime.combine(day, clock_time(hour, minute), TZ)


def billing_date_for(today: date) -> date:
    """Today, or the 28th when today is the 29th to 31st (billing days are 1..28)."""
    return today if today.day <= 28 else today.replace(day=28)


class World:
    """The running system: MariaDB, the two fakes, the server, the config file."""

    def __init__(self, workdir: Path, bill_date: date) -> None:
        self.workdir = workdir
        self.bill_date = bill_date
        self.account_proc, self.account_url = start_fake(
            "account", workdir, "--outcome", "SUCCESS")
        self.business_proc, self.business_url = start_fake("business", workdir)
        self.config_text = (
            f"[database]\nurl = {URL}\n"
            f"[catalogue]\nfile = {REPO / 'conf' / 'catalogue.toml'}\n"
            "[roles]\nauthors = alice\nreviewers = bob\npublishers = dave\n"
            "[rating]\nenabled = false\n"
            f"[billing]\nenabled = false\nday = {bill_date.day}\n"
            f"[account_system]\nurl = {self.account_url}\ntimeout = 5\n"
            f"[feedback]\nurl = {self.business_url}\ntimeout = 5\n"
            "[outbox]\ninterval = 0.2\nbackoff_initial = 0.2\nbackoff_max = 1\n"
            "[arrears]\ngrace = 0\n"
        )
        self.config = workdir / "billingcenter.ini"
        self.config.write_text(self.config_text, encoding="utf-8")
        try:
            publish_shipped_rules(workdir, self.config_text)
            self.server = start_server(workdir, self.config_text)
        except BaseException:
            _stop(self.account_proc)
            _stop(self.business_proc)
            raise
        self.client = HessianClient(self.server.url)
        self.engine = sa.create_engine(URL)

    def close(self) -> None:
        """Stop everything."""
        self.client.close()
        self.engine.dispose()
        for proc in (self.server.proc, self.account_proc, self.business_proc):
            _stop(proc)

    def call(self, method: str, *args: Any) -> Any:
        """A Hessian call to the billing center; a fault fails the test with its message."""
        result = self.client.call(method, *args)
        if isinstance(result, Fault):
            pytest.fail(f"{method} answered a fault: {result}\n{self.server.logs()}",
                        pytrace=False)
        return result

    def logs(self) -> str:
        """The server's and the fakes' output, for failure messages."""
        fakes = "".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}\n"
                        for p in sorted(self.workdir.glob("fake-*.log")))
        return self.server.logs() + "\n" + fakes

    def ops(self, *argv: str) -> int:
        """Run an ops command (in this process, as an operator's shell would)."""
        return cli_main([*argv, "--config", str(self.config)])

    def rows(self, query: str, **params: Any) -> list[Any]:
        """Rows of a read-only SQL query on the ledger."""
        with self.engine.connect() as conn:
            return list(conn.execute(sa.text(query), params))


@pytest.fixture()
def world(tmp_path: Path) -> Iterator[World]:
    """A fresh MariaDB ledger, the fakes and the server."""
    reset_mysql_database(URL)
    migrate.upgrade(URL)
    today = datetime.now(TZ).date()
    found = World(tmp_path, billing_date_for(today))
    try:
        yield found
    finally:
        found.close()


# ---------------------------------------------------------------------------- DTOs


def order(order_id: str, payer: str, product: str, plan: str, at: datetime,
          accounts: int = 0) -> HessianObject:
    return HessianObject(API + "Order", {
        "orderId": order_id, "payerId": payer, "userId": f"boss-of-{payer}",
        "productCode": product, "planCode": plan, "activatedAt": at, "accountNum": accounts,
    })


def state_change(event_id: str, order_id: str, state: str, at: datetime) -> HessianObject:
    return HessianObject(API + "OrderStateChange", {
        "eventId": event_id, "orderId": order_id, "state": state, "changedAt": at,
    })


def service_op(op_id: str, order_id: str, product: str, user: str, quantity: int,
               at: datetime) -> HessianObject:
    return HessianObject(API + "ServiceOp", {
        "opId": op_id, "orderId": order_id, "productCode": product, "itemCode": "SMS",
        "userId": user, "payerId": "", "quantity": Long(quantity), "occurredAt": at,
        "attributes": {},
    })


def pay_notice(serial: str, deduction_id: str, payer: str, amount: int, status: str
               ) -> HessianObject:
    return HessianObject(API + "PayNotice", {
        "serial": serial, "deductionId": deduction_id, "payerId": payer,
        "amountFen": Long(amount), "status": status,
        "paidAt": datetime.fromtimestamp(int(time.time()), UTC),
    })


# ---------------------------------------------------------------------------- the test


def test_bill_deduct_arrears_stop_pay_reopen(world: World, monkeypatch: pytest.MonkeyPatch
                                             ) -> None:
    """The whole loop, every amount to the fen (see the module doc)."""
    today = datetime.now(TZ).date()
    last = world.bill_date - timedelta(days=1)  # the last business day on the bill
    start = last - timedelta(days=10)

    def day(offset: int) -> date:
        return last + timedelta(days=offset)

    # Payer A: PC2 by accounts (7 free days: day -10 .. day -4), SMS per use.
    world.call("installOrder", order("E2E-A-PC2", "e2e-A", "PC2", "PC2-DAILY-ACCOUNTS",
                                     business(start, 10), accounts=2))
    world.call("installOrder", order("E2E-A-SMS", "e2e-A", "SMS-NOTIFY", "SMS-PER-USE",
                                     business(start, 10)))
    for event, state, at in (
        ("E2E-EV-1", "PAUSED", business(day(-3), 23, 59)),
        ("E2E-EV-2", "RESUMED", business(day(-2), 0, 1)),
        ("E2E-EV-3", "PAUSED", business(day(-1), 10)),
        ("E2E-EV-4", "RESUMED", business(day(-1), 11)),
    ):
        world.call("updateOrderState", state_change(event, "E2E-A-PC2", state, at))
    assert world.call("changeAccountNum", "e2e-A", 5, "PC2") == "1"
    world.call("insertServiceOp", service_op("E2E-OP-1", "E2E-A-SMS", "SMS-NOTIFY",
                                             "employee-7", 1500, business(day(-4), 10)))
    world.call("insertServiceOp", service_op("E2E-OP-2", "E2E-A-SMS", "SMS-NOTIFY",
                                             "invitee-3", 3, business(day(-1), 9)))
    # Payer B: CRM daily, cancelled and ordered again the same day (two orders).
    world.call("installOrder", order("E2E-B-CRM-1", "e2e-B", "CRM-BASIC", "CRM-DAILY",
                                     business(day(-3), 9)))
    world.call("updateOrderState", state_change("E2E-EV-5", "E2E-B-CRM-1", "CANCELLED",
                                                business(day(-1), 12)))
    world.call("installOrder", order("E2E-B-CRM-2", "e2e-B", "CRM-BASIC", "CRM-DAILY",
                                     business(day(-1), 13)))

    # The account system fails A's deduction, succeeds B's.
    configure(world.account_url, billing_url=world.server.url,
              outcome_by_payer={"e2e-A": "INSUFFICIENT_FUNDS"})

    # Rate every day up to today; today as the daemon would, once it has closed.
    d = start
    while d < today:
        assert world.ops("rate", "--day", d.isoformat()) == 0
        d += timedelta(days=1)
    tomorrow = business(today + timedelta(days=1), 1).astimezone(UTC)
    monkeypatch.setattr("billingcenter.commands.rate._now", lambda: tomorrow)
    assert world.ops("rate", "--day", today.isoformat()) == 0
    charged = {(r.order_id, r.day): int(r.fen) for r in world.rows(
        "SELECT order_id, day, SUM(amount_fen) AS fen FROM charge "
        "WHERE amount_fen > 0 AND day < :bill_date GROUP BY order_id, day",
        bill_date=world.bill_date)}
    assert charged == {
        # 2 accounts x 0.50 on the days around the 23:59/00:01 pause and the one-day pause
        ("E2E-A-PC2", day(-3)): 100, ("E2E-A-PC2", day(-2)): 100,
        ("E2E-A-PC2", day(-1)): 100, ("E2E-A-PC2", day(0)): 100,
        # 1,000 x 0.05 + 500 x 0.045; 3 x 0.05 (graduated tiers per record)
        ("E2E-A-SMS", day(-4)): 7250, ("E2E-A-SMS", day(-1)): 15,
        # two orders on the day of the cancel and re-order: two charges
        ("E2E-B-CRM-1", day(-3)): 300, ("E2E-B-CRM-1", day(-2)): 300,
        ("E2E-B-CRM-1", day(-1)): 300,
        ("E2E-B-CRM-2", day(-1)): 300, ("E2E-B-CRM-2", day(0)): 300,
    }
    free = world.rows("SELECT COUNT(*) AS n FROM charge WHERE order_id = 'E2E-A-PC2' "
                      "AND amount_fen = 0")[0].n
    assert free == 7  # the trial days
    # Today: the day's maximum, 5 accounts (2 carried in, then 5): 2.50, not on this bill.
    assert world.rows("SELECT amount_fen FROM charge WHERE order_id = 'E2E-A-PC2' "
                      "AND day = :today", today=today)[0].amount_fen == 250
    # Usage by an employee and an invitee is charged to the order's payer.
    assert {r.payer_id for r in world.rows(
        "SELECT DISTINCT payer_id FROM charge WHERE order_id = 'E2E-A-SMS'")} == {"e2e-A"}

    # The bill run of the billing date.
    assert world.ops("bill", "--date", world.bill_date.isoformat()) == 0
    bills = {r.payer_id: r for r in world.rows(
        "SELECT id, payer_id, total_fen, status, deduction_id FROM bill")}
    assert {p: b.total_fen for p, b in bills.items()} == {"e2e-A": 7665, "e2e-B": 1500}
    ymd = world.bill_date.strftime("%Y%m%d")
    assert {p: b.deduction_id for p, b in bills.items()} == {
        "e2e-A": f"DED-e2e-A-{ymd}", "e2e-B": f"DED-e2e-B-{ymd}"}
    lines = {(r.order_id, r.product_code): int(r.amount_fen) for r in world.rows(
        "SELECT order_id, product_code, amount_fen FROM bill_line")}
    assert lines == {("E2E-A-PC2", "PC2"): 400, ("E2E-A-SMS", "SMS-NOTIFY"): 7265,
                     ("E2E-B-CRM-1", "CRM-BASIC"): 900, ("E2E-B-CRM-2", "CRM-BASIC"): 600}

    # The daemon delivers chargeAccount; the account system reports back.
    def bill_status() -> dict[str, str]:
        return {r.payer_id: r.status for r in world.rows("SELECT payer_id, status FROM bill")}

    wait_for("A in arrears and B settled",
             lambda: bill_status() == {"e2e-A": "ARREARS", "e2e-B": "SETTLED"},
             explain=world.logs)
    account = fake_state(world.account_url)
    assert sorted(account["deducted"]) == [f"DED-e2e-A-{ymd}", f"DED-e2e-B-{ymd}"]
    assert set(account["repeats"].values()) == {1}
    requests = {c["deductionId"]: c for c in _charge_requests(account)}
    assert {k: r["amountFen"] for k, r in requests.items()} == {
        f"DED-e2e-A-{ymd}": 7665, f"DED-e2e-B-{ymd}": 1500}

    # Arrears (grace 0): A's two orders are stopped and the business system told.
    def notices() -> list[tuple[str, str, str]]:
        found = fake_state(world.business_url)["notices"]
        return [(n["orderId"], n["action"], n["reason"]) for n in found]

    wait_for("two STOP notices", lambda: len(notices()) == 2, explain=world.logs)
    assert sorted(notices()) == [("E2E-A-PC2", "STOP", "ARREARS"),
                                 ("E2E-A-SMS", "STOP", "ARREARS")]
    assert world.rows("SELECT service_state FROM payer_account WHERE payer_id = 'e2e-A'"
                      )[0].service_state == "STOPPED"

    # A pays: the account system reports the same deduction settled (a new serial).
    # The repeat is the same notice (its paidAt too: built once, not a second later).
    paid = pay_notice("BANK-e2e-A-2", f"DED-e2e-A-{ymd}", "e2e-A", 7665, "SUCCESS")
    receipt = world.call("payCallback", paid)
    assert receipt.fields["status"] == "SETTLED"
    again = world.call("payCallback", paid)
    assert again.fields == receipt.fields  # a repeat answers the same
    assert bill_status() == {"e2e-A": "SETTLED", "e2e-B": "SETTLED"}
    wait_for("two REOPEN notices", lambda: len(notices()) == 4, explain=world.logs)
    assert sorted(notices()[2:]) == [("E2E-A-PC2", "REOPEN", "SETTLED"),
                                     ("E2E-A-SMS", "REOPEN", "SETTLED")]
    assert world.rows("SELECT service_state FROM payer_account WHERE payer_id = 'e2e-A'"
                      )[0].service_state == "OPEN"
    history = [(r.order_id, r.action) for r in world.rows(
        "SELECT order_id, action FROM service_event ORDER BY id")]
    assert sorted(history) == sorted([("E2E-A-PC2", "STOP"), ("E2E-A-SMS", "STOP"),
                                      ("E2E-A-PC2", "REOPEN"), ("E2E-A-SMS", "REOPEN")])

    # The ledger's invariants hold.
    assert world.ops("check") == 0


def _charge_requests(account: dict[str, Any]) -> list[dict[str, Any]]:
    """The DeductionRequest fields of each deduction the fake account system made."""
    return [dict(request) for request in account["requests"]]
