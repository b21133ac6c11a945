"""Units to exact amounts: flat prices, tiers (graduated or volume), duration increments.

Amounts here are exact ``Decimal`` yuan; a charge rounds its total once, to the fen,
with its rule's rounding (``billingcenter.money``).

Tiers price the units of ONE record (or quote): with ``graduated`` tiers each unit costs
the price of the tier its position falls in; with ``volume`` tiers every unit costs the
price of the tier the record's whole quantity falls in.  Free trial units are the
record's first units: under graduated tiers they take the cheapest positions away
first (they would have been in the first tier); under volume tiers the tier is still
chosen by the whole quantity and only the paid units are charged.
"""

from __future__ import annotations

from decimal import Decimal

from billingcenter.rating.model import Price, Tier, TierMode

Band = tuple[int, Decimal]  # (units, price per unit)


def increments(seconds: int, increment: int) -> int:
    """Charged units of a duration: every started increment counts (1 s of 6 s is one)."""
    return -(-seconds // increment)


def free_units(trial: int, prior: int, units: int) -> int:
    """How many of ``units`` fall in a trial of ``trial`` units after ``prior`` used ones."""
    left = trial - prior
    if left <= 0:
        return 0
    return left if left < units else units


def bands(price: Price, units: int, free: int = 0) -> tuple[Band, ...]:
    """The paid units of a record split by price: (units, price) pairs, exact."""
    if not price.tiers:
        return ((units - free, price.unit_price),)
    if price.tier_mode is TierMode.VOLUME:
        return ((units - free, volume_price(price.tiers, units)),)
    found: list[Band] = []
    below = 0
    for tier in price.tiers:
        top = units if tier.upto is None or tier.upto > units else int(tier.upto)
        low = below if below > free else free
        if top > low:
            found.append((top - low, tier.price))
        if tier.upto is None or tier.upto >= units:
            break
        below = int(tier.upto)
    return tuple(found) or ((0, price.tiers[0].price),)


def volume_price(tiers: tuple[Tier, ...], quantity: int) -> Decimal:
    """The price of the tier a whole quantity falls in."""
    for tier in tiers:
        if tier.upto is None or quantity <= tier.upto:
            return tier.price
    return tiers[-1].price


def total(found: tuple[Band, ...]) -> Decimal:
    """The exact amount of some bands."""
    if len(found) == 1:
        units, each = found[0]
        return units * each
    return sum((units * each for units, each in found), Decimal(0))


def describe(found: tuple[Band, ...]) -> str:
    """The bands as text: ``100 x 0.05 + 50 x 0.04``."""
    return " + ".join(f"{units} x {each}" for units, each in found)
