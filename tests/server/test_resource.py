"""Tests of billingcenter.resource: the Hessian resource through a real Site, no socket."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone
from twisted.python.failure import Failure

from billingcenter.auth import hash_password
from billingcenter.config import Caller
from billingcenter.hessian import Fault, HessianObject, Long
from billingcenter.hessian.decoder import decode_reply
from billingcenter.hessian.encoder import encode_call
from billingcenter.rating.model import RuleBook
from tests.server.memhttp import NOW, harness, parse_responses, raw_request

API = "org.billingcenter.api."
VERSIONS = ("c1", "c2", "H2")


def order(order_id="o-1", **changes):
    fields = {"orderId": order_id, "payerId": "boss", "userId": "张三😀",
              "productCode": "SMS-NOTIFY",
              "planCode": "SMS-PER-USE", "activatedAt": NOW - timedelta(days=1), "accountNum": 2}
    fields.update(changes)
    return HessianObject(API + "Order", fields)


def service_op(op_id="op-1", **changes):
    fields = {"opId": op_id, "orderId": "o-1", "productCode": "SMS-NOTIFY", "itemCode": "sms",
              "userId": "employee", "payerId": None, "quantity": 1, "occurredAt": NOW,
              "attributes": {"channel": "api"}}
    fields.update(changes)
    return HessianObject(API + "ServiceOp", fields)


def state(event_id="e-1", kind="PAUSED", **changes):
    fields = {"eventId": event_id, "orderId": "o-1", "state": kind, "changedAt": NOW}
    fields.update(changes)
    return HessianObject(API + "OrderStateChange", fields)


def call(h, method, *args, version="H2", headers=()):
    response = h.post(encode_call(method, list(args), version), headers)
    assert response.status == 200, response
    assert response.headers["content-type"] == "application/x-hessian"
    return decode_reply(response.body), response.body


def fault_of(h, method, *args, version="H2"):
    with pytest.raises(Fault) as info:
        call(h, method, *args, version=version)
    return info.value


class TestReplies:
    @pytest.mark.parametrize("version", VERSIONS)
    def test_install_order_answers_a_receipt(self, version):
        """Every call envelope gets a typed Receipt in the reply version Caucho uses."""
        h = harness()
        reply, raw = call(h, "installOrder", order(), version=version)
        assert raw[:3] == (b"r\x01\x00" if version == "c1" else b"H\x02\x00")
        assert reply == HessianObject(API + "Receipt", {
            "key": "o-1", "status": "ACCEPTED", "recordedAt": NOW})
        assert h.ledger.get_order("o-1").user_id == "张三😀"

    @pytest.mark.parametrize("name", ["installOrder__1", "installOrder_Order"])
    def test_caucho_mangled_names(self, name):
        """Overload names (name__N, name_Type) reach the same method."""
        h = harness()
        reply, _ = call(h, name, order())
        assert reply.fields["key"] == "o-1"

    def test_all_intake_methods(self):
        """installOrder, updateOrderState, insertServiceOp and changeAccountNum store facts."""
        h = harness()
        call(h, "installOrder", order())
        assert call(h, "updateOrderState", state())[0].fields["key"] == "e-1"
        assert call(h, "insertServiceOp", service_op())[0].fields["key"] == "op-1"
        assert call(h, "changeAccountNum_string_int_string", "boss", 5, "SMS-NOTIFY")[0] == "1"
        counts = h.ledger.row_counts()
        assert counts["usage_record"] == 1
        assert counts["order_state_event"] == 1
        assert counts["account_num_change"] == 1
        assert h.ledger.get_usage("op-1").payer_id == "boss"

    def test_repeat_answers_the_same(self):
        """A repeat with the same content answers the same bytes and stores nothing."""
        h = harness()
        call(h, "installOrder", order())
        first = call(h, "insertServiceOp", service_op())[1]
        before = h.ledger.row_counts()
        assert call(h, "insertServiceOp", service_op())[1] == first
        assert h.ledger.row_counts() == before

    @pytest.mark.parametrize("method, first, changed", [
        ("installOrder", order(), order(accountNum=9)),
        ("updateOrderState", state(), state(kind="CANCELLED")),
        ("insertServiceOp", service_op(), service_op(quantity=2)),
    ])
    def test_conflicting_repeat(self, method, first, changed):
        """A repeat with other content is DUPLICATE_CONFLICT, kept as an error, nothing changed."""
        h = harness()
        if method != "installOrder":
            call(h, "installOrder", order())
        call(h, method, first)
        before = h.ledger.row_counts()
        fault = fault_of(h, method, changed)
        assert fault.code == "ServiceException"
        assert fault.detail.type == API + "BillingException"
        assert fault.detail.fields["code"] == "DUPLICATE_CONFLICT"
        after = h.ledger.row_counts()
        assert after.pop("error_record") == before.pop("error_record") + 1
        assert after == before

    def test_not_implemented_yet(self):
        """payCallback answers NOT_IMPLEMENTED on a service without payments (memory)."""
        notice = HessianObject(API + "PayNotice", {
            "serial": "s-1", "deductionId": "DED-1", "payerId": "", "amountFen": Long(1),
            "status": "SUCCESS", "paidAt": NOW})
        fault = fault_of(harness(), "payCallback", notice)
        assert fault.detail.fields["code"] == "NOT_IMPLEMENTED"


def price_request(**changes):
    fields = {"payerId": "boss", "productCode": "SMS-NOTIFY", "planCode": "SMS-PER-USE",
              "orderId": None, "quantity": Long(1500), "days": 0, "accountNum": 0, "at": NOW,
              "attributes": {}}
    fields.update(changes)
    return HessianObject(API + "PriceRequest", fields)


class TestGetTotalPrice:
    @pytest.mark.parametrize("version", VERSIONS)
    def test_tiered_quote(self, version):
        """1,500 SMS: 1,000 at 0.05 and 500 at 0.045 = 72.50 yuan, as a typed PriceQuote."""
        reply, _ = call(harness(), "getTotalPrice", price_request(), version=version)
        assert reply.type == API + "PriceQuote"
        assert reply.fields["totalFen"] == 7250
        assert (reply.fields["ruleSet"], reply.fields["ruleSetVersion"]) == (
            "saas-sms-notify", "2026.11.1")
        lines = [(line.fields["units"], line.fields["unitPrice"], line.fields["amountFen"])
                 for line in reply.fields["lines"]]
        assert lines == [(1000, "0.05", 5000), (500, "0.045", 2250)]

    def test_daily_accounts_quote(self):
        """PC2 for 30 days at 5 accounts: 150 account-days at 0.50 = 75 yuan."""
        reply, _ = call(harness(), "getTotalPrice", price_request(
            productCode="PC2", planCode="PC2-DAILY-ACCOUNTS", quantity=0, days=30,
            accountNum=5))
        assert reply.fields["totalFen"] == 7500

    def test_no_rule(self):
        """A product no published rule prices is NO_RULE."""
        fault = fault_of(harness(), "getTotalPrice", price_request(productCode="NOTHING"))
        assert fault.detail.fields["code"] == "NO_RULE"

    def test_no_rules_published(self):
        """With nothing published every quote is NO_RULE."""
        fault = fault_of(harness(rules=RuleBook), "getTotalPrice", price_request())
        assert fault.detail.fields["code"] == "NO_RULE"

    @pytest.mark.parametrize("changes", [{"productCode": None}, {"quantity": Long(-1)},
                                         {"days": -2}, {"at": "today"}])
    def test_invalid_request(self, changes):
        """A malformed request is INVALID_ARGUMENT and stores nothing."""
        h = harness()
        before = h.ledger.row_counts()
        fault = fault_of(h, "getTotalPrice", price_request(**changes))
        assert fault.detail.fields["code"] == "INVALID_ARGUMENT"
        assert h.ledger.row_counts() == before


class TestRefusals:
    @pytest.mark.parametrize("version", VERSIONS)
    def test_unknown_method(self, version):
        """An unknown method is Caucho's NoSuchMethodException fault, in the caller's version."""
        fault = fault_of(harness(), "chargeEverything", 1, version=version)
        assert fault.code == "NoSuchMethodException"
        assert fault.message == "The service has no method named: chargeEverything"

    def test_wrong_argument_count(self):
        """Too few arguments is INVALID_ARGUMENT, not a crash."""
        fault = fault_of(harness(), "changeAccountNum", "boss", 5)
        assert fault.detail.fields["code"] == "INVALID_ARGUMENT"

    @pytest.mark.parametrize("op, code", [
        (service_op(orderId="nope"), "UNKNOWN_ORDER"),
        (service_op(quantity=-1), "INVALID_ARGUMENT"),
        (service_op(occurredAt=None), "INVALID_ARGUMENT"),
        (service_op(occurredAt=NOW + timedelta(days=30)), "INVALID_ARGUMENT"),
        (service_op(productCode="VOICE"), "UNKNOWN_PRODUCT"),
        (order("o-2", productCode="NO-SUCH"), "UNKNOWN_PRODUCT"),
        ("not a dto", "INVALID_ARGUMENT"),
    ])
    def test_invalid_records_are_kept(self, op, code):
        """An invalid record gets its typed code and lands in the error store only."""
        h = harness()
        call(h, "installOrder", order())
        before = h.ledger.row_counts()
        method = "installOrder" if isinstance(op, HessianObject) and op.type.endswith(
            "Order") else "insertServiceOp"
        assert fault_of(h, method, op).detail.fields["code"] == code
        after = h.ledger.row_counts()
        assert after.pop("error_record") == before.pop("error_record") + 1
        assert after == before

    @pytest.mark.parametrize("body", [b"", b"GET / HTTP/1.0", b"\x00\x01\x02", b"{json: 1}"])
    def test_not_hessian_is_400(self, body):
        """Bytes that are not Hessian at all get HTTP 400."""
        assert harness().post(body).status == 400

    @pytest.mark.parametrize("version", VERSIONS)
    def test_malformed_call_is_a_protocol_fault(self, version):
        """A truncated Hessian call is a ProtocolException fault in HTTP 200."""
        body = encode_call("installOrder", [order()], version)[:-5]
        response = harness().post(body)
        assert response.status == 200
        with pytest.raises(Fault) as info:
            decode_reply(response.body)
        assert info.value.code == "ProtocolException"

    def test_depth_limit(self):
        """Nesting deeper than max_depth is refused as a protocol fault."""
        nested = []
        for _ in range(20):
            nested = [nested]
        response = harness(max_depth=10).post(encode_call("installOrder", [nested], "H2"))
        with pytest.raises(Fault, match="ProtocolException|depth"):
            decode_reply(response.body)

    def test_body_limit(self):
        """A body over max_body is HTTP 413 and never decoded."""
        h = harness(max_body=100)
        response = h.post(encode_call("installOrder", [order(userId="x" * 200)], "H2"))
        assert response.status == 413
        assert h.ledger.row_counts()["order_mirror"] == 0

    def test_get_is_405(self):
        """A browser GET is told to POST."""
        assert harness().post(b"", method="GET").status == 405

    def test_other_path_is_404(self):
        """Only /billing serves Hessian."""
        assert harness().post(encode_call("installOrder", [order()]), path="/other").status == 404

    def test_internal_error_is_hidden(self):
        """An unexpected exception is logged and answered as INTERNAL_ERROR without details."""

        class Broken:
            def add_order(self, *args):
                raise RuntimeError("secret table name")

        fault = fault_of(harness(ledger=Broken()), "installOrder", order())
        assert fault.detail.fields["code"] == "INTERNAL_ERROR"
        assert "secret" not in fault.message


def basic(user, password):
    return ("Authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())


class TestAuthentication:
    def make(self):
        callers = (Caller("order", hash_password("pw", iterations=1000),
                          frozenset({"installOrder"})),)
        return harness(callers=callers)

    def test_no_credentials_is_401(self):
        """Without credentials the answer is 401 with a Basic challenge."""
        response = self.make().post(encode_call("installOrder", [order()]))
        assert response.status == 401
        assert response.headers["www-authenticate"] == 'Basic realm="billingcenter"'

    def test_wrong_password_is_401(self):
        """A wrong password is 401 and nothing is stored."""
        h = self.make()
        assert h.post(encode_call("installOrder", [order()]), [basic("order", "x")]).status == 401
        assert h.ledger.row_counts()["order_mirror"] == 0

    def test_allowed_method(self):
        """The right credentials call the caller's methods."""
        h = self.make()
        reply, _ = call(h, "installOrder", order(), headers=[basic("order", "pw")])
        assert reply.fields["key"] == "o-1"

    def test_method_not_allowed(self):
        """A method not listed for the caller is a FORBIDDEN fault."""
        h = self.make()
        with pytest.raises(Fault) as info:
            call(h, "insertServiceOp", service_op(), headers=[basic("order", "pw")])
        assert info.value.detail.fields["code"] == "FORBIDDEN"


class TestConnection:
    def test_keep_alive(self):
        """Two calls on one connection get two answers, in order."""
        h = harness()
        protocol, transport = h.connect()
        protocol.dataReceived(raw_request(encode_call("installOrder", [order("o-1")])))
        protocol.dataReceived(raw_request(encode_call("installOrder", [order("o-2")])))
        replies = [decode_reply(r.body).fields["key"] for r in parse_responses(transport.value())]
        assert replies == ["o-1", "o-2"]
        assert not transport.disconnecting

    def test_client_gone_before_answer(self):
        """When the caller hangs up first, the answer is dropped quietly."""
        pending = []

        def later(f, *args):
            d = Deferred()
            pending.append((d, f, args))
            return d

        h = harness(run=later)
        protocol, transport = h.connect()
        protocol.dataReceived(raw_request(encode_call("installOrder", [order()])))
        protocol.connectionLost(Failure(ConnectionDone()))
        d, f, args = pending.pop()
        d.callback(f(*args))
        assert transport.value() == b""
        assert h.ledger.get_order("o-1") is not None
