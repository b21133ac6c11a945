"""Migration 0010: a ledger whose charges were marked with their bills is carried over
to bounds (or refused, unchanged), and the downgrade marks the charges again."""

from __future__ import annotations

from datetime import date

import pytest
import sqlalchemy as sa
from alembic import command

from billingcenter.ledger import migrate
from billingcenter.ledger.engine import create_engine
from tests.support import mysql_test_url, reset_mysql_database

NOV = date(2026, 11, 1)
DEC = date(2026, 12, 1)


@pytest.fixture(params=["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb)])
def database(request, tmp_path):
    """The URL of a new, empty database on SQLite or MariaDB."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/old.sqlite3"
    url = mysql_test_url("migrate_bounds")
    reset_mysql_database(url)
    return url


def _at_0009(url):
    migrate.upgrade(url, "0009")
    return url, create_engine(url)


def _charge(conn, payer, day, bill_id=0, entry_id=0, fen=100):
    conn.execute(sa.text(
        "INSERT INTO charge (kind, source_key, order_id, payer_id, product_code, day, rule_set,"
        " rule_set_version, rule_id, units, unit_price, amount_fen, explanation, rated_at,"
        " run_id, bill_id, entry_id) VALUES ('daily', :key, 'o', :payer, 'P', :day, 'r', '1',"
        " 'r', 1, 1, :fen, '{}', '2026-11-01 00:00:00', 'x', :bill, :entry)"),
        {"key": f"{payer}/{day}/{bill_id}/{entry_id}", "payer": payer, "day": day,
         "fen": fen, "bill": bill_id, "entry": entry_id})


def _bill(conn, bill_id, payer, bill_date, status="OWED"):
    conn.execute(sa.text(
        "INSERT INTO bill (id, payer_id, bill_date, total_fen, `lines`, charges, status,"
        " created_at, run_id) VALUES (:id, :payer, :date, 0, 0, 0, :status,"
        " '2026-11-01 00:00:00', 'x')"),
        {"id": bill_id, "payer": payer, "date": bill_date, "status": status})


def _payer(conn, payer):
    conn.execute(sa.text(
        "INSERT INTO payer_account (payer_id, kind, balance_fen, floor_fen, threshold_fen,"
        " service_state, updated_at) VALUES (:payer, 'POSTPAID', 0, 0, 0, 'OPEN',"
        " '2026-11-01 00:00:00')"), {"payer": payer})


def test_marks_become_bounds_and_come_back(database):
    """Each bill's bound is its highest marked charge; the payer row names the latest
    bill; a charge marked late with a higher id stays where it was after the round trip."""
    url, engine = _at_0009(database)
    with engine.begin() as conn:
        _payer(conn, "a")
        _bill(conn, 1, "a", NOV)
        _bill(conn, 2, "a", DEC)
        _charge(conn, "a", date(2026, 10, 30), bill_id=1)  # id 1
        _charge(conn, "a", date(2026, 10, 31), bill_id=1)  # id 2
        _charge(conn, "a", date(2026, 11, 5), bill_id=2)  # id 3
        _charge(conn, "a", date(2026, 10, 29), bill_id=2)  # id 4: late, on the next bill
        _charge(conn, "a", date(2026, 12, 1))  # id 5: waits
        _charge(conn, "a", date(2026, 11, 6), entry_id=9)  # id 6: paid from a balance
    migrate.upgrade(url)
    with engine.connect() as conn:
        bounds = conn.execute(sa.text("SELECT id, upto_id FROM bill ORDER BY id")).all()
        payer = conn.execute(sa.text(
            "SELECT billed_upto, billed_before FROM payer_account")).one()
        columns = {c["name"] for c in sa.inspect(conn).get_columns("charge")}
    assert bounds == [(1, 2), (2, 4)]
    assert (payer[0], str(payer[1])) == (4, "2026-12-01")
    assert "bill_id" not in columns
    command.downgrade(migrate.config(url), "0009")
    with engine.connect() as conn:
        marks = conn.execute(sa.text("SELECT id, bill_id FROM charge ORDER BY id")).all()
    assert marks == [(1, 1), (2, 1), (3, 2), (4, 2), (5, 0), (6, 0)]
    engine.dispose()


@pytest.mark.parametrize("case", ["unmarked_below", "bill_building"])
def test_a_ledger_bounds_cannot_hold_is_refused_unchanged(database, case):
    """An unmarked charge below a bill's highest (it would join that bill), or a run in
    progress: the upgrade stops with a message, at 0009, nothing changed."""
    url, engine = _at_0009(database)
    with engine.begin() as conn:
        _payer(conn, "a")
        _bill(conn, 1, "a", NOV, "BUILDING" if case == "bill_building" else "OWED")
        _charge(conn, "a", date(2026, 10, 30), bill_id=0 if case == "unmarked_below" else 1)
        _charge(conn, "a", date(2026, 10, 31), bill_id=1)
    message = "cannot be carried over" if case == "unmarked_below" else "in progress"
    with pytest.raises(RuntimeError, match=message):
        migrate.upgrade(url)
    assert migrate.current(url) == "0009"
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT id, bill_id FROM charge ORDER BY id")).all() == [
            (1, 0 if case == "unmarked_below" else 1), (2, 1)]
        assert "upto_id" not in {c["name"] for c in sa.inspect(conn).get_columns("bill")}
    engine.dispose()
