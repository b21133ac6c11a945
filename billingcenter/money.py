"""Money: ``Decimal`` in the core, integer fen on the wire and in totals.

Every amount is built through :func:`money`; rounding to the fen lives here and
only here (``ROUND_HALF_UP`` unless a rule names another mode).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

FEN = Decimal("0.01")
FEN_PER_YUAN = 100


class MoneyError(ValueError):
    """A value that cannot be an amount of money."""


def money(value: str | int | Decimal) -> Decimal:
    """Build an amount in yuan from text, an int or a Decimal; never from a float."""
    if isinstance(value, bool) or isinstance(value, float):
        raise MoneyError(f"refusing to build money from {type(value).__name__}: {value!r}")
    try:
        result = Decimal(value)
    except (InvalidOperation, TypeError) as exc:
        raise MoneyError(f"not an amount: {value!r}") from exc
    if not result.is_finite():
        raise MoneyError(f"not a finite amount: {value!r}")
    return result


def round_fen(amount: Decimal, rounding: str = ROUND_HALF_UP) -> Decimal:
    """Round an amount in yuan to the fen."""
    return amount.quantize(FEN, rounding=rounding)


def to_fen(amount: Decimal, rounding: str = ROUND_HALF_UP) -> int:
    """Convert an amount in yuan to integer fen, rounding as given."""
    return int(round_fen(amount, rounding) * FEN_PER_YUAN)


def from_fen(fen: int) -> Decimal:
    """Convert integer fen to an amount in yuan."""
    if isinstance(fen, bool) or not isinstance(fen, int):
        raise MoneyError(f"fen must be an int, got {type(fen).__name__}")
    return Decimal(fen) / FEN_PER_YUAN
