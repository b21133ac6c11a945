"""Bills hold charges by id bound and date; charges are no longer marked with their bill.

``bill.upto_id``, ``payer_account.billed_upto / billed_before / unbilled_from``, the
``bill_run`` and ``bill_fence`` tables; ``bill_part`` keyed by (date, payer, range,
order, product); ``charge.bill_id`` dropped (``billingcenter.ledger.coverage``).

An existing ledger is carried over when its marks can be written as bounds: each bill's
bound is the highest id of the charges marked with it.  The upgrade refuses, changing
nothing, while a bill run is in progress (bills BUILDING) or when a bound would take in a
charge its bill did not hold (an unmarked charge of the payer below the bound).

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-22
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import context, op

from billingcenter.ledger.coltypes import Key, UtcDateTime

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | None = None
depends_on: str | None = None

MYSQL: dict[str, Any] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_unicode_ci",
}

# Per bill: its bound (the highest id marked with it) and the previous bill's bound and
# date; a charge of the payer that the bounds give to the bill but that is not marked
# with it makes the carry-over impossible.
def _bounds(conn: Any) -> list[tuple[Any, ...]]:
    """(bill id, payer, date, bound) of every bill (one scan of ``charge``)."""
    highest = dict(conn.execute(sa.text(
        "SELECT bill_id, MAX(id) FROM charge WHERE bill_id <> 0 GROUP BY bill_id")).all())
    return [(bill_id, payer_id, bill_date, int(highest.get(bill_id, 0)))
            for bill_id, payer_id, bill_date in conn.execute(sa.text(
                "SELECT id, payer_id, bill_date FROM bill ORDER BY id"))]


def upgrade() -> None:
    """Check the ledger can be carried over, then change the tables."""
    offline = context.is_offline_mode()  # SQL written out, not run: nothing to check
    conn = op.get_bind()
    if not offline and conn.execute(sa.text(
            "SELECT COUNT(*) FROM bill WHERE status = 'BUILDING'")).scalar():
        raise RuntimeError("a bill run is in progress (bills BUILDING): finish it with the "
                           "previous version before upgrading; nothing was changed")
    bounds = [] if offline else _bounds(conn)
    if not offline:
        _refuse_unmarked(conn, bounds)
    with op.batch_alter_table("bill") as batch:
        batch.add_column(sa.Column("upto_id", sa.BigInteger(), nullable=False,
                                   server_default="0"))
    with op.batch_alter_table("payer_account") as batch:
        batch.add_column(sa.Column("billed_upto", sa.BigInteger(), nullable=False,
                                   server_default="0"))
        batch.add_column(sa.Column("billed_before", sa.Date(), nullable=True))
        batch.add_column(sa.Column("unbilled_from", sa.BigInteger(), nullable=False,
                                   server_default="0"))
    if offline:
        _carry_over_in_sql()
    else:
        _carry_over(conn, bounds)
    op.drop_table("bill_part")
    _bill_part()
    op.create_table(
        "bill_run",
        sa.Column("bill_date", sa.Date(), autoincrement=False, nullable=False),
        sa.Column("upto_id", sa.BigInteger(), nullable=False),
        sa.Column("start_id", sa.BigInteger(), nullable=False),
        sa.Column("carry_id", sa.BigInteger(), nullable=False),
        sa.Column("joined_upto", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("started_at", UtcDateTime(), nullable=False),
        sa.Column("finished_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("bill_date", name="pk_bill_run"),
        **MYSQL,
    )
    fence = op.create_table(
        "bill_fence",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_bill_fence"),
        **MYSQL,
    )
    op.bulk_insert(fence, [{"id": 1}])
    with op.batch_alter_table("charge") as batch:
        batch.drop_column("bill_id")


def _refuse_unmarked(conn: Any, bounds: list[tuple[Any, ...]]) -> None:
    by_payer: dict[str, list[tuple[Any, ...]]] = {}
    for row in bounds:
        by_payer.setdefault(row[1], []).append(row)
    check = sa.text(
        "SELECT COUNT(*) FROM charge WHERE payer_id = :payer AND entry_id = 0"
        " AND bill_id <> :bill AND id <= :upto AND day < :day"
        " AND NOT (id <= :prev_upto AND day < :prev_day)")
    bad = []
    for payer_id, rows in by_payer.items():
        prev_upto, prev_day = 0, None
        for bill_id, _, bill_date, upto in sorted(rows, key=lambda r: r[2]):
            if upto < prev_upto:
                bad.append(f"bill {bill_id} of {payer_id}: its charges lie below an earlier bill's")
            elif conn.execute(check, {"payer": payer_id, "bill": bill_id, "upto": upto,
                                      "day": bill_date, "prev_upto": prev_upto,
                                      "prev_day": prev_day or bill_date}).scalar():
                bad.append(f"bill {bill_id} of {payer_id}: charges it did not take lie "
                           "below its highest charge")
            prev_upto, prev_day = max(prev_upto, upto), bill_date
    if bad:
        raise RuntimeError("the ledger's bills cannot be carried over to charge id bounds; "
                           "nothing was changed: " + "; ".join(bad[:20]))


def _carry_over(conn: Any, bounds: list[tuple[Any, ...]]) -> None:
    set_bill = sa.text("UPDATE bill SET upto_id = :upto WHERE id = :id")
    latest: dict[str, tuple[Any, int]] = {}
    for bill_id, payer_id, bill_date, upto in bounds:
        conn.execute(set_bill, {"upto": upto, "id": bill_id})
        seen = latest.get(payer_id)
        if seen is None or bill_date > seen[0]:
            latest[payer_id] = (bill_date, max(upto, seen[1] if seen else 0))
    set_payer = sa.text("UPDATE payer_account SET billed_upto = :upto, billed_before = :day"
                        " WHERE payer_id = :payer")
    for payer_id, (bill_date, upto) in latest.items():
        conn.execute(set_payer, {"upto": upto, "day": bill_date, "payer": payer_id})


def _carry_over_in_sql() -> None:
    """The carry-over as statements (``--sql``): run them on a ledger known to be clean."""
    op.execute("UPDATE bill SET upto_id = COALESCE((SELECT MAX(c.id) FROM charge c"
               " WHERE c.bill_id = bill.id), 0)")
    op.execute("UPDATE payer_account SET billed_upto = COALESCE((SELECT MAX(b.upto_id)"
               " FROM bill b WHERE b.payer_id = payer_account.payer_id), 0), billed_before ="
               " (SELECT MAX(b.bill_date) FROM bill b WHERE b.payer_id = payer_account.payer_id)")


def _bill_part() -> None:
    op.create_table(
        "bill_part",
        sa.Column("bill_date", sa.Date(), nullable=False),
        sa.Column("payer_id", Key(64), nullable=False),
        sa.Column("chunk", sa.Integer(), nullable=False),
        sa.Column("order_id", Key(64), nullable=False),
        sa.Column("product_code", Key(128), nullable=False),
        sa.Column("charges", sa.Integer(), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("first_day", sa.Date(), nullable=False),
        sa.Column("last_day", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("bill_date", "payer_id", "chunk", "order_id", "product_code",
                                name="pk_bill_part"),
        **MYSQL,
    )


def downgrade() -> None:
    """Mark every billed charge with its bill again, and put the old tables back."""
    with op.batch_alter_table("charge") as batch:
        batch.add_column(sa.Column("bill_id", sa.BigInteger(), nullable=False,
                                   server_default="0"))
    # A charge's bill: the payer's earliest bill whose bound and date take it in.
    op.execute(
        "UPDATE charge SET bill_id = COALESCE((SELECT b.id FROM bill b"
        " WHERE b.payer_id = charge.payer_id AND charge.id <= b.upto_id"
        " AND charge.day < b.bill_date ORDER BY b.bill_date LIMIT 1), 0)"
        " WHERE entry_id = 0")
    op.drop_table("bill_fence")
    op.drop_table("bill_run")
    op.drop_table("bill_part")
    op.create_table(
        "bill_part",
        sa.Column("bill_id", sa.BigInteger(), nullable=False),
        sa.Column("chunk", sa.Integer(), nullable=False),
        sa.Column("order_id", Key(64), nullable=False),
        sa.Column("product_code", Key(128), nullable=False),
        sa.Column("charges", sa.Integer(), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("first_day", sa.Date(), nullable=False),
        sa.Column("last_day", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("bill_id", "chunk", "order_id", "product_code",
                                name="pk_bill_part"),
        **MYSQL,
    )
    with op.batch_alter_table("payer_account") as batch:
        batch.drop_column("unbilled_from")
        batch.drop_column("billed_before")
        batch.drop_column("billed_upto")
    with op.batch_alter_table("bill") as batch:
        batch.drop_column("upto_id")
