"""Encode Hessian values, calls, replies and faults exactly as Caucho 4.0.38 writes them.

Framing, as measured against Caucho's ``HessianSkeleton`` and ``HessianProxy``:

* a ``c 01 00`` call is answered ``r 01 00 <value> z``; a fault is
  ``r 01 00 f "code" .. "message" .. ["detail" ..] z z`` (:func:`reply_version` gives 1);
* ``c 02 00`` and ``H 02 00 C`` calls are answered ``H 02 00 R <value>``; a fault is
  ``H 02 00 F H "code" .. "message" .. ["detail" ..] Z``, and that fault map counts as
  reference 0, so an exception detail is reference 1.

Python values map to Hessian as described in :mod:`billingcenter.hessian.values`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from billingcenter.hessian._buffered import BufferedWriter2
from billingcenter.hessian._text import to_units
from billingcenter.hessian._write1 import Writer1
from billingcenter.hessian._write2 import NeedsBufferModel, Writer2
from billingcenter.hessian._writer import utf16_len_header
from billingcenter.hessian.values import EncodeError

_Body = Callable[[Any], None]

CALL_VERSIONS = ("c1", "c2", "H2")


def reply_version(call_version: str) -> int:
    """The Hessian version Caucho's skeleton answers a call envelope (``Call.version``) with."""
    if call_version not in CALL_VERSIONS:
        raise ValueError(f"unknown call version {call_version!r}")
    return 1 if call_version == "c1" else 2


def encode_value(value: Any, version: int) -> bytes:
    """One value as Caucho's ``HessianOutput`` (1) or ``Hessian2Output`` (2) writes it."""
    if version == 2:
        return _value2(b"", value)
    return _encode(version, lambda w: w.value(value))


def encode_reply(value: Any, version: int) -> bytes:
    """A successful reply carrying ``value``."""
    if version == 2:
        return _value2(b"H\x02\x00R", value)

    def body(w: Any) -> None:
        w.out += b"r\x01\x00"
        w.value(value)
        w.out.append(0x7A)

    return _encode(version, body)


def encode_fault(code: str, message: str, detail: Any = None, version: int = 2) -> bytes:
    """A fault reply, as Caucho's ``writeFault(code, message, detail)`` writes it."""

    def body(w: Any) -> None:
        if version == 1:
            w.out += b"r\x01\x00f"
        else:
            w.out += b"H\x02\x00FH"
            w.nrefs = 1  # Hessian2Output numbers the fault map itself
        w.key_("code")
        w.value(code)
        w.key_("message")
        w.value(message)
        if detail is not None:
            w.key_("detail")
            w.value(detail)
        w.out += b"zz" if version == 1 else b"Z"

    return _encode(version, body)


def encode_call(method: str, args: Sequence[Any], version: str = "H2") -> bytes:
    """A call as ``HessianOutput.call`` ("c1", "c2") or ``Hessian2Output.call`` ("H2") writes it."""
    if version not in CALL_VERSIONS:
        raise ValueError(f"unknown call version {version!r}")
    if not isinstance(method, str):
        raise EncodeError(f"method name must be a string, not {type(method).__name__}")

    def body(w: Any) -> None:
        if version == "H2":
            w.out += b"H\x02\x00C"
            w.str_(method)
            w.int_(len(args))
        else:
            w.out += b"c\x01\x00m" if version == "c1" else b"c\x02\x00m"
            w.out += utf16_len_header(to_units(method))
        for arg in args:
            w.value(arg)
        if version != "H2":
            w.out.append(0x7A)

    return _encode(2 if version == "H2" else 1, body)


def _value2(head: bytes, value: Any) -> bytes:
    """``head`` then one Hessian 2 value: :func:`_encode` without a closure per message."""
    try:
        writer = Writer2()
        writer.out += head
        try:
            writer.value(value)
        except NeedsBufferModel:
            writer = BufferedWriter2()
            writer.out += head
            writer.value(value)
        return bytes(writer.out)
    except RecursionError:
        raise EncodeError("value is nested too deeply to encode") from None


def _encode(version: int, body: _Body) -> bytes:
    try:
        if version == 1:
            writer1 = Writer1()
            body(writer1)
            return bytes(writer1.out)
        if version != 2:
            raise ValueError(f"Hessian version must be 1 or 2, not {version!r}")
        writer2 = Writer2()
        try:
            body(writer2)
        except NeedsBufferModel:
            writer2 = BufferedWriter2()
            body(writer2)
        return bytes(writer2.out)
    except RecursionError:
        raise EncodeError("value is nested too deeply to encode") from None
