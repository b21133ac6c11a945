"""Hessian 1 values as Caucho's ``HessianInput`` reads them, one handler per code byte."""

from __future__ import annotations

from typing import Any

from billingcenter.hessian._reader import (
    Reader,
    binary_final,
    date_millis,
    double64,
    false,
    int32,
    long64,
    null,
    put,
    table,
    true,
)
from billingcenter.hessian._text import from_wire
from billingcenter.hessian.values import DecodeError, HessianObject, TypedList, TypedMap


def value1(r: Reader) -> Any:
    """Read one Hessian 1 value."""
    pos = r.pos
    code = r.data[pos]
    r.pos = pos + 1
    return V1[code](r, code)


def _type(r: Reader) -> str:
    """The optional ``t`` type of a list or map ("" when absent)."""
    if r.data[r.pos] != 0x74:
        return ""
    r.pos += 1
    return r.text(r.u16())


def _str_final(r: Reader, code: int) -> Any:
    return r.text(r.u16())


def _str_chunks(r: Reader, code: int) -> Any:
    final = code - 0x20  # 's' -> 'S', 'x' -> 'X'
    parts = [r.utf8(r.u16())]
    while True:
        code = r.byte()
        if code != final and code != final + 0x20:
            raise DecodeError(f"expected a string chunk at byte {r.pos - 1}, got 0x{code:02x}")
        parts.append(r.utf8(r.u16()))
        if code == final:
            return from_wire(b"".join(parts))


def _bin_chunks(r: Reader, code: int) -> Any:
    parts = [r.take(r.u16())]
    while True:
        code = r.byte()
        if code not in (0x42, 0x62):
            raise DecodeError(f"expected a binary chunk at byte {r.pos - 1}, got 0x{code:02x}")
        parts.append(r.take(r.u16()))
        if code == 0x42:
            return b"".join(parts)


def _list(r: Reader, code: int) -> Any:
    type_ = _type(r)
    if r.peek() == 0x6C:  # 'l': a length the reader may use only as a sanity check
        r.pos += 1
        length = r.i32()
        if length != -1:  # python-hessian sends -1, "unknown"
            r.check_count(length, "list")
    r.enter()
    items: list[Any] = []
    result = TypedList(type_, items) if type_ else items
    r.refs.append(result)
    data, codes, append = r.data, V1, items.append
    while (code := data[r.pos]) != 0x7A:
        r.pos += 1
        append(codes[code](r, code))
    r.pos += 1
    r.depth -= 1
    return result


def _map(r: Reader, code: int) -> Any:
    type_ = _type(r)
    r.enter()
    entries: dict[Any, Any] = {}
    result: Any
    if not type_:
        result = entries
    elif type_.startswith("java.util."):
        result = TypedMap(type_, entries)
    else:
        # Hessian 1 writes a Java object as a map typed with its class name.
        result = HessianObject(type_, entries)
    r.refs.append(result)
    is_object = type(result) is HessianObject
    while r.peek() != 0x7A:
        key = value1(r)
        if is_object and type(key) is not str:
            raise DecodeError(f"field name of {type_} is a {type(key).__name__}, not a string")
        put(entries, key, value1(r))
    r.pos += 1
    r.depth -= 1
    return result


def _ref(r: Reader, code: int) -> Any:
    return r.ref(r.i32())


V1 = table(
    (0x42, 0x42, binary_final),
    (0x44, 0x44, double64),
    (0x46, 0x46, false),
    (0x49, 0x49, int32),
    (0x4C, 0x4C, long64),
    (0x4D, 0x4D, _map),
    (0x4E, 0x4E, null),
    (0x52, 0x52, _ref),
    (0x53, 0x53, _str_final),
    (0x54, 0x54, true),
    (0x56, 0x56, _list),
    (0x58, 0x58, _str_final),
    (0x62, 0x62, _bin_chunks),
    (0x64, 0x64, date_millis),
    (0x73, 0x73, _str_chunks),
    (0x78, 0x78, _str_chunks),
)
