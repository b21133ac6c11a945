"""Interop with the callers that exist: Caucho's Java proxy and python-hessian.

The Java half runs ``tests/java/interop/InteropClient.java`` (a Caucho
``HessianProxyFactory`` proxy of ``org.billingcenter.api.BillingService``) against the real
server in every proxy mode, with and without authentication.  The same client is first run
against Caucho's own ``HessianSkeleton`` (``ReferenceServer.java``), which proves that what
the client expects (typed DTOs, ``BillingException`` codes, the unknown-method fault, the
401) is what a real ``HessianServlet`` does.

The Python half calls the server with python-hessian's ``HessianProxy`` (``c 01 00`` and
``c 02 00`` calls; it cannot send ``H 02 00 C``), sending DTOs as typed objects.
"""

from __future__ import annotations

import base64
import http.client
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest

from tests.support import unavailable

MODES = ("default", "hessian2", "overload", "hessian2+overload")

# Every check InteropClient's full scenario prints; a run that omits one is a failure too.
FULL_CHECKS = (
    "installOrder", "installOrder.repeat", "installOrder.conflict",
    "installOrder.unknownProduct", "installOrder.unknownPlan", "installOrder.sms",
    "updateOrderState.paused", "updateOrderState.resumed", "updateOrderState.repeat",
    "updateOrderState.conflict", "updateOrderState.unknownOrder", "updateOrderState.badState",
    "insertServiceOp", "insertServiceOp.repeat", "insertServiceOp.conflict",
    "insertServiceOp.explicitPayer", "insertServiceOp.otherPayer",
    "insertServiceOp.unknownOrder",
    "changeAccountNum", "changeAccountNum.repeat", "changeAccountNum.unknownOrder",
    "changeAccountNum.negative",
    "getTotalPrice", "payCallback", "payCallback.unknownDeduction", "unknownMethod", "latency",
)


def assert_all_ok(run, expected, server=None):
    """Every line OK, every expected check present, exit 0; else show everything."""
    report = run.report() + ("\n" + server.logs() if server is not None else "")
    lines = [line for line in run.stdout.splitlines() if line and not line.startswith("#")]
    failed = [line for line in lines if not line.startswith("OK ")]
    assert not failed, "checks failed:\n" + "\n".join(failed) + "\n\n" + report
    missing = [name for name in expected if name not in run.checks]
    assert not missing, f"checks missing: {missing}\n\n{report}"
    assert run.returncode == 0, report


# ---------------------------------------------------------------------------- Java


@pytest.mark.java
@pytest.mark.network
@pytest.mark.parametrize("mode", ("default", "hessian2", "overload"))
def test_client_expectations_hold_against_caucho_skeleton(java_kit, reference_server, mode,
                                                          callers, run_prefix):
    run = java_kit.run_client(reference_server.url, run_prefix, mode=mode,
                              credentials=callers["order-system"])
    assert_all_ok(run, FULL_CHECKS)


@pytest.mark.java
@pytest.mark.network
def test_caucho_skeleton_wrong_password_is_401_in_java(java_kit, reference_server, callers,
                                                       run_prefix):
    run = java_kit.run_client(reference_server.url, run_prefix, scenario="unauthorized",
                              credentials=(callers["order-system"][0], "wrong"))
    assert_all_ok(run, ("unauthorized",))


@pytest.mark.java
@pytest.mark.network
@pytest.mark.parametrize("mode", MODES)
def test_java_client_every_mode(java_kit, open_server, mode, run_prefix):
    run = java_kit.run_client(open_server.url, run_prefix, mode=mode)
    assert_all_ok(run, FULL_CHECKS, open_server)


@pytest.mark.java
@pytest.mark.network
def test_java_client_authenticated(java_kit, auth_server, callers, run_prefix):
    run = java_kit.run_client(auth_server.url, run_prefix, mode="hessian2",
                              credentials=callers["order-system"])
    assert_all_ok(run, FULL_CHECKS, auth_server)


@pytest.mark.java
@pytest.mark.network
@pytest.mark.parametrize("wrong", ("password", "user"))
def test_java_client_wrong_credentials_get_401(java_kit, auth_server, callers, wrong,
                                               run_prefix):
    user, password = callers["order-system"]
    credentials = (user, "wrong") if wrong == "password" else ("nobody", password)
    run = java_kit.run_client(auth_server.url, run_prefix, scenario="unauthorized",
                              credentials=credentials)
    assert_all_ok(run, ("unauthorized",), auth_server)


@pytest.mark.java
@pytest.mark.network
def test_java_client_method_not_allowed_is_forbidden(java_kit, auth_server, callers,
                                                     run_prefix):
    run = java_kit.run_client(auth_server.url, run_prefix, scenario="forbidden",
                              credentials=callers["reporting"])
    assert_all_ok(run, ("forbidden",), auth_server)


# ---------------------------------------------------------------------------- HTTP 401


def _post(url: str, body: bytes, authorization: str | None) -> http.client.HTTPResponse:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    headers = {"Content-Type": "application/x-hessian"}
    if authorization is not None:
        headers["Authorization"] = authorization
    conn.request("POST", parts.path, body=body, headers=headers)
    response = conn.getresponse()
    response.read()
    conn.close()
    return response


# changeAccountNum("x", 1, "PC2") as Caucho's default proxy sends it.
_CALL = b"c\x02\x00m\x00\x10changeAccountNumS\x00\x01xI\x00\x00\x00\x01S\x00\x03PC2z"


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


@pytest.mark.network
@pytest.mark.parametrize("kind", ("none", "wrong-password", "unknown-user", "malformed"))
def test_bad_credentials_are_http_401(auth_server, callers, kind):
    user, password = callers["order-system"]
    authorization = {
        "none": None,
        "wrong-password": _basic(user, "wrong"),
        "unknown-user": _basic("nobody", password),
        "malformed": "Basic !!",
    }[kind]
    response = _post(auth_server.url, _CALL, authorization)
    assert response.status == 401, auth_server.logs()
    assert response.getheader("WWW-Authenticate", "").lower().startswith("basic")


@pytest.mark.network
def test_good_credentials_pass(auth_server, callers):
    response = _post(auth_server.url, _CALL, _basic(*callers["order-system"]))
    assert response.status == 200, auth_server.logs()


# ---------------------------------------------------------------------------- python-hessian


@pytest.fixture(scope="module")
def pyhessian():
    try:
        import pyhessian.client
        import pyhessian.data_types
        import pyhessian.protocol
    except ImportError:
        unavailable("python-hessian (pyhessian) is not installed: pip install -e '.[test]'")
    return pyhessian


def _type_name(value) -> str:
    return f"{type(value).__module__}.{type(value).__name__}"


@pytest.mark.network
@pytest.mark.parametrize("version", (1, 2), ids=["c1", "c2"])
def test_python_hessian_client(pyhessian, open_server, version, run_prefix):
    from pyhessian.client import HessianProxy
    from pyhessian.data_types import long
    from pyhessian.protocol import Fault, object_factory

    def call(method, *args):
        # A fresh proxy per call: python-hessian 1.2.0 caches one Parser per proxy and the
        # parser keeps the version of the first reply, so a second Hessian 2 reply on the
        # same proxy fails with "Invalid Hessian message marker: b'H'".
        return getattr(HessianProxy(open_server.url, version=version, timeout=30), method)(*args)

    def dto(name, **fields):
        return object_factory("org.billingcenter.api." + name, **fields)

    # python-hessian sends dates with second precision and reads them back naive (UTC).
    activated = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    payer, order_id = f"{run_prefix}-payer", f"{run_prefix}-order"

    def order(user_id="张三😀"):
        return dto("Order", orderId=order_id, payerId=payer, userId=user_id,
                   productCode="SMS-NOTIFY", planCode="SMS-PER-USE", activatedAt=activated,
                   accountNum=2)

    receipt = call("installOrder", order())
    assert _type_name(receipt) == "org.billingcenter.api.Receipt", open_server.logs()
    assert receipt.key == order_id
    assert receipt.status
    assert isinstance(receipt.recordedAt, datetime)

    again = call("installOrder", order())
    assert (again.key, again.status, again.recordedAt) == (
        receipt.key, receipt.status, receipt.recordedAt)

    with pytest.raises(Fault) as conflict:
        call("installOrder", order(user_id="李四"))
    assert conflict.value.code == "ServiceException"
    assert _type_name(conflict.value.detail) == "org.billingcenter.api.BillingException"
    assert conflict.value.detail.code == "DUPLICATE_CONFLICT"

    op_id = f"{run_prefix}-op-😀"

    def op(quantity=7):
        return dto("ServiceOp", opId=op_id, orderId=order_id, productCode="SMS-NOTIFY",
                   itemCode="SMS", userId="员工😀", payerId="", quantity=long(quantity),
                   occurredAt=activated + timedelta(minutes=30),
                   attributes={"channel": "app", "备注": "测试😀"})

    op_receipt = call("insertServiceOp", op())
    assert _type_name(op_receipt) == "org.billingcenter.api.Receipt"
    assert op_receipt.key == op_id  # non-BMP text survives both directions
    op_again = call("insertServiceOp", op())
    assert op_again.recordedAt == op_receipt.recordedAt
    with pytest.raises(Fault) as op_conflict:
        call("insertServiceOp", op(quantity=8))
    assert op_conflict.value.detail.code == "DUPLICATE_CONFLICT"

    assert call("changeAccountNum", payer, 4, "SMS-NOTIFY") == "1"
    assert call("changeAccountNum", payer, 4, "SMS-NOTIFY") == "1"

    with pytest.raises(Fault) as unknown:
        call("changeAccountNum", f"{run_prefix}-nobody", 1, "SMS-NOTIFY")
    assert unknown.value.detail.code == "UNKNOWN_ORDER"
    assert unknown.value.message

    with pytest.raises(Fault) as no_method:
        call("noSuchMethodForInterop", "x")
    assert no_method.value.code == "NoSuchMethodException"
    assert "noSuchMethodForInterop" in no_method.value.message
