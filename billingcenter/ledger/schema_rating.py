"""Tables of the ledger: charges and job claims (owner: rating jobs).

``charge`` holds every rated amount, appended and never updated: ``(kind, source_key)``
is unique, so a charge is written at most once whatever reruns, crashes or concurrent
processes do (``source_key`` is ``order_id/yyyy-mm-dd`` for a day, the ``op_id`` of a
usage record, the ``record_key`` of a file record).  Amounts are integer fen; units
and unit prices are exact decimals; ``explanation`` is the core's explanation as a
JSON object.  ``run_id`` names the job run that wrote the row.

``job_claim`` is the work list of the batch jobs: one row per (job, business day,
chunk), inserted by the process that claims the chunk and marked ``done`` in the same
transaction as the chunk's charges (``billingcenter.ledger.charges``).

The index on ``usage_record (occurred_at)`` lets the per-use job find a business
day's records without scanning the table.

They share ``billingcenter.ledger.schema.metadata``; ``billingcenter.ledger.tables``
imports every schema module so the metadata is complete.
"""

from __future__ import annotations

from sqlalchemy import (
    DECIMAL,
    BigInteger,
    Column,
    Date,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from billingcenter.intake import KEY_MAX, TEXT_MAX
from billingcenter.ledger.coltypes import Key, UtcDateTime, row_id
from billingcenter.ledger.schema import STATUS_MAX, TABLE_OPTIONS, metadata, usage_record

SOURCE_KEY_MAX = TEXT_MAX  # order_id (64) + "/yyyy-mm-dd", op_id, record_key
VERSION_MAX = 64  # a rule set's version label
KIND_MAX = 16  # ChargeKind values, job names
OWNER_MAX = 128  # a claiming process: host:pid or an operator's name
RUN_ID_MAX = 64
UNITS_PRECISION, UNITS_SCALE = 20, 6  # DECIMAL(20, 6) for units and unit prices

charge = Table(
    "charge",
    metadata,
    Column("id", row_id(), primary_key=True, autoincrement=True),
    Column("kind", String(KIND_MAX), nullable=False),
    Column("source_key", Key(SOURCE_KEY_MAX), nullable=False),
    Column("order_id", Key(KEY_MAX), nullable=False),
    Column("payer_id", Key(KEY_MAX), nullable=False),
    Column("product_code", Key(TEXT_MAX), nullable=False),
    Column("day", Date, nullable=False),  # business day in the business time zone
    Column("rule_set", Key(TEXT_MAX), nullable=False),
    Column("rule_set_version", Key(VERSION_MAX), nullable=False),
    Column("rule_id", Key(TEXT_MAX), nullable=False),
    Column("units", DECIMAL(UNITS_PRECISION, UNITS_SCALE), nullable=False),
    Column("unit_price", DECIMAL(UNITS_PRECISION, UNITS_SCALE), nullable=False),
    Column("amount_fen", BigInteger, nullable=False),
    Column("explanation", Text, nullable=False),  # JSON object
    Column("rated_at", UtcDateTime(), nullable=False),
    Column("run_id", String(RUN_ID_MAX), nullable=False),
    # The balance entry that paid it (0: none; prepaid payers), set once.  Which bill
    # holds a charge follows from its id and day (billingcenter.ledger.schema_billing).
    Column("entry_id", BigInteger, nullable=False, server_default="0"),
    UniqueConstraint("kind", "source_key"),
    Index(None, "payer_id", "day"),
    Index(None, "day"),
    **TABLE_OPTIONS,
)

job_claim = Table(
    "job_claim",
    metadata,
    Column("id", row_id(), primary_key=True, autoincrement=True),
    Column("job", String(KIND_MAX), nullable=False),  # "daily", "usage"
    Column("day", Date, nullable=False),
    Column("chunk", Integer, nullable=False),  # covers ids (chunk*size, (chunk+1)*size]
    Column("chunk_size", Integer, nullable=False),  # the first run of a day fixes it
    Column("status", String(STATUS_MAX), nullable=False),  # running, done
    Column("owner", String(OWNER_MAX), nullable=False),
    Column("claimed_at", UtcDateTime(), nullable=False),
    Column("finished_at", UtcDateTime(), nullable=True),
    Column("last_id", BigInteger, nullable=True),  # highest source row id rated when done
    Column("rows_seen", Integer, nullable=False),  # orders or records looked at
    Column("charges", Integer, nullable=False),  # charges this chunk wrote
    Column("amount_fen", BigInteger, nullable=False),  # their total
    UniqueConstraint("job", "day", "chunk"),
    **TABLE_OPTIONS,
)

usage_record_occurred_at = Index(None, usage_record.c.occurred_at)

RATING_TABLES = (charge, job_claim)
