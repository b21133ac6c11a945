"""Packed reads (``billingcenter.jobs.reading``): the same rows as an ordinary SELECT."""

from __future__ import annotations

import sqlalchemy as sa

from billingcenter.jobs.reading import fetch, text, utc
from billingcenter.ledger.schema import order_mirror
from tests.jobs import rating_support as support
from tests.jobs.rating_support import Facts

COLUMNS = (order_mirror.c.order_id, order_mirror.c.payer_id, order_mirror.c.activated_at,
           order_mirror.c.account_num)
DECODERS = (text, text, utc, int)

# The shared fixtures: SQLite and MariaDB databases of the rating-job tests.
rating_sqlite_template = support.rating_sqlite_template
rating_mysql_engine = support.rating_mysql_engine
engine = support.engine


def plain(engine, query):
    """The rows of ``query`` read the ordinary way."""
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(query)]


def packed(engine, query):
    """The rows of ``query`` through ``fetch``."""
    with engine.connect() as conn:
        return fetch(conn, query, DECODERS)


class TestFetch:
    def test_the_same_rows_as_a_plain_select(self, engine):
        """Strings, aware datetimes (microseconds kept) and integers come back equal."""
        facts = Facts(engine)
        for i in range(5):
            facts.order(f"o-{i}", payer=f"payer 中文 {i}", accounts=i,
                        activated=f"2026-11-0{i + 1}T08:00:00.{i:06}")
        query = sa.select(*COLUMNS).where(order_mirror.c.account_num >= 1)
        assert sorted(packed(engine, query)) == sorted(plain(engine, query))
        assert len(plain(engine, query)) == 4

    def test_no_rows(self, engine):
        """An empty result is an empty list."""
        assert packed(engine, sa.select(*COLUMNS)) == []

    def test_a_value_holding_a_separator_is_still_read_right(self, engine):
        """A key containing the packing's separators falls back to an ordinary read."""
        facts = Facts(engine)
        facts.order("o-1", payer="evil\x1fpayer")
        facts.order("o-2", payer="evil\x1epayer")
        facts.order("o-3", payer="evil\x1f")
        query = sa.select(*COLUMNS)
        assert sorted(packed(engine, query)) == sorted(plain(engine, query))

    def test_a_result_the_server_cuts_short_is_read_again(self, engine, monkeypatch):
        """A packed result truncated by the server fails the check: the rows are still right."""
        from billingcenter.jobs import reading

        facts = Facts(engine)
        for i in range(20):
            facts.order(f"o-{i}", payer=f"payer-{i}")
        query = sa.select(*COLUMNS)
        original = reading._packed
        seen = []

        def short(conn, query_, decoders):
            seen.append(original(conn, query_, decoders, group_concat_max=100))
            return seen[-1]

        monkeypatch.setattr(reading, "_packed", short)
        assert sorted(packed(engine, query)) == sorted(plain(engine, query))
        assert seen in ([], [None])  # MySQL: cut short and refused; SQLite: not packed
