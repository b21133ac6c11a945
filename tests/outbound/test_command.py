"""``billingcenter outbox list``, ``retry`` and ``purge`` (``deliver`` runs in test_kill)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from billingcenter.cli import main
from billingcenter.ledger.engine import create_engine
from billingcenter.ledger.schema_billing import DEAD, DELIVERED, PENDING
from billingcenter.ledger.schema_billing import outbox as table
from tests.outbound.support import add, deduction, now, statuses


def test_list_and_retry(sqlite_url, capsys):
    """list shows counts and rows; retry --dead makes DEAD messages PENDING again."""
    engine = create_engine(sqlite_url)
    add(engine, deduction(1), deduction(2))
    with engine.begin() as conn:
        conn.execute(update(table).where(table.c.message_key == "DED-P1-20260101")
                     .values(status=DEAD, attempts=4, last_error="fault: ServiceException: no"))
    database = ["--database-url", sqlite_url]
    assert main(["outbox", "list", "--status", "dead", *database]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "PENDING 1, DELIVERED 0, DEAD 1, DUE 1"
    assert len(out) == 2 and out[1].startswith("1 DEAD chargeAccount DED-P1-20260101 -> account")
    assert out[1].endswith("attempts 4 next " + out[1].split(" next ")[1].split()[0]
                           + " error fault: ServiceException: no")
    assert main(["outbox", "retry", *database]) == 2
    assert main(["outbox", "retry", "--dead", *database]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "1 message(s) due now"
    assert set(statuses(engine).values()) == {PENDING}
    engine.dispose()


def _delivered_days_ago(engine, key, days):
    at = now() - timedelta(days=days)
    with engine.begin() as conn:
        conn.execute(update(table).where(table.c.message_key == key)
                     .values(status=DELIVERED, next_attempt_at=at, delivered_at=at))


@pytest.fixture
def aged(sqlite_url):
    """Messages delivered 5 and 15 days ago, one PENDING and one DEAD from long ago."""
    engine = create_engine(sqlite_url)
    add(engine, *[deduction(n) for n in range(1, 5)])
    _delivered_days_ago(engine, "DED-P1-20260101", 5)
    _delivered_days_ago(engine, "DED-P2-20260101", 15)
    with engine.begin() as conn:
        conn.execute(update(table).where(table.c.message_key == "DED-P4-20260101")
                     .values(status=DEAD, next_attempt_at=now() - timedelta(days=99)))
    yield engine
    engine.dispose()


def test_purge_older_than(aged, sqlite_url, capsys):
    """purge --older-than DAYS deletes the DELIVERED messages older than that, says how many."""
    database = ["--database-url", sqlite_url]
    assert main(["outbox", "purge", "--older-than", "10", *database]) == 0
    assert capsys.readouterr().out.startswith("1 message(s) purged: DELIVERED before ")
    assert statuses(aged) == {"DED-P1-20260101": DELIVERED, "DED-P3-20260101": PENDING,
                              "DED-P4-20260101": DEAD}
    assert main(["outbox", "purge", "--older-than", "0", *database]) == 0
    assert capsys.readouterr().out.startswith("1 message(s) purged")
    assert set(statuses(aged).values()) == {PENDING, DEAD}


def test_purge_default_is_keep_delivered(aged, sqlite_url, tmp_path, capsys):
    """Without --older-than the configured keep_delivered applies; 0 purges nothing."""
    ini = tmp_path / "b.ini"
    ini.write_text("[outbox]\nkeep_delivered = 3\n")
    assert main(["outbox", "purge", "--config", str(ini), "--database-url", sqlite_url]) == 0
    assert capsys.readouterr().out.startswith("2 message(s) purged")
    ini.write_text("[outbox]\nkeep_delivered = 0\n")
    add(aged, deduction(5))
    _delivered_days_ago(aged, "DED-P5-20260101", 400)
    assert main(["outbox", "purge", "--config", str(ini), "--database-url", sqlite_url]) == 0
    assert capsys.readouterr().out.startswith("0 message(s) purged: [outbox] keep_delivered = 0")
    assert "DED-P5-20260101" in statuses(aged)


@pytest.mark.parametrize("days", ["-1", "ten", "1.5", "99999999"])
def test_purge_bad_days(aged, sqlite_url, capsys, days):
    """A bad --older-than: a clear message, exit 2, nothing purged."""
    with pytest.raises(SystemExit) as stopped:
        main(["outbox", "purge", "--older-than", days, "--database-url", sqlite_url])
    assert stopped.value.code == 2
    assert "argument --older-than: expected " in capsys.readouterr().err
    assert len(statuses(aged)) == 4


def test_purge_bad_config(aged, sqlite_url, tmp_path, capsys):
    """A negative keep_delivered in the config: exit 2, nothing purged."""
    ini = tmp_path / "b.ini"
    ini.write_text("[outbox]\nkeep_delivered = -5\n")
    assert main(["outbox", "purge", "--config", str(ini), "--database-url", sqlite_url]) == 2
    assert "keep_delivered must not be negative" in capsys.readouterr().err
    assert len(statuses(aged)) == 4
