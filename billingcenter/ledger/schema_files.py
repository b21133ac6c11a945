"""Tables of the ledger: usage-record files and their records (owner: usage file loader).

``usage_file`` is one row per run of ``billingcenter usage load`` (the file, the rule
set, the counts so far, committed with every batch); ``file_record`` holds each
accepted record once, whatever file or load brought it.  A record's charge is in
``charge`` (kind ``record``, ``source_key`` = ``record_key``), written in the same
transaction; the unique ``charge (kind, source_key)`` is what makes a record seen
before a duplicate that is never stored (or charged) again, so ``file_record`` needs
no unique index of its own (migration 0005 dropped it).

``file_record`` is the hot table: no foreign key to ``usage_file`` (the load id is
written by the loader that owns the row), and as few indexes as the queries need:
``(file_id, line)`` finds the records of a load.

They share ``billingcenter.ledger.schema.metadata``; ``billingcenter.ledger.tables``
imports every schema module so the metadata is complete.  The index on
``error_record (method, key)`` lets the loader and ``errors recycle`` find the open
error of a record key without scanning the error store.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, String, Table, Text

from billingcenter.intake import KEY_MAX, TEXT_MAX
from billingcenter.ledger.coltypes import Key, UtcDateTime, digest_type, row_id
from billingcenter.ledger.schema import STATUS_MAX, TABLE_OPTIONS, error_record, metadata

FILE_NAME_MAX = 512

usage_file = Table(
    "usage_file",
    metadata,
    Column("id", row_id(), primary_key=True, autoincrement=True),
    Column("name", String(FILE_NAME_MAX), nullable=False),
    Column("digest", digest_type(), nullable=False),  # SHA-256 of the file's bytes
    Column("rule_set", Key(TEXT_MAX), nullable=False),
    Column("status", String(STATUS_MAX), nullable=False),  # LOADING, DONE, FAILED
    Column("started_at", UtcDateTime(), nullable=False),
    Column("finished_at", UtcDateTime(), nullable=True),
    Column("rows_read", BigInteger, nullable=False),
    Column("accepted", BigInteger, nullable=False),
    Column("duplicates", BigInteger, nullable=False),
    Column("rejected", BigInteger, nullable=False),
    Column("amount_fen", BigInteger, nullable=False),
    Column("note", Text, nullable=False),  # why a load FAILED, else empty
    Index(None, "digest"),
    Index(None, "started_at"),
    **TABLE_OPTIONS,
)

file_record = Table(
    "file_record",
    metadata,
    Column("id", row_id(), primary_key=True, autoincrement=True),
    Column("record_key", Key(KEY_MAX), nullable=False),
    Column("file_id", BigInteger, nullable=False),  # the usage_file (load) that stored it
    Column("line", Integer, nullable=False),  # line number in that file (header = 1)
    Column("occurred_at", UtcDateTime(), nullable=False),
    Column("payer_id", Key(KEY_MAX), nullable=False),
    Column("product_code", Key(TEXT_MAX), nullable=False),
    Column("item_code", Key(TEXT_MAX), nullable=False),
    Column("user_id", Key(TEXT_MAX), nullable=False),
    Column("quantity", BigInteger, nullable=False),
    Column("duration", BigInteger, nullable=True),  # seconds; NULL when the file had none
    Column("attributes", Text, nullable=False),  # the further columns, as a JSON object
    Column("recorded_at", UtcDateTime(), nullable=False),
    Index(None, "file_id", "line"),
    **TABLE_OPTIONS,
)

error_record_method_key = Index(None, error_record.c.method, error_record.c.key)

FILE_TABLES = (usage_file, file_record)
