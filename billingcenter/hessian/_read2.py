"""Hessian 2 values as Caucho's ``Hessian2Input`` reads them, one handler per code byte."""

from __future__ import annotations

from typing import Any

from billingcenter.hessian._classdefs import PARSED
from billingcenter.hessian._reader import (
    I32,
    Reader,
    binary_final,
    date_from_millis,
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


def value2(r: Reader) -> Any:
    """Read one Hessian 2 value."""
    pos = r.pos
    code = r.data[pos]
    r.pos = pos + 1
    return V2[code](r, code)


def int2(r: Reader) -> int:
    """Read a value that must be an integer (a length or an index)."""
    value = value2(r)
    if type(value) is not int:
        raise DecodeError(f"expected an int before byte {r.pos}, got {type(value).__name__}")
    return value


def string2(r: Reader) -> str:
    """Read a value that must be a string."""
    value = value2(r)
    if type(value) is not str:
        raise DecodeError(f"expected a string before byte {r.pos}, got {type(value).__name__}")
    return value


def _type(r: Reader) -> str:
    """A list or map type: a new type name, or the index of one seen before."""
    value = value2(r)
    if type(value) is str:
        r.types.append(value)
        return value
    if type(value) is int:
        if 0 <= value < len(r.types):
            return r.types[value]
        raise DecodeError(f"type reference {value} is undefined")
    raise DecodeError(f"expected a type before byte {r.pos}")


# The container readers inline value2: their loops are the decoder's hot path.


def _fixed_list(r: Reader, n: int, type_: str | None) -> Any:
    r.check_count(n, "list")
    r.enter()
    items: list[Any] = []
    result = TypedList(type_, items) if type_ else items
    r.refs.append(result)
    data, codes, append = r.data, V2, items.append
    for _ in range(n):
        pos = r.pos
        code = data[pos]
        r.pos = pos + 1
        append(codes[code](r, code))
    r.depth -= 1
    return result


def _open_list(r: Reader, type_: str | None) -> Any:
    r.enter()
    items: list[Any] = []
    result = TypedList(type_, items) if type_ else items
    r.refs.append(result)
    data, codes, append = r.data, V2, items.append
    while (code := data[r.pos]) != 0x5A:
        r.pos += 1
        append(codes[code](r, code))
    r.pos += 1
    r.depth -= 1
    return result


def _map(r: Reader, type_: str | None) -> Any:
    r.enter()
    entries: dict[Any, Any] = {}
    result = TypedMap(type_, entries) if type_ else entries
    r.refs.append(result)
    data, codes = r.data, V2
    while (code := data[r.pos]) != 0x5A:
        r.pos += 1
        key = codes[code](r, code)
        pos = r.pos
        code = data[pos]
        r.pos = pos + 1
        value = codes[code](r, code)
        try:
            entries[key] = value
        except TypeError:
            put(entries, key, value)  # raises the DecodeError
    r.pos += 1
    r.depth -= 1
    return result


def _instance(r: Reader, index: int) -> HessianObject:
    if not 0 <= index < len(r.classes):
        raise DecodeError(f"object refers to undefined class definition {index}")
    type_, names = r.classes[index]
    depth = r.depth + 1  # r.enter() inlined
    if depth > r.max_depth:
        r.enter()
    r.depth = depth
    fields: dict[str, Any] = {}
    obj = HessianObject(type_, fields)
    r.refs.append(obj)
    data, codes = r.data, V2
    for name in names:
        pos = r.pos
        code = data[pos]
        if code < 0x20:  # _str_direct inlined: short ASCII strings fill most DTO fields
            stop = pos + 1 + code
            raw = data[pos + 1 : stop]
            if len(raw) == code and raw.isascii():
                r.pos = stop
                fields[name] = raw.decode("ascii")
                continue
        r.pos = pos + 1
        fields[name] = codes[code](r, code)
    r.depth -= 1
    return obj


# ---------------------------------------------------------------------- numbers and dates


def _int_direct(r: Reader, code: int) -> Any:
    return code - 0x90


def _int_byte(r: Reader, code: int) -> Any:
    return ((code - 0xC8) << 8) + r.byte()


def _int_short(r: Reader, code: int) -> Any:
    pos = r.pos
    r.pos = pos + 2
    data = r.data
    return ((code - 0xD4) << 16) + (data[pos] << 8) + data[pos + 1]


def _long_direct(r: Reader, code: int) -> Any:
    return code - 0xE0


def _long_byte(r: Reader, code: int) -> Any:
    return ((code - 0xF8) << 8) + r.byte()


def _long_short(r: Reader, code: int) -> Any:
    pos = r.pos
    r.pos = pos + 2
    data = r.data
    return ((code - 0x3C) << 16) + (data[pos] << 8) + data[pos + 1]


def _double_zero(r: Reader, code: int) -> Any:
    return 0.0


def _double_one(r: Reader, code: int) -> Any:
    return 1.0


def _double_byte(r: Reader, code: int) -> Any:
    b = r.byte()
    return float(b - 0x100 if b > 0x7F else b)


def _double_short(r: Reader, code: int) -> Any:
    pos = r.pos
    r.pos = pos + 2
    v = (r.data[pos] << 8) + r.data[pos + 1]
    return float(v - 0x10000 if v > 0x7FFF else v)


def _double_mill(r: Reader, code: int) -> Any:
    # Caucho's 0x5f is an int count of thousandths, not the spec's 32-bit float.
    return 0.001 * r.i32()


def _date_minutes(r: Reader, code: int) -> Any:
    pos = r.pos
    r.pos = pos + 4
    return date_from_millis(I32(r.data, pos)[0] * 60000)


# ---------------------------------------------------------------------- strings and binary


def _str_direct(r: Reader, code: int) -> Any:
    pos = r.pos
    raw = r.data[pos : pos + code]
    if len(raw) == code and raw.isascii():  # r.text inlined for the commonest string
        r.pos = pos + code
        return raw.decode("ascii")
    return r.text(code)


def _str_short(r: Reader, code: int) -> Any:
    return r.text(((code - 0x30) << 8) + r.byte())


def _str_final(r: Reader, code: int) -> Any:
    return r.text(r.u16())


def _str_chunks(r: Reader, code: int) -> Any:
    parts = [r.utf8(r.u16())]
    while True:
        code = r.byte()
        if code == 0x52:
            parts.append(r.utf8(r.u16()))
            continue
        if code == 0x53:
            parts.append(r.utf8(r.u16()))
        elif code <= 0x1F:
            parts.append(r.utf8(code))
        elif 0x30 <= code <= 0x33:
            parts.append(r.utf8(((code - 0x30) << 8) + r.byte()))
        else:
            raise DecodeError(f"expected a string chunk at byte {r.pos - 1}, got 0x{code:02x}")
        # Joined before decoding: a surrogate pair may straddle two chunks.
        return from_wire(b"".join(parts))


def _bin_direct(r: Reader, code: int) -> Any:
    return r.take(code - 0x20)


def _bin_short(r: Reader, code: int) -> Any:
    return r.take(((code - 0x34) << 8) + r.byte())


def _bin_chunks(r: Reader, code: int) -> Any:
    parts = [r.take(r.u16())]
    while True:
        code = r.byte()
        if code == 0x41:
            parts.append(r.take(r.u16()))
            continue
        if code == 0x42:
            parts.append(r.take(r.u16()))
        elif 0x20 <= code <= 0x2F:
            parts.append(r.take(code - 0x20))
        elif 0x34 <= code <= 0x37:
            parts.append(r.take(((code - 0x34) << 8) + r.byte()))
        else:
            raise DecodeError(f"expected a binary chunk at byte {r.pos - 1}, got 0x{code:02x}")
        return b"".join(parts)


# ---------------------------------------------------------------------- containers


def _list_typed_fixed(r: Reader, code: int) -> Any:
    type_ = _type(r)
    return _fixed_list(r, int2(r), type_)


def _list_untyped_fixed(r: Reader, code: int) -> Any:
    return _fixed_list(r, int2(r), None)


def _list_typed_direct(r: Reader, code: int) -> Any:
    return _fixed_list(r, code - 0x70, _type(r))


def _list_untyped_direct(r: Reader, code: int) -> Any:
    return _fixed_list(r, code - 0x78, None)


def _list_typed_open(r: Reader, code: int) -> Any:
    return _open_list(r, _type(r))


def _list_untyped_open(r: Reader, code: int) -> Any:
    return _open_list(r, None)


def _map_untyped(r: Reader, code: int) -> Any:
    return _map(r, None)


def _map_typed(r: Reader, code: int) -> Any:
    return _map(r, _type(r))


def _class_def(r: Reader, code: int) -> Any:
    # Definitions precede the value that uses them; loop rather than recurse over runs.
    classes, data = r.classes, r.data
    while code == 0x43:
        type_ = string2(r)
        start = r.pos
        for raw, known in PARSED.entries.get(type_, ()):
            if data.startswith(raw, start):  # the very bytes parsed before: same names
                r.pos = start + len(raw)
                names = known
                break
        else:
            defined = len(classes)
            count = int2(r)
            r.check_count(count, "field")
            names = tuple([string2(r) for _ in range(count)])
            if len(classes) == defined:  # no definition nested in the names: replayable
                PARSED.remember(type_, data[start : r.pos], names)
        classes.append((type_, names))
        code = r.byte()
    return V2[code](r, code)


def _object_direct(r: Reader, code: int) -> Any:
    return _instance(r, code - 0x60)


def _object(r: Reader, code: int) -> Any:
    return _instance(r, int2(r))


def _ref(r: Reader, code: int) -> Any:
    return r.ref(int2(r))


V2 = table(
    (0x00, 0x1F, _str_direct),
    (0x20, 0x2F, _bin_direct),
    (0x30, 0x33, _str_short),
    (0x34, 0x37, _bin_short),
    (0x38, 0x3F, _long_short),
    (0x41, 0x41, _bin_chunks),
    (0x42, 0x42, binary_final),
    (0x43, 0x43, _class_def),
    (0x44, 0x44, double64),
    (0x46, 0x46, false),
    (0x48, 0x48, _map_untyped),
    (0x49, 0x49, int32),
    (0x4A, 0x4A, date_millis),
    (0x4B, 0x4B, _date_minutes),
    (0x4C, 0x4C, long64),
    (0x4D, 0x4D, _map_typed),
    (0x4E, 0x4E, null),
    (0x4F, 0x4F, _object),
    (0x51, 0x51, _ref),
    (0x52, 0x52, _str_chunks),
    (0x53, 0x53, _str_final),
    (0x54, 0x54, true),
    (0x55, 0x55, _list_typed_open),
    (0x56, 0x56, _list_typed_fixed),
    (0x57, 0x57, _list_untyped_open),
    (0x58, 0x58, _list_untyped_fixed),
    (0x59, 0x59, int32),
    (0x5B, 0x5B, _double_zero),
    (0x5C, 0x5C, _double_one),
    (0x5D, 0x5D, _double_byte),
    (0x5E, 0x5E, _double_short),
    (0x5F, 0x5F, _double_mill),
    (0x60, 0x6F, _object_direct),
    (0x70, 0x77, _list_typed_direct),
    (0x78, 0x7F, _list_untyped_direct),
    (0x80, 0xBF, _int_direct),
    (0xC0, 0xCF, _int_byte),
    (0xD0, 0xD7, _int_short),
    (0xD8, 0xEF, _long_direct),
    (0xF0, 0xFF, _long_byte),
)
