"""``billingcenter outbox list`` and ``outbox retry`` (``deliver`` runs in test_kill)."""

from __future__ import annotations

from sqlalchemy import update

from billingcenter.cli import main
from billingcenter.ledger.engine import create_engine
from billingcenter.ledger.schema_billing import DEAD, PENDING
from billingcenter.ledger.schema_billing import outbox as table
from tests.outbound.support import add, deduction, statuses


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
