"""The Twisted Hessian client: what it sends, and each way a call can fail."""

from __future__ import annotations

import pytest
from twisted.web import resource, server

from billingcenter.config import Remote
from billingcenter.hessian import Long, decode_call, encode_call
from billingcenter.outbound.client import (
    BadReply,
    CallTimeout,
    HessianClient,
    HttpStatus,
    RemoteFault,
    Unreachable,
)
from billingcenter.outbound.messages import BadMessage, call_arguments
from tests.fakes import FakeAccountSystem, FakeServer
from tests.outbound.support import CREATED_MS, deduction


def _request():
    return call_arguments("chargeAccount", deduction(7).payload)


class TestMessages:
    def test_deduction_request_as_caucho_writes_it(self):
        """longs as Long, the Date as a datetime, primitives first; c 02 00 on the wire."""
        (dto,) = _request()
        assert dto.type == "org.billingcenter.api.DeductionRequest"
        assert list(dto.fields) == ["billId", "amountFen", "deductionId", "payerId",
                                    "billDate", "firstDay", "lastDay", "createdAt"]
        assert type(dto.fields["billId"]) is Long and dto.fields["amountFen"] == 1007
        assert dto.fields["createdAt"].timestamp() * 1000 == CREATED_MS
        body = encode_call("chargeAccount", [dto], "c2")
        assert body.startswith(b"c\x02\x00m\x00\x0dchargeAccountMt\x00\x26"
                               b"org.billingcenter.api.DeductionRequest"
                               b"S\x00\x06billIdL" + (7).to_bytes(8, "big"))
        assert decode_call(body).args[0].fields["deductionId"] == "DED-P7-20260101"

    def test_bad_payload(self):
        """An unknown method or a wrongly typed field is a BadMessage."""
        with pytest.raises(BadMessage):
            call_arguments("refund", {})
        with pytest.raises(BadMessage):
            call_arguments("chargeAccount", {"amountFen": "12"})


@pytest.mark.network
class TestHessianClient:
    @pytest.fixture
    def client(self, rt):
        made = rt.call(lambda: HessianClient(rt.reactor, per_host=2))
        yield made
        rt.call(made.close)

    def _call(self, rt, client, url, timeout=2.0, **kwargs):
        remote = Remote(url=url, timeout=timeout, **kwargs)
        return rt.call(client.call, remote, "chargeAccount", _request())

    def test_reply_value_and_credentials(self, rt, client):
        """A reply's value comes back; HTTP Basic carries the remote's user."""
        fake = FakeAccountSystem(rt.reactor, user="billing", password="pw")
        served = rt.call(lambda: FakeServer(fake).start())
        try:
            assert self._call(rt, client, served.url, user="billing", password="pw") == \
                "ACCEPTED DED-P7-20260101"
            with pytest.raises(HttpStatus) as refused:
                self._call(rt, client, served.url)
            assert refused.value.status == 401
        finally:
            rt.call(served.stop)
        assert [c.user for c in fake.calls] == ["billing"]

    def test_fault(self, rt, client, account):
        """A fault answer is a RemoteFault naming the code and message."""
        account.fake.fail(1)
        with pytest.raises(RemoteFault) as failed:
            self._call(rt, client, account.url)
        assert str(failed.value) == "fault: ServiceException: fake: told to fail"
        assert failed.value.fault.code == "ServiceException"

    def test_timeout(self, rt, client, account):
        """No answer within the timeout is a CallTimeout (the connection is dropped)."""
        account.fake.slow(1.0)
        with pytest.raises(CallTimeout):
            self._call(rt, client, account.url, timeout=0.3)
        assert self._call(rt, client, account.url) == "ACCEPTED DED-P7-20260101"

    def test_refused(self, rt, client, account):
        """Nothing listening is Unreachable."""
        rt.call(account.stop)
        with pytest.raises(Unreachable) as failed:
            self._call(rt, client, account.url)
        assert "ConnectionRefused" in str(failed.value)

    def test_not_hessian(self, rt, client):
        """A 200 answer that is not Hessian is a BadReply."""
        class Junk(resource.Resource):
            isLeaf = True

            def render_POST(self, request):
                return b"<html>hello</html>"

        port = rt.call(lambda: rt.reactor.listenTCP(0, server.Site(Junk()),
                                                    interface="127.0.0.1"))
        try:
            with pytest.raises(BadReply):
                self._call(rt, client, f"http://127.0.0.1:{port.getHost().port}/")
        finally:
            rt.call(port.stopListening)
