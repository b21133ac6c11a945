"""SqlLedger specifics: races through the unique index, statements per batch, failures."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from datetime import timedelta

import attrs
import pytest
from sqlalchemy import event, insert

from billingcenter.errors import DuplicateConflict, Unavailable
from billingcenter.ledger import rows
from billingcenter.ledger.engine import create_engine
from billingcenter.ledger.schema import usage_record
from billingcenter.ledger.store import SqlLedger
from billingcenter.model import Receipt

from .builders import CATALOGUE, NOW, order, usage
from .builders import event as state_event

EARLIER = NOW - timedelta(minutes=1)


def installed(engine):
    """A SqlLedger on ``engine`` with the catalogue and order o-1."""
    ledger = SqlLedger(engine)
    ledger.sync_products(CATALOGUE)
    ledger.add_order(order(), NOW)
    return ledger


@contextmanager
def statements(engine):
    """Collect the first word of every statement sent to the database."""
    seen = []

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement.split()[0].upper())

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


@pytest.mark.mariadb
class TestKeyTakenMeanwhile:
    """Another connection commits the same key between our SELECT and our INSERT."""

    def race(self, engine, stored_quantity):
        ledger = installed(engine)
        sent = usage()
        theirs = attrs.evolve(sent, payer_id="p-1", quantity=stored_quantity)
        answer = {}

        def ours():
            try:
                answer["value"] = ledger.add_usage(sent, NOW)
            except Exception as exc:  # handed over to the test thread
                answer["value"] = exc

        with engine.connect() as other:
            other.begin()
            row = rows.usage_row(
                theirs, attrs.evolve(sent, quantity=stored_quantity).digest(), EARLIER
            )
            other.execute(insert(usage_record), row)
            worker = threading.Thread(target=ours)
            worker.start()
            time.sleep(0.5)
            # Still running: our SELECT saw nothing, our INSERT waits on their key lock.
            assert worker.is_alive()
            other.commit()
            worker.join(10)
        assert ledger.row_counts()["usage_record"] == 1
        return answer["value"]

    def test_same_content_answers_their_receipt(self, mariadb_engine):
        """The unique-key error is caught, the row re-read, and its receipt answered."""
        assert self.race(mariadb_engine, 2) == Receipt("op-1", "ACCEPTED", EARLIER)

    def test_other_content_is_a_conflict(self, mariadb_engine):
        """The re-read row has another digest: DuplicateConflict."""
        assert isinstance(self.race(mariadb_engine, 99), DuplicateConflict)


class TestStatementsPerBatch:
    def test_constant_in_the_batch_size(self, sql_engine):
        """A batch of 200 sends as many statements as a batch of 10."""
        installed(sql_engine)
        counts = []
        for size in (10, 200):
            batch = [(usage(op_id=f"{size}-{n}"), NOW) for n in range(size)]
            with statements(sql_engine) as seen:
                SqlLedger(sql_engine).add_usages(batch)
            counts.append(seen)
        assert counts[0] == counts[1]
        assert [s for s in counts[0] if s != "BEGIN"] == ["SELECT", "INSERT"]

    def test_known_orders_come_from_the_cache(self, sql_engine):
        """Once an order was read, a batch of new keys is a single INSERT."""
        ledger = installed(sql_engine)
        ledger.add_usage(usage(op_id="warm"), NOW)
        with statements(sql_engine) as seen:
            ledger.add_usages([(usage(op_id=f"op-{n}"), NOW) for n in range(50)])
        assert [s for s in seen if s != "BEGIN"] == ["INSERT"]

    def test_a_stored_key_makes_the_batch_look_keys_up(self, sql_engine):
        """A batch holding a stored key fails its first INSERT, then looks the keys up."""
        ledger = installed(sql_engine)
        ledger.add_usage(usage(op_id="op-0"), NOW)
        batch = [(usage(op_id=f"op-{n}"), NOW) for n in range(10)]
        with statements(sql_engine) as seen:
            answers = ledger.add_usages(batch)
        assert [s for s in seen if s not in ("BEGIN", "ROLLBACK")] == ["INSERT", "SELECT", "INSERT"]
        assert all(isinstance(a, Receipt) for a in answers)
        assert ledger.row_counts()["usage_record"] == 10

    def test_a_batch_of_refusals_touches_nothing(self, sql_engine):
        """Records refused on their own never reach the database."""
        with statements(sql_engine) as seen:
            answers = SqlLedger(sql_engine).add_usages([(usage(quantity=-1), NOW)])
        assert seen == [] and len(answers) == 1


class TestFailures:
    def test_rollback_on_failure(self, sqlite_url):
        """A failure after the first write leaves nothing behind and becomes Unavailable."""
        engine = create_engine(sqlite_url)
        ledger = installed(engine)
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "CREATE TRIGGER boom BEFORE UPDATE ON order_mirror "
                "BEGIN SELECT RAISE(ABORT, 'boom'); END"
            )
        with pytest.raises(Unavailable):
            ledger.add_state_event(state_event(), NOW)
        assert ledger.row_counts()["order_state_event"] == 0
        engine.dispose()

    def test_unreachable_mysql(self):
        """A refused connection becomes a short Unavailable, without SQL in it."""
        engine = create_engine("mysql+pymysql://root@127.0.0.1:1/nowhere_test")
        with pytest.raises(Unavailable) as caught:
            SqlLedger(engine).add_usage(usage(), NOW)
        assert "2003" in str(caught.value) and "SELECT" not in str(caught.value)
        assert len(str(caught.value)) < 100

    def test_unopenable_sqlite(self, tmp_path):
        """A database file that cannot be opened becomes Unavailable, for reads too."""
        ledger = SqlLedger(create_engine(f"sqlite:///{tmp_path}/missing-dir/ledger.sqlite3"))
        with pytest.raises(Unavailable):
            ledger.add_order(order(), NOW)
        with pytest.raises(Unavailable):
            ledger.get_order("o-1")

    def test_unmigrated_database(self, tmp_path):
        """Missing tables become Unavailable, not a raw SQL error."""
        ledger = SqlLedger(create_engine(f"sqlite:///{tmp_path}/empty.sqlite3"))
        with pytest.raises(Unavailable):
            ledger.row_counts()
