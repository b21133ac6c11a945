"""Tests of billingcenter.rating.quote: getTotalPrice quotes from the rules in force."""

from __future__ import annotations

from decimal import Decimal

import attrs
import pytest

from billingcenter.rating.model import Quote, QuoteLine, QuoteRequest, RatingError, RuleBook
from billingcenter.rating.quote import quote
from tests.rating.builders import at, shipped

BOOK = RuleBook(tuple(shipped(name) for name in (
    "saas-pc2", "saas-crm-basic", "saas-sms-notify", "voice", "settlement-inter-network")))
WHEN = at("2026-11-10 10:00")


def request(product: str, plan: str, quantity: int = 0, days: int = 0, accounts: int = 0,
            **attributes: str) -> QuoteRequest:
    return QuoteRequest("boss", product, plan, "", quantity, days, accounts, WHEN, attributes)


class TestQuote:
    def test_daily_accounts(self):
        """PC2: days x accounts x 0.50, trials not applied."""
        assert quote(request("PC2", "PC2-DAILY-ACCOUNTS", days=30, accounts=4), BOOK) == Quote(
            total_fen=6000, rule_set="saas-pc2", rule_set_version="2026.11.1",
            lines=(QuoteLine("pc2-daily-accounts", "PC2 per day by max authorized accounts, "
                             "7-day trial", Decimal(120), Decimal("0.50"), 6000),))

    def test_daily(self):
        """CRM: days x 3.00."""
        assert quote(request("CRM-BASIC", "CRM-DAILY", days=31), BOOK).total_fen == 9300

    def test_graduated_tiers_line_per_band(self):
        """SMS: one line per tier band, the total their exact sum."""
        result = quote(request("SMS-NOTIFY", "SMS-PER-USE", quantity=12000), BOOK)
        assert [(line.units, line.unit_price, line.amount_fen) for line in result.lines] == [
            (Decimal(1000), Decimal("0.05"), 5000), (Decimal(9000), Decimal("0.045"), 40500),
            (Decimal(2000), Decimal("0.04"), 8000)]
        assert result.total_fen == 53500

    def test_duration_with_connect_fee(self):
        """VOICE-60S: 61 s = 2 minutes x 0.08 plus a connect fee line of 0.05."""
        result = quote(request("VOICE", "VOICE-60S", quantity=61), BOOK)
        assert [(line.description, line.units, line.amount_fen) for line in result.lines] == [
            ("Call, per minute", Decimal(2), 16),
            ("Call, per minute (connect fee)", Decimal(1), 5)]
        assert result.total_fen == 21

    def test_attributes_pick_the_rule(self):
        """Request attributes take part in matching: an international call costs more."""
        assert quote(request("VOICE", "VOICE-6S", quantity=7, called="0044"), BOOK).total_fen == 16
        assert quote(request("VOICE", "VOICE-6S", quantity=7), BOOK).total_fen == 2

    def test_nothing_in_force(self):
        """Before any rule set is in force, a quote is a RatingError."""
        early = attrs.evolve(request("PC2", "PC2-DAILY-ACCOUNTS", days=1),
                             at=at("2026-10-31 23:59"))
        with pytest.raises(RatingError, match="no rule set is in force for product 'PC2'"):
            quote(early, BOOK)

    def test_no_rule(self):
        """An unknown plan of a product with rules is a RatingError."""
        with pytest.raises(RatingError, match="prices product 'PC2' plan 'GOLD'"):
            quote(request("PC2", "GOLD", days=1), BOOK)

    def test_negative(self):
        """Negative quantities cannot be quoted."""
        with pytest.raises(RatingError, match="must not be negative"):
            quote(request("CRM-BASIC", "CRM-DAILY", days=-1), BOOK)
