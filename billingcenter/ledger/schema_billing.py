"""Tables of the ledger: payers, bills, balances, payments, service control, the outbox.

Money moves by appending rows; a charge is never changed except to be marked with the
balance entry that paid it.

* ``payer_account``: one row per payer the billing center knows (registered by the
  bill run and by the first payment or setting that names it).  ``id`` is the unit a
  bill run is split by.  ``kind`` is ``POSTPAID`` (billed on the billing date) or
  ``PREPAID`` (charges taken from ``balance_fen`` as they are rated).  ``balance_fen``
  is the money billing holds for the payer: top-ups in, prepaid charges and bills
  settled from it out; it equals the sum of the payer's ``balance_entry`` rows and is
  only changed, under the row's lock, in the transaction that appends the entry.  It
  never goes below ``floor_fen``.  ``service_state`` is ``OPEN`` or ``STOPPED``;
  ``arrears_since`` is when the oldest unpaid failure began (NULL when none).
* ``balance_entry``: every change of a balance, signed fen, with the balance after it;
  ``entry_key`` is unique (``topup:<serial>``, ``charge:<charge id>``,
  ``bill:<bill id>``), so nothing moves a balance twice.
* ``bill`` / ``bill_line``: one bill per (payer, bill date); lines group its charges
  by (order, product).  A bill holds the payer's charges with ``id <= upto_id``, a day
  before its date and no balance entry, that no earlier bill holds
  (``billingcenter.ledger.coverage``): nothing is written to a charge when it is billed.
  ``charge.entry_id`` names the balance entry that paid a prepaid charge (0: none).
  A bill that is owed has a ``deduction_id``, the idempotency key of its
  ``chargeAccount`` call.  Status: ``OWED`` (deduction asked), ``SETTLED``,
  ``ARREARS`` (the deduction failed; unpaid), ``EMPTY`` (nothing to pay).
* ``bill_run`` / ``bill_part`` / ``bill_fence``: a bill run in progress: its bounds,
  and its partial sums per (date, payer, range of charge ids, order, product), deleted
  as the bills are written (``billingcenter.ledger.bills``); the fence makes the bound
  exact (``billingcenter.ledger.fence``).
* ``payment``: every ``payCallback`` as received (key ``serial``) with what it did.
* ``service_event``: the history of service control: each STOP or REOPEN of a payer's
  order, why, and when.
* ``outbox``: outbound calls (``chargeAccount``, ``feedbackUser``) written in the same
  transaction as the state change that needs them and delivered later with retries;
  ``message_key`` is the idempotency key sent with the call.  Messages sharing an
  ``ordering_key`` are delivered one at a time in id order.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from billingcenter.intake import KEY_MAX, TEXT_MAX
from billingcenter.ledger.coltypes import Key, UtcDateTime, digest_type, row_id
from billingcenter.ledger.schema import STATUS_MAX, TABLE_OPTIONS, metadata

ENTRY_KEY_MAX = 128
MESSAGE_KEY_MAX = 128
TARGET_MAX = 160  # "account" or "business:<product code>"
METHOD_MAX = 64
REASON_MAX = 32
LEASE_OWNER_MAX = 128

# payer_account.kind
POSTPAID, PREPAID = "POSTPAID", "PREPAID"
# payer_account.service_state, service_event.action
OPEN, STOPPED = "OPEN", "STOPPED"
STOP, REOPEN = "STOP", "REOPEN"
# bill.status
OWED, SETTLED, ARREARS, EMPTY = "OWED", "SETTLED", "ARREARS", "EMPTY"
# bill_run.status
RUNNING, DONE = "RUNNING", "DONE"
# outbox.status
PENDING, DELIVERED, DEAD = "PENDING", "DELIVERED", "DEAD"

payer_account = Table(
    "payer_account",
    metadata,
    Column("id", row_id(), primary_key=True, autoincrement=True),
    Column("payer_id", Key(KEY_MAX), nullable=False),
    Column("kind", String(STATUS_MAX), nullable=False),
    Column("billing_day", Integer, nullable=True),  # NULL: [billing] day
    Column("balance_fen", BigInteger, nullable=False),
    Column("floor_fen", BigInteger, nullable=False),
    Column("threshold_fen", BigInteger, nullable=False),
    Column("service_state", String(STATUS_MAX), nullable=False),
    Column("arrears_since", UtcDateTime(), nullable=True),
    Column("state_changed_at", UtcDateTime(), nullable=True),
    Column("updated_at", UtcDateTime(), nullable=False),
    # What the payer's bills cover (see ``bill.upto_id``): its latest bill's charge id
    # bound and date (0 / NULL: never billed), and a charge id below which none of its
    # charges is waiting for a bill (0: unknown; the bill run then looks from the start).
    Column("billed_upto", BigInteger, nullable=False, server_default="0"),
    Column("billed_before", Date, nullable=True),
    Column("unbilled_from", BigInteger, nullable=False, server_default="0"),
    UniqueConstraint("payer_id"),
    Index(None, "kind", "payer_id"),  # the prepaid payers (rating's hook, the sweep)
    Index(None, "service_state"),  # the stopped payers (the arrears check)
    **TABLE_OPTIONS,
)

balance_entry = Table(
    "balance_entry",
    metadata,
    Column("id", row_id(), primary_key=True, autoincrement=True),
    Column("entry_key", Key(ENTRY_KEY_MAX), nullable=False),
    Column("payer_id", Key(KEY_MAX), nullable=False),
    Column("kind", String(STATUS_MAX), nullable=False),  # TOPUP, CHARGE, BILL
    Column("amount_fen", BigInteger, nullable=False),  # + in, - out
    Column("balance_after_fen", BigInteger, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    UniqueConstraint("entry_key"),
    Index(None, "payer_id", "id"),
    **TABLE_OPTIONS,
)

bill = Table(
    "bill",
    metadata,
    Column("id", row_id(), primary_key=True, autoincrement=True),
    Column("payer_id", Key(KEY_MAX), nullable=False),
    Column("bill_date", Date, nullable=False),  # charges of business days before it
    Column("first_day", Date, nullable=True),  # earliest charge day on the bill
    Column("last_day", Date, nullable=True),
    Column("total_fen", BigInteger, nullable=False),
    Column("lines", Integer, nullable=False),
    Column("charges", Integer, nullable=False),
    Column("status", String(STATUS_MAX), nullable=False),
    Column("deduction_id", Key(MESSAGE_KEY_MAX), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("settled_at", UtcDateTime(), nullable=True),
    Column("run_id", String(64), nullable=False),
    # The highest charge id its bill run could see (``bill_run.upto_id``): the bill
    # holds the payer's charges with id <= upto_id, day < bill_date and no balance
    # entry that no earlier bill of the payer holds.
    Column("upto_id", BigInteger, nullable=False, server_default="0"),
    UniqueConstraint("payer_id", "bill_date"),
    UniqueConstraint("deduction_id"),
    Index(None, "bill_date", "status"),
    Index(None, "status", "payer_id"),
    **TABLE_OPTIONS,
)

bill_line = Table(
    "bill_line",
    metadata,
    Column("id", row_id(), primary_key=True, autoincrement=True),
    Column("bill_id", BigInteger, nullable=False),
    Column("order_id", Key(KEY_MAX), nullable=False),
    Column("product_code", Key(TEXT_MAX), nullable=False),
    Column("charges", Integer, nullable=False),
    Column("amount_fen", BigInteger, nullable=False),
    Column("first_day", Date, nullable=False),
    Column("last_day", Date, nullable=False),
    Index(None, "bill_id"),
    **TABLE_OPTIONS,
)

# The partial sums of a bill run in progress: per (date, payer, range of charge ids,
# order, product), the unbilled charges of that range.  Clustered by (date, payer): the
# finish of a chunk of payers reads its parts together.  No auto-increment, so parallel
# sum passes never queue on a table lock; a range can never add the same sum twice.
bill_part = Table(
    "bill_part",
    metadata,
    Column("bill_date", Date, nullable=False),
    Column("payer_id", Key(KEY_MAX), nullable=False),
    Column("chunk", Integer, nullable=False),  # the id range (job_claim chunk)
    Column("order_id", Key(KEY_MAX), nullable=False),
    Column("product_code", Key(TEXT_MAX), nullable=False),
    Column("charges", Integer, nullable=False),
    Column("amount_fen", BigInteger, nullable=False),
    Column("first_day", Date, nullable=False),
    Column("last_day", Date, nullable=False),
    PrimaryKeyConstraint("bill_date", "payer_id", "chunk", "order_id", "product_code"),
    **TABLE_OPTIONS,
)

# One row per bill date run: the charge ids it bills (``start_id``..``upto_id``, fixed
# when it begins, under the fence) and where its payers' unbilled charges begin after
# it (``carry_id``).  One run at a time is RUNNING; a DONE date is never billed again.
bill_run = Table(
    "bill_run",
    metadata,
    Column("bill_date", Date, primary_key=True, autoincrement=False),
    Column("upto_id", BigInteger, nullable=False),
    Column("start_id", BigInteger, nullable=False),
    Column("carry_id", BigInteger, nullable=False),
    Column("joined_upto", BigInteger, nullable=False),  # see ledger.bills.plan_run
    Column("status", String(STATUS_MAX), nullable=False),  # RUNNING, DONE
    Column("run_id", String(64), nullable=False),
    Column("started_at", UtcDateTime(), nullable=False),
    Column("finished_at", UtcDateTime(), nullable=True),
    **TABLE_OPTIONS,
)

# One row (id 1).  Every transaction that inserts charges holds it in share mode; a
# bill run takes it exclusively to read the highest charge id, so that every charge
# with a lower id is committed (``billingcenter.ledger.fence``).
bill_fence = Table(
    "bill_fence",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    **TABLE_OPTIONS,
)

payment = Table(
    "payment",
    metadata,
    Column("id", row_id(), primary_key=True, autoincrement=True),
    Column("serial", Key(KEY_MAX), nullable=False),
    Column("deduction_id", Key(MESSAGE_KEY_MAX), nullable=False),  # "" for a top-up
    Column("payer_id", Key(KEY_MAX), nullable=False),
    Column("amount_fen", BigInteger, nullable=False),
    Column("status", String(32), nullable=False),  # as sent: SUCCESS, FAILED, ...
    Column("paid_at", UtcDateTime(), nullable=False),
    Column("outcome", String(REASON_MAX), nullable=False),  # what billing did with it
    Column("digest", digest_type(), nullable=False),
    Column("recorded_at", UtcDateTime(), nullable=False),
    UniqueConstraint("serial"),
    Index(None, "deduction_id"),
    Index(None, "payer_id", "id"),
    **TABLE_OPTIONS,
)

service_event = Table(
    "service_event",
    metadata,
    Column("id", row_id(), primary_key=True, autoincrement=True),
    Column("payer_id", Key(KEY_MAX), nullable=False),
    Column("order_id", Key(KEY_MAX), nullable=False),
    Column("product_code", Key(TEXT_MAX), nullable=False),
    Column("action", String(STATUS_MAX), nullable=False),  # STOP, REOPEN
    Column("reason", String(REASON_MAX), nullable=False),  # ARREARS, LOW_BALANCE, SETTLED
    Column("at", UtcDateTime(), nullable=False),
    Index(None, "payer_id", "id"),
    Index(None, "order_id", "id"),
    **TABLE_OPTIONS,
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", row_id(), primary_key=True, autoincrement=True),
    Column("message_key", Key(MESSAGE_KEY_MAX), nullable=False),
    Column("target", String(TARGET_MAX), nullable=False),
    Column("method", String(METHOD_MAX), nullable=False),
    # Messages with the same non-empty ordering key are delivered one at a time, in id
    # order (a STOP and the REOPEN after it of one order: "order:<order_id>").
    Column("ordering_key", Key(MESSAGE_KEY_MAX), nullable=False),
    Column("payload", Text, nullable=False),  # JSON: the call's arguments
    Column("status", String(STATUS_MAX), nullable=False),  # PENDING, DELIVERED, DEAD
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UtcDateTime(), nullable=False),
    Column("lease_owner", String(LEASE_OWNER_MAX), nullable=True),
    Column("lease_until", UtcDateTime(), nullable=True),
    Column("last_error", Text, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("delivered_at", UtcDateTime(), nullable=True),
    UniqueConstraint("message_key"),
    Index(None, "status", "next_attempt_at"),
    Index(None, "ordering_key", "status"),
    **TABLE_OPTIONS,
)
