"""Tables of the ledger: rule set versions and the audit of their workflow (owner: rules).

A row of ``rule_version`` is one version of a named rule set, its TOML source kept
verbatim (``source``, with its SHA-256 ``digest``) and the fields the workflow needs
copied out of it.  ``status`` moves draft -> reviewed -> published -> retired (see
``billingcenter.ledger.rules``); every change of a version, its import included,
appends one ``rule_audit`` row in the same transaction.

They share ``billingcenter.ledger.schema.metadata``; ``billingcenter.ledger.tables``
imports every schema module so the metadata is complete.
"""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, Index, String, Table, Text, UniqueConstraint

from billingcenter.intake import TEXT_MAX
from billingcenter.ledger.coltypes import Key, UtcDateTime, digest_type, long_text, row_id
from billingcenter.ledger.schema import TABLE_OPTIONS, metadata

RULE_SET_MAX = TEXT_MAX  # rule set name
VERSION_MAX = 64  # version label, e.g. "2026.11.1"
ACTOR_MAX = TEXT_MAX  # user name as given to ``--as``
WORD_MAX = 16  # status and action words

rule_version = Table(
    "rule_version",
    metadata,
    Column("id", row_id(), primary_key=True, autoincrement=True),
    Column("rule_set", Key(RULE_SET_MAX), nullable=False),
    Column("version", Key(VERSION_MAX), nullable=False),
    Column("author", Key(ACTOR_MAX), nullable=False),
    Column("effective_from", UtcDateTime(), nullable=False),
    Column("effective_to", UtcDateTime(), nullable=True),
    Column("status", String(WORD_MAX), nullable=False),
    Column("source", long_text(), nullable=False),
    Column("digest", digest_type(), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    UniqueConstraint("rule_set", "version"),
    **TABLE_OPTIONS,
)

rule_audit = Table(
    "rule_audit",
    metadata,
    Column("id", row_id(), primary_key=True, autoincrement=True),
    Column("version_id", row_id(), ForeignKey(rule_version.c.id), nullable=False),
    Column("action", String(WORD_MAX), nullable=False),
    Column("actor", Key(ACTOR_MAX), nullable=False),
    Column("from_status", String(WORD_MAX), nullable=True),  # NULL for the import
    Column("to_status", String(WORD_MAX), nullable=False),
    Column("at", UtcDateTime(), nullable=False),
    Column("note", Text, nullable=False),
    # Leads with version_id: the audit of one version in order, and InnoDB's index
    # for the foreign key (so it does not add one of its own that migrations lack).
    Index(None, "version_id", "id"),
    **TABLE_OPTIONS,
)

RULE_TABLES = (rule_version, rule_audit)
