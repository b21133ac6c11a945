"""Decode Hessian calls, replies and single values from bytes.

Accepts every call envelope Caucho's ``HessianProxyFactory`` (4.0.38) sends:

* ``c 01 00`` -- Hessian 1 call (``setHessian2Reply(false)``),
* ``c 02 00`` -- Hessian 1 call body asking for a Hessian 2 reply (the factory's default),
* ``H 02 00 C`` -- Hessian 2 call (``setHessian2Request(true)``),

and a bare Hessian 2 ``C`` call. Anything malformed, truncated, followed by trailing bytes,
nested deeper than ``max_depth`` or declaring lengths the message cannot hold raises
:class:`DecodeError`; no other exception escapes.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any, TypeVar

from billingcenter.hessian._read1 import value1
from billingcenter.hessian._read2 import int2, string2, value2
from billingcenter.hessian._reader import Reader
from billingcenter.hessian.values import Call, DecodeError, Fault

DEFAULT_MAX_DEPTH = 64

_T = TypeVar("_T")
_FAULT = object()


def decode_value(data: bytes, version: int, *, max_depth: int = DEFAULT_MAX_DEPTH) -> Any:
    """Decode ``data`` holding exactly one Hessian ``version`` (1 or 2) value."""
    if version not in (1, 2):
        raise ValueError(f"Hessian version must be 1 or 2, not {version!r}")

    def body(r: Reader) -> Any:
        value = value2(r) if version == 2 else value1(r)
        r.finish()
        return value

    return _run(data, max_depth, body)


def decode_call(data: bytes, *, max_depth: int = DEFAULT_MAX_DEPTH) -> Call:
    """Decode a complete call message; ``Call.version`` says which envelope was used."""
    return _run(data, max_depth, _call)


def decode_reply(data: bytes, *, max_depth: int = DEFAULT_MAX_DEPTH) -> Any:
    """Decode a reply (``r 01 00 ... z`` or ``H 02 00 R``) and return its value.

    A fault reply (``f`` in Hessian 1, ``F`` in Hessian 2) is raised as :class:`Fault`.
    """
    kind, payload = _run(data, max_depth, _reply)
    if kind is _FAULT:
        raise _fault(payload)
    return payload


def _run(data: bytes, max_depth: int, body: Callable[[Reader], _T]) -> _T:
    reader = Reader(bytes(data), max_depth)
    try:
        return body(reader)
    except DecodeError:
        raise
    except (IndexError, struct.error):
        raise DecodeError(f"truncated Hessian message ({reader.end} bytes)") from None
    except RecursionError:
        raise DecodeError("Hessian message is nested too deeply") from None
    except Exception as exc:  # the contract: callers only ever see DecodeError
        raise DecodeError(f"malformed Hessian message: {exc}") from exc


def _call(r: Reader) -> Call:
    if r.data.startswith(b"H\x02\x00C"):  # the usual envelope, without reading it bytewise
        r.pos = 4
        return _call2(r)
    code = r.byte()
    if code == 0x63:  # 'c' major minor
        major = r.byte()
        r.byte()
        return _call1(r, "c2" if major >= 2 else "c1")
    if code == 0x48:  # 'H' 2 0 'C'
        _version2(r)
        code = r.byte()
        if code != 0x43:
            raise DecodeError(f"expected 'C' after the Hessian 2 header, got 0x{code:02x}")
        return _call2(r)
    if code == 0x43:
        return _call2(r)
    raise DecodeError(f"not a Hessian call: starts with 0x{code:02x}")


def _version2(r: Reader) -> None:
    major, minor = r.byte(), r.byte()
    if major != 2:
        raise DecodeError(f"unsupported Hessian version {major}.{minor}")


def _call1(r: Reader, version: str) -> Call:
    headers: dict[str, Any] = {}
    while r.peek() == 0x48:  # 'H' name value
        r.pos += 1
        name = r.text(r.u16())
        headers[name] = value1(r)
    code = r.byte()
    if code != 0x6D:
        raise DecodeError(f"expected 'm' (method) at byte {r.pos - 1}, got 0x{code:02x}")
    method = r.text(r.u16())
    args = []
    while r.peek() != 0x7A:
        args.append(value1(r))
    r.pos += 1
    r.finish()
    return Call(method, tuple(args), headers, version)


def _call2(r: Reader) -> Call:
    method = string2(r)
    count = int2(r)
    r.check_count(count, "argument")
    args = (value2(r),) if count == 1 else tuple([value2(r) for _ in range(count)])
    r.finish()
    return Call(method, args, {}, "H2")


def _reply(r: Reader) -> tuple[object, Any]:
    code = r.byte()
    if code == 0x72:  # 'r' 1 0
        major, minor = r.byte(), r.byte()
        if major != 1:
            raise DecodeError(f"unsupported Hessian reply version {major}.{minor}")
        return _reply1(r)
    if code == 0x48:  # 'H' 2 0
        _version2(r)
        code = r.byte()
    if code == 0x52:  # 'R' value
        value = value2(r)
        r.finish()
        return None, value
    if code == 0x46:  # 'F' map
        fault = value2(r)
        r.finish()
        if type(fault) is not dict:
            raise DecodeError("a Hessian 2 fault must be an untyped map")
        return _FAULT, fault
    raise DecodeError(f"not a Hessian reply: 0x{code:02x} at byte {r.pos - 1}")


def _reply1(r: Reader) -> tuple[object, Any]:
    while r.peek() == 0x48:  # headers carry nothing we use
        r.pos += 1
        r.text(r.u16())
        value1(r)
    if r.peek() == 0x66:  # 'f' (key value)* 'z'
        r.pos += 1
        fault: dict[Any, Any] = {}
        while r.peek() != 0x7A:
            key = value1(r)
            fault[key] = value1(r)
        r.pos += 1
        kind: object = _FAULT
        payload: Any = fault
    else:
        kind, payload = None, value1(r)
    code = r.byte()
    if code != 0x7A:
        raise DecodeError(f"expected 'z' closing the reply, got 0x{code:02x}")
    r.finish()
    return kind, payload


def _fault(fields: dict[Any, Any]) -> Fault:
    code, message = fields.get("code"), fields.get("message")
    for name, value in (("code", code), ("message", message)):
        if value is not None and type(value) is not str:
            raise DecodeError(f"fault {name} is a {type(value).__name__}, not a string")
    return Fault(code or "", message or "", fields.get("detail"))
