"""Values of the rating core: rule sets, prices, facts to rate, and charges.

Rule sets are written in TOML (``conf/rules/*.toml``; the format is documented in
``conf/rules/README.md``) and parsed by ``billingcenter.rating.ruleset.parse_rule_set``.
Every value here is frozen; money is ``Decimal`` in yuan until a charge rounds it to
integer fen (``billingcenter.money``).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal

import attrs

from billingcenter.model import Order, StateEvent
from billingcenter.money import round_fen, to_fen
from billingcenter.rating.index import Node, build_index, candidates, mode_mask
from billingcenter.rating.predicates import Check


class Mode(enum.Enum):
    """The charging model of a rule (one module per model in ``billingcenter.rating``)."""

    PER_USE = "per_use"  # quantity x unit price, optionally tiered
    DURATION = "duration"  # seconds in increments (6 s, 60 s, 300 s) x price per increment
    DAILY = "daily"  # one charge per order per business day it was active
    DAILY_ACCOUNTS = "daily_accounts"  # per order per day: max authorized accounts x price


class TierMode(enum.Enum):
    """How tiers apply to a quantity."""

    GRADUATED = "graduated"  # each unit at the price of the tier it falls in
    VOLUME = "volume"  # every unit at the price of the tier the total falls in


@attrs.frozen
class Tier:
    """Units up to ``upto`` (inclusive; None = no limit) cost ``price`` each."""

    upto: Decimal | None
    price: Decimal


@attrs.frozen
class Price:
    """How a matched record is priced."""

    mode: Mode
    unit_price: Decimal  # yuan per use / per increment / per day / per account-day
    tiers: tuple[Tier, ...] = ()  # PER_USE only; empty = flat unit_price
    tier_mode: TierMode = TierMode.GRADUATED
    increment: int = 60  # DURATION: seconds per charged unit, partial units round up
    connect_fee: Decimal = Decimal(0)  # DURATION: added once per record
    rounding: str = ROUND_HALF_UP  # to the fen, per charge
    trial_days: int = 0  # DAILY*: first N business days from first activation are free
    trial_uses: int = 0  # PER_USE/DURATION: first N units of the order's life are free
    # unit_price and connect_fee in integer fen when they are whole fen, else None: then
    # an amount is exact integer arithmetic and needs no rounding (derived, not compared)
    unit_fen: int | None = attrs.field(init=False, eq=False, repr=False)
    connect_fen: int | None = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "unit_fen", whole_fen(self.unit_price))
        object.__setattr__(self, "connect_fen", whole_fen(self.connect_fee))


def whole_fen(amount: Decimal) -> int | None:
    """``amount`` in integer fen when it is a whole number of fen, else None."""
    return to_fen(amount) if round_fen(amount) == amount else None


@attrs.frozen
class Condition:
    """A compiled test of a record's attributes; ``source`` is the TOML it came from."""

    test: Callable[[Mapping[str, str]], bool] = attrs.field(eq=False, repr=False)
    source: str
    # attribute -> the values it must take (its equality and set tests): lets a rule set
    # index its rules; an attribute left out is simply not used for indexing.
    equals: Mapping[str, frozenset[str]] = attrs.field(factory=dict, eq=False, repr=False)
    # the per-attribute tests ``test`` combines (empty: only ``test`` is known); lets the
    # index skip the tests it has already settled
    checks: tuple[Check, ...] = attrs.field(default=(), eq=False, repr=False)


@attrs.frozen
class Rule:
    """One rule: when its condition holds, the record is priced by ``price``."""

    rule_id: str
    description: str
    when: Condition
    price: Price


@attrs.frozen
class RuleSet:
    """A named, versioned list of rules; the first rule whose condition holds wins."""

    name: str
    version: str
    author: str
    effective_from: datetime
    effective_to: datetime | None
    rules: tuple[Rule, ...]
    products: frozenset[str] = frozenset()  # products whose orders and usage it rates
    source: str = attrs.field(default="", repr=False)  # the TOML text, kept verbatim
    _index: Node = attrs.field(init=False, eq=False, repr=False)  # built from ``rules``

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "_index", build_index(self.rules))

    def match(self, attributes: Mapping[str, str], modes: frozenset[Mode]) -> Rule | None:
        """The first rule (in file order) of one of ``modes`` whose condition holds.

        Rules of other modes are skipped, not stopped at.  The rules are indexed by
        their equality tests, so only the rules that could hold are tested.
        """
        mask = mode_mask(modes)
        for bits, test, rule in candidates(self._index, attributes):
            if bits & mask and test(attributes):
                return rule
        return None


@attrs.frozen
class RuleBook:
    """The published rule set versions, and which one is in force when.

    A version is in force at ``at`` when ``effective_from <= at < effective_to`` (open
    end when None); of several, the one with the latest ``effective_from`` wins (on a
    tie, the one later in ``versions``).
    """

    versions: tuple[RuleSet, ...] = ()
    # name -> its versions, latest effective_from first (ties: later in ``versions`` first)
    _by_name: Mapping[str, tuple[RuleSet, ...]] = attrs.field(
        init=False, eq=False, repr=False
    )

    def __attrs_post_init__(self) -> None:
        grouped: dict[str, list[tuple[int, RuleSet]]] = {}
        for position, version in enumerate(self.versions):
            grouped.setdefault(version.name, []).append((position, version))
        by_name = {
            name: tuple(v for _, v in sorted(
                found, key=lambda pv: (pv[1].effective_from, pv[0]), reverse=True
            ))
            for name, found in sorted(grouped.items())
        }
        object.__setattr__(self, "_by_name", by_name)

    def in_force(self, name: str, at: datetime) -> RuleSet | None:
        """The version of rule set ``name`` in force at ``at``, or None."""
        for version in self._by_name.get(name, ()):
            if version.effective_from <= at and (
                version.effective_to is None or at < version.effective_to
            ):
                return version
        return None

    def for_product(self, product_code: str, at: datetime) -> RuleSet | None:
        """The rule set in force at ``at`` whose ``products`` include ``product_code``.

        Each name contributes its version in force (a newer version that drops the
        product hands it over, it does not fall back to an older one); of several
        names, the latest ``effective_from`` wins, then the first name in sort order.
        """
        best: RuleSet | None = None
        for name in self._by_name:
            version = self.in_force(name, at)
            if version is not None and product_code in version.products and (
                best is None or version.effective_from > best.effective_from
            ):
                best = version
        return best


@attrs.frozen
class AccountCount:
    """The authorized-account count of (payer, product) from ``changed_at`` on."""

    changed_at: datetime
    count: int


@attrs.frozen
class OrderHistory:
    """Everything needed to rate one order's days: the order, its events, its counts.

    ``events`` are all state events of the order (any arrival order); ``accounts``
    are the account-count changes of the order's (payer, product), any order.  The
    count before the first change is ``order.account_num``.
    """

    order: Order
    events: tuple[StateEvent, ...] = ()
    accounts: tuple[AccountCount, ...] = ()


@attrs.frozen
class UsageFacts:
    """A usage record ready to rate, with the order's uses before it (for trials)."""

    op_id: str
    order: Order
    item_code: str
    user_id: str
    quantity: int
    occurred_at: datetime
    attributes: Mapping[str, str] = attrs.field(factory=dict)
    prior_units: int = 0  # units of the same order with an earlier (occurred_at, op_id)


class ChargeKind(enum.Enum):
    """What produced a charge."""

    DAILY = "daily"  # an order's business day (DAILY, DAILY_ACCOUNTS)
    USAGE = "usage"  # an insertServiceOp record (PER_USE, DURATION)
    RECORD = "record"  # a record of a usage file (``billingcenter usage load``)


@attrs.frozen
class Charge:
    """A rated amount and its explanation.

    ``source_key`` is unique per kind: ``op_id`` for usage, ``order_id/yyyy-mm-dd`` for a
    day, so re-rating the same inputs can never charge twice.
    """

    kind: ChargeKind
    source_key: str
    order_id: str
    payer_id: str
    product_code: str
    day: date  # business day in the business time zone
    rule_set: str
    rule_set_version: str
    rule_id: str
    units: Decimal
    unit_price: Decimal
    amount_fen: int
    explanation: Mapping[str, str] = attrs.field(factory=dict)


@attrs.frozen
class QuoteRequest:
    """What ``getTotalPrice`` asks: price this much of a product at ``at``."""

    payer_id: str
    product_code: str
    plan_code: str
    order_id: str
    quantity: int  # uses (PER_USE) or seconds (DURATION)
    days: int  # DAILY, DAILY_ACCOUNTS
    account_num: int  # DAILY_ACCOUNTS
    at: datetime
    attributes: Mapping[str, str] = attrs.field(factory=dict)


@attrs.frozen
class QuoteLine:
    """One line of a quote."""

    rule_id: str
    description: str
    units: Decimal
    unit_price: Decimal
    amount_fen: int


@attrs.frozen
class Quote:
    """A price quote: the total in fen, its lines, and the rule set version used."""

    total_fen: int
    rule_set: str
    rule_set_version: str
    lines: tuple[QuoteLine, ...]


class RatingError(Exception):
    """A record cannot be rated (no rule matches, a rule is unusable); says why."""
