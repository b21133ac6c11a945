"""Tests of billingcenter.api.dto (Java DTOs <-> model values)."""

from datetime import UTC, datetime

import pytest

from billingcenter.api import dto
from billingcenter.errors import DuplicateConflict, InvalidArgument
from billingcenter.hessian import HessianObject
from billingcenter.model import Receipt, StateKind

WHEN = datetime(2026, 11, 22, 1, 2, 3, 4000, tzinfo=UTC)


def service_op(**fields):
    base = {"opId": "op-1", "orderId": "o-1", "productCode": "SMS-NOTIFY", "itemCode": "sms",
            "userId": "张三😀", "payerId": None, "quantity": 3, "occurredAt": WHEN,
            "attributes": {"callType": "local"}}
    base.update(fields)
    return HessianObject(dto.SERVICE_OP, base)


class TestInbound:
    def test_usage(self):
        """A ServiceOp object becomes a Usage with nulls as empty text."""
        usage = dto.to_usage(service_op())
        assert usage.user_id == "张三😀"
        assert usage.payer_id == ""
        assert usage.quantity == 3
        assert usage.attributes == (("callType", "local"),)

    def test_plain_map_accepted(self):
        """A caller sending an untyped map (Hessian 1 style) is understood too."""
        assert dto.to_usage(dict(service_op().fields)).op_id == "op-1"

    @pytest.mark.parametrize("fields, message", [
        ({"occurredAt": None}, "occurredAt is required"),
        ({"occurredAt": "yesterday"}, "occurredAt must be a Date"),
        ({"quantity": "3"}, "quantity must be an integer"),
        ({"quantity": True}, "quantity must be an integer"),
        ({"opId": 5}, "opId must be a String"),
        ({"attributes": {"a": 1}}, "attributes must be a Map<String, String>"),
    ])
    def test_wrong_types(self, fields, message):
        """A field of the wrong type is INVALID_ARGUMENT naming the field."""
        with pytest.raises(InvalidArgument, match=message):
            dto.to_usage(service_op(**fields))

    def test_wrong_class(self):
        """An object of another class is refused by name."""
        with pytest.raises(InvalidArgument, match="expected a org.billingcenter.api.ServiceOp"):
            dto.to_usage(HessianObject(dto.ORDER, {}))
        with pytest.raises(InvalidArgument, match="got a str"):
            dto.to_usage("op-1")

    def test_state_names(self):
        """State names are case-insensitive; unknown ones list the allowed ones."""
        change = HessianObject(dto.ORDER_STATE_CHANGE, {
            "eventId": "e", "orderId": "o", "state": "paused", "changedAt": WHEN})
        assert dto.to_state_event(change).kind is StateKind.PAUSED
        change.fields["state"] = "FROZEN"
        with pytest.raises(InvalidArgument, match="ACTIVE, PAUSED, RESUMED, CANCELLED, EXPIRED"):
            dto.to_state_event(change)

    def test_account_change_int_range(self):
        """currentNum must fit a Java int."""
        assert dto.to_account_change("mm", 5, "PC2", WHEN).count == 5
        with pytest.raises(InvalidArgument):
            dto.to_account_change("mm", 2**31, "PC2", WHEN)
        with pytest.raises(InvalidArgument):
            dto.to_account_change(None, 1, "PC2", WHEN)

    def test_key_of(self):
        """The caller key is recovered from a DTO that could not be read."""
        assert dto.key_of(service_op(quantity="x"), "opId") == "op-1"
        assert dto.key_of("junk", "opId") == ""


class TestOutbound:
    def test_receipt(self):
        """A receipt goes out as the Java Receipt class."""
        wire = dto.from_receipt(Receipt("op-1", "ACCEPTED", WHEN))
        assert wire == HessianObject(dto.RECEIPT, {
            "key": "op-1", "status": "ACCEPTED", "recordedAt": WHEN})

    def test_exception(self):
        """A domain error goes out as a BillingException with its code."""
        detail = dto.exception_detail(DuplicateConflict("opId op-1 was sent with other content"))
        assert detail.type == "org.billingcenter.api.BillingException"
        assert detail.fields["code"] == "DUPLICATE_CONFLICT"
        assert detail.fields["detailMessage"] == "opId op-1 was sent with other content"
