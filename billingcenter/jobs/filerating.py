"""Rating the checked rows of a usage-record file into their stored charges.

``Rater.rate`` gives what ``rate_usage`` gives (``billingcenter.rating.usage``), as
``file_charge`` stores it, without doing all of its work for every row.  For a file
record everything of the charge but its key, payer, product, day and user follows
from the matched rule and the row's quantity or seconds (a file record has no order,
so no earlier uses count towards a trial): units, unit price, amount and the
explanation's other entries.  The first row of each (rule, quantity, seconds) is
rated by ``rate_usage`` itself, with stand-ins for the key and the user; its stored
explanation is kept cut at the stand-ins, and the rows after it only have their key
and user JSON-encoded into the cuts.  A row no rule prices, or whose rule cannot
price it, always goes the whole way, for ``rate_usage``'s exact reason.
"""

from __future__ import annotations

import bisect
from datetime import UTC, datetime
from json.encoder import encode_basestring
from zoneinfo import ZoneInfo

from billingcenter.jobs.filecheck import NO_RULE, PLAN_COLUMN, Rejected
from billingcenter.ledger.filerows import FileCharge, day_text, file_charge
from billingcenter.model import Order
from billingcenter.rating.days import business_day, day_bounds
from billingcenter.rating.model import (
    ChargeKind,
    RatingError,
    Rule,
    RuleBook,
    RuleSet,
    UsageFacts,
)
from billingcenter.rating.usage import USAGE_MODES, rate_usage

# The stand-in order of file records (they belong to no order): activated long ago.
_NO_ORDER = ""
_ACTIVATED = datetime(2000, 1, 1, tzinfo=UTC)
_NEVER = datetime.min.replace(tzinfo=UTC)
_ORDER_CACHE = 10_000
_PRICED_CACHE = 50_000
# Stand-ins for the key and the user: no rule's text encodes to these JSON strings.
_KEY_MARK, _USER_MARK = "\0key\0", "\0user\0"
_KEY_JSON, _USER_JSON = encode_basestring(_KEY_MARK), encode_basestring(_USER_MARK)

# The explanation before the key, between key and user, after the user; then the
# charge's rule set, version, rule, units, unit price and amount.
_Priced = tuple[str, str, str, str, str, str, str, str, int]


class Rater:
    """Rates checked rows with the version of one rule set in force at each row's time."""

    def __init__(self, book: RuleBook, rule_set: str, tz: ZoneInfo) -> None:
        self.rule_set = rule_set
        self._book = book
        self._tz = tz
        versions = [v for v in book.versions if v.name == rule_set]
        # Between two consecutive effective times the version in force cannot change.
        bounds = {v.effective_from for v in versions}
        bounds |= {v.effective_to for v in versions if v.effective_to is not None}
        self._bounds = sorted(bounds)
        self._segments: dict[int, RuleSet | None] = {}
        self._orders: dict[tuple[str, str, str, str], Order] = {}
        self._priced: dict[tuple[int, int, str | None], _Priced] = {}
        # [start, end) in which neither the version in force nor the business day
        # changes (rows come roughly in time order), that version and day (as text)
        self._span: tuple[datetime, datetime, RuleSet | None, str] = (_NEVER, _NEVER, None, "")

    @property
    def known(self) -> bool:
        """Whether any published version of the rule set exists."""
        return bool(self._bounds)

    def version_at(self, moment: datetime) -> RuleSet | None:
        """The version in force at ``moment`` (cached per span between effective times)."""
        segment = bisect.bisect_right(self._bounds, moment)
        if segment not in self._segments:
            self._segments[segment] = self._book.in_force(self.rule_set, moment)
        return self._segments[segment]

    def rate(self, key: str, occurred_at: datetime, payer: str, product: str, item: str,
             user: str, quantity: int, attributes: dict[str, str]) -> FileCharge:
        """The charge of a checked row; ``Rejected`` (NO_RULE) when nothing prices it.

        ``attributes`` (the row's further columns and ``duration``) get the rules'
        ``product_code``, ``plan_code`` and ``item_code`` added, as ``rate_usage`` sees them.
        """
        start, end, version, day = self._span
        if not start <= occurred_at < end:
            start, end, version, day = self._span_at(occurred_at)
        if version is None:
            raise Rejected(NO_RULE, f"no published version of rule set {self.rule_set} is "
                           f"in force at {occurred_at.isoformat()}")
        attributes["product_code"] = product
        attributes["plan_code"] = attributes.get(PLAN_COLUMN, "")
        attributes["item_code"] = item
        rule = version.match(attributes, USAGE_MODES)
        if rule is None:  # rejected, with rate_usage's reason
            return self._charge(version, key, occurred_at, payer, product, item, user,
                                quantity, attributes)
        memo = (id(rule), quantity, attributes.get("duration"))
        priced = self._priced.get(memo)
        if priced is None:
            priced = self._price(version, rule, occurred_at, payer, product, item, quantity,
                                 attributes)
            if priced is not None:
                if len(self._priced) >= _PRICED_CACHE:
                    self._priced.clear()
                self._priced[memo] = priced
        if priced is None:
            return self._charge(version, key, occurred_at, payer, product, item, user,
                                quantity, attributes)
        head, middle, tail, rule_set, version_name, rule_id, units, price, amount = priced
        return FileCharge(
            key, payer, product, day, rule_set, version_name, rule_id, units, price, amount,
            f"{head}{encode_basestring(key)}{middle}{encode_basestring(user)}{tail}",
        )

    def _span_at(self, moment: datetime) -> tuple[datetime, datetime, RuleSet | None, str]:
        """The span around ``moment`` of one version and one business day (kept)."""
        bounds = self._bounds
        segment = bisect.bisect_right(bounds, moment)
        day = business_day(moment, self._tz)
        start, end = day_bounds(day, self._tz)
        if segment:
            start = max(start, bounds[segment - 1])
        if segment < len(bounds):
            end = min(end, bounds[segment])
        self._span = (start, end, self.version_at(moment), day_text(day))
        return self._span

    def _price(self, version: RuleSet, rule: Rule, occurred_at: datetime, payer: str,
               product: str, item: str, quantity: int, attributes: dict[str, str]
               ) -> _Priced | None:
        """What every row priced by ``rule`` with this quantity and duration shares; None
        when the rule cannot price it (the row's own rating says why) or, in theory, the
        explanation cannot be cut at the stand-ins."""
        try:
            found = self._charge(version, _KEY_MARK, occurred_at, payer, product, item,
                                 _USER_MARK, quantity, attributes)
        except Rejected:
            return None
        head, key_cut, rest = found.explanation.partition(_KEY_JSON)
        middle, user_cut, tail = rest.partition(_USER_JSON)
        if (found.rule_id != rule.rule_id or not key_cut or not user_cut
                or _KEY_JSON in tail or _USER_JSON in head + middle + tail):
            return None
        return (head, middle, tail, found.rule_set, found.rule_set_version, found.rule_id,
                found.units, found.unit_price, found.amount_fen)

    def _charge(self, version: RuleSet, key: str, occurred_at: datetime, payer: str,
                product: str, item: str, user: str, quantity: int,
                attributes: dict[str, str]) -> FileCharge:
        """The whole way: ``rate_usage`` of the row, as stored."""
        order = self._order(payer, user, product, attributes.get(PLAN_COLUMN, ""))
        facts = UsageFacts(key, order, item, user, quantity, occurred_at, attributes)
        try:
            return file_charge(rate_usage(facts, self._tz, version, ChargeKind.RECORD))
        except RatingError as exc:
            raise Rejected(NO_RULE, str(exc)) from exc

    def _order(self, payer: str, user: str, product: str, plan: str) -> Order:
        """The stand-in order of a file record: no id, the record's payer and product."""
        found = self._orders.get((payer, user, product, plan))
        if found is None:
            if len(self._orders) >= _ORDER_CACHE:
                self._orders.clear()
            found = Order(_NO_ORDER, payer, user, product, plan, _ACTIVATED)
            self._orders[(payer, user, product, plan)] = found
        return found
