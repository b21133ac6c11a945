"""Price quotes (``getTotalPrice``): what a quantity of a product costs at a given time.

The rule set is the one in force at ``request.at`` for the product
(``RuleBook.for_product``); the rule is its first rule of any mode matching the
request's attributes plus ``product_code`` and ``plan_code``.  What is priced:

* ``per_use``: ``quantity`` uses (a line per tier band with graduated tiers);
* ``duration``: ``quantity`` seconds as one call: started increments, plus a
  ``connect fee`` line when the rule has one;
* ``daily``: ``days`` days; ``daily_accounts``: ``days`` x ``account_num`` account-days.

A quote is the list price: free trials are not applied (a quote knows no order
history).  The total is the exact sum of the lines rounded once with the rule's
rounding, exactly as a charge would be; each line shows its own amount rounded alike.
"""

from __future__ import annotations

from decimal import Decimal

from billingcenter.money import to_fen
from billingcenter.rating.model import (
    Mode,
    Quote,
    QuoteLine,
    QuoteRequest,
    RatingError,
    Rule,
    RuleBook,
)
from billingcenter.rating.pricing import Band, bands, increments, total

ALL_MODES = frozenset(Mode)


def quote(request: QuoteRequest, book: RuleBook) -> Quote:
    """Quote ``request`` with the rules in force; RatingError when none applies."""
    rule_set = book.for_product(request.product_code, request.at)
    if rule_set is None:
        raise RatingError(
            f"no rule set is in force for product {request.product_code!r} at "
            f"{request.at.isoformat()}"
        )
    attributes = dict(request.attributes)
    attributes["product_code"] = request.product_code
    attributes["plan_code"] = request.plan_code
    rule = rule_set.match(attributes, ALL_MODES)
    if rule is None:
        raise RatingError(
            f"no rule of rule set {rule_set.name} {rule_set.version} prices product "
            f"{request.product_code!r} plan {request.plan_code!r}"
        )
    if min(request.quantity, request.days, request.account_num) < 0:
        raise RatingError("quantity, days and account_num must not be negative")
    found = _bands(rule, request)
    rounding = rule.price.rounding
    lines = tuple(
        QuoteLine(
            rule_id=rule.rule_id,
            description=(f"{rule.description} (connect fee)"
                         if _is_connect_fee(rule, found, i) else rule.description),
            units=Decimal(units),
            unit_price=each,
            amount_fen=to_fen(units * each, rounding),
        )
        for i, (units, each) in enumerate(found)
    )
    return Quote(
        total_fen=to_fen(total(found), rounding),
        rule_set=rule_set.name,
        rule_set_version=rule_set.version,
        lines=lines,
    )


def _bands(rule: Rule, request: QuoteRequest) -> tuple[Band, ...]:
    price = rule.price
    if price.mode is Mode.PER_USE:
        return bands(price, request.quantity)
    if price.mode is Mode.DURATION:
        calls = ((increments(request.quantity, price.increment), price.unit_price),)
        return calls + ((1, price.connect_fee),) if price.connect_fee else calls
    if price.mode is Mode.DAILY:
        return ((request.days, price.unit_price),)
    return ((request.days * request.account_num, price.unit_price),)


def _is_connect_fee(rule: Rule, found: tuple[Band, ...], i: int) -> bool:
    return rule.price.mode is Mode.DURATION and i == len(found) - 1 and i > 0
