"""Tests of billingcenter.intake (pure checks of inbound records)."""

from datetime import UTC, datetime, timedelta

import pytest

from billingcenter.errors import InvalidArgument, UnknownOrder, UnknownProduct
from billingcenter.intake import (
    Limits,
    check_event_against,
    check_order_against,
    check_usage_against,
    validate_account_change,
    validate_event,
    validate_order,
    validate_usage,
)
from billingcenter.model import AccountNumChange, Order, Product, StateEvent, StateKind, Usage

NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
LIMITS = Limits()
ORDER = Order("o-1", "boss", "boss", "SMS-NOTIFY", "SMS-PER-USE", NOW - timedelta(days=3), 0)
PRODUCT = Product("SMS-NOTIFY", "SMS", frozenset({"SMS-PER-USE"}))


def usage(**changes):
    base = dict(op_id="op-1", order_id="o-1", product_code="SMS-NOTIFY", item_code="sms",
                user_id="employee", payer_id="", quantity=1, occurred_at=NOW)
    base.update(changes)
    return Usage(**base)


class TestValidateUsage:
    def test_valid(self):
        """A complete record passes."""
        validate_usage(usage(), NOW, LIMITS)

    @pytest.mark.parametrize("changes, message", [
        (dict(op_id=""), "opId is required"),
        (dict(op_id="x" * 65), "opId is longer"),
        (dict(order_id=" "), "orderId is required"),
        (dict(user_id=""), "userId is required"),
        (dict(quantity=-1), "must not be negative"),
        (dict(quantity=10**13), "is over"),
        (dict(occurred_at=NOW + timedelta(days=2)), "in the future"),
        (dict(occurred_at=datetime(1999, 12, 31, tzinfo=UTC)), "is before 2000-01-01"),
        (dict(attributes={"k" * 129: "v"}), "attribute name is longer"),
    ])
    def test_invalid(self, changes, message):
        """Each malformed field is named in the refusal."""
        with pytest.raises(InvalidArgument, match=message):
            validate_usage(usage(**changes), NOW, LIMITS)

    def test_future_within_tolerance(self):
        """A little clock skew is accepted."""
        validate_usage(usage(occurred_at=NOW + timedelta(hours=23)), NOW, LIMITS)


class TestCheckUsageAgainst:
    def test_payer_resolved(self):
        """The payer of a usage record is the order's payer (mode 6)."""
        assert check_usage_against(usage(), ORDER).payer_id == "boss"

    def test_unknown_order(self):
        """No order, no usage."""
        with pytest.raises(UnknownOrder):
            check_usage_against(usage(), None)

    def test_other_product(self):
        """Usage must be of the order's product."""
        with pytest.raises(UnknownProduct):
            check_usage_against(usage(product_code="VOICE"), ORDER)

    def test_other_payer(self):
        """A caller naming another payer is refused, not guessed at."""
        with pytest.raises(InvalidArgument, match="not the payer"):
            check_usage_against(usage(payer_id="someone"), ORDER)

    def test_before_activation(self):
        """Usage before the order existed is refused."""
        with pytest.raises(InvalidArgument, match="before the order's activation"):
            check_usage_against(usage(occurred_at=NOW - timedelta(days=4)), ORDER)


class TestOrders:
    def test_valid_order(self):
        """A complete order with a catalogue product and plan passes."""
        validate_order(ORDER, NOW, LIMITS)
        check_order_against(ORDER, PRODUCT)

    def test_unknown_product_and_plan(self):
        """Product and plan must be in the catalogue."""
        with pytest.raises(UnknownProduct, match="not in the catalogue"):
            check_order_against(ORDER, None)
        other = Order("o", "p", "u", "SMS-NOTIFY", "GOLD", NOW, 0)
        with pytest.raises(UnknownProduct, match="plan 'GOLD'"):
            check_order_against(other, PRODUCT)

    def test_negative_accounts(self):
        """accountNum cannot be negative."""
        with pytest.raises(InvalidArgument):
            validate_order(Order("o", "p", "u", "X", "", NOW, -1), NOW, LIMITS)


class TestEvents:
    def test_event_checks(self):
        """Events need a known order and a time after its activation."""
        event = StateEvent("e-1", "o-1", StateKind.PAUSED, NOW)
        validate_event(event, NOW, LIMITS)
        check_event_against(event, ORDER)
        with pytest.raises(UnknownOrder):
            check_event_against(event, None)
        early = StateEvent("e-2", "o-1", StateKind.PAUSED, NOW - timedelta(days=5))
        with pytest.raises(InvalidArgument):
            check_event_against(early, ORDER)

    def test_account_change(self):
        """A negative account count is refused."""
        validate_account_change(AccountNumChange("mm", "PC2", 0, NOW), NOW, LIMITS)
        with pytest.raises(InvalidArgument):
            validate_account_change(AccountNumChange("mm", "PC2", -1, NOW), NOW, LIMITS)
