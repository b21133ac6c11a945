"""Tests of billingcenter.money."""

from decimal import ROUND_DOWN, Decimal

import pytest

from billingcenter.money import MoneyError, from_fen, money, round_fen, to_fen


class TestMoney:
    def test_builds_from_text(self):
        """Text becomes an exact Decimal."""
        assert money("0.105") == Decimal("0.105")

    def test_refuses_float(self):
        """A float never becomes money."""
        with pytest.raises(MoneyError):
            money(0.1)  # type: ignore[arg-type]

    def test_refuses_nan(self):
        """NaN and infinities are not amounts."""
        with pytest.raises(MoneyError):
            money("NaN")

    def test_half_up_to_fen(self):
        """Half a fen rounds up by default."""
        assert round_fen(Decimal("0.105")) == Decimal("0.11")
        assert to_fen(Decimal("0.105")) == 11

    def test_rule_rounding(self):
        """A rule may round down instead."""
        assert to_fen(Decimal("0.109"), ROUND_DOWN) == 10

    def test_from_fen(self):
        """Integer fen become yuan exactly."""
        assert from_fen(12345) == Decimal("123.45")
        with pytest.raises(MoneyError):
            from_fen(True)  # type: ignore[arg-type]
