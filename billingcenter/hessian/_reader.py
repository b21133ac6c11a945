"""Hessian 1 and 2 value readers over one bytes buffer, driven by 256-entry dispatch tables.

The reader never trusts a declared length: every count is checked against the bytes that
are left before anything is read or allocated. Running off the end shows up as
``IndexError`` or ``struct.error``, which :mod:`billingcenter.hessian.decoder` turns into
:class:`DecodeError` in one place instead of checking before every byte.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from billingcenter.hessian._text import from_wire
from billingcenter.hessian.values import DecodeError, HessianObject, TypedList, TypedMap

_U16 = struct.Struct(">H").unpack_from
_I32 = struct.Struct(">i").unpack_from
_I64 = struct.Struct(">q").unpack_from
_F64 = struct.Struct(">d").unpack_from

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CONTINUATION = bytes(range(0x80, 0xC0))
_FOUR_BYTE_LEADS = bytes(range(0xF0, 0xF8))

Handler = Callable[["Reader", int], Any]


def _date(millis: int) -> datetime:
    try:
        return _EPOCH + timedelta(milliseconds=millis)
    except OverflowError:
        raise DecodeError(f"date {millis} ms is outside Python's datetime range") from None


def _units_in(piece: bytes) -> int:
    """UTF-16 units encoded by the characters that start inside ``piece``."""
    units = len(piece.translate(None, _CONTINUATION))
    if piece and max(piece) >= 0xF0:
        units += len(piece) - len(piece.translate(None, _FOUR_BYTE_LEADS))
    return units


def _char_end(data: bytes, stop: int, floor: int) -> int:
    """Where the character cut by position ``stop`` really ends (at least ``stop``)."""
    i = stop - 1
    while i > floor and 0x80 <= data[i] < 0xC0:
        i -= 1
    lead = data[i]
    size = 1 if lead < 0xC0 else 2 if lead < 0xE0 else 3 if lead < 0xF0 else 4
    return max(stop, i + size)


class Reader:
    """Cursor over a Hessian message with the per-message reference and type tables."""

    __slots__ = ("data", "pos", "end", "refs", "classes", "types", "depth", "max_depth")

    def __init__(self, data: bytes, max_depth: int) -> None:
        self.data = data
        self.pos = 0
        self.end = len(data)
        self.refs: list[Any] = []
        self.classes: list[tuple[str, tuple[str, ...]]] = []
        self.types: list[str] = []
        self.depth = 0
        self.max_depth = max_depth

    # ------------------------------------------------------------------ bytes

    def byte(self) -> int:
        """Consume one byte."""
        pos = self.pos
        self.pos = pos + 1
        return self.data[pos]

    def peek(self) -> int:
        """The next byte, not consumed."""
        return self.data[self.pos]

    def u16(self) -> int:
        """Consume an unsigned big-endian 16-bit length."""
        pos = self.pos
        self.pos = pos + 2
        return int(_U16(self.data, pos)[0])

    def i32(self) -> int:
        """Consume a signed big-endian 32-bit integer."""
        pos = self.pos
        self.pos = pos + 4
        return int(_I32(self.data, pos)[0])

    def take(self, n: int) -> bytes:
        """Consume ``n`` raw bytes."""
        pos = self.pos
        if n > self.end - pos:
            raise DecodeError(f"length {n} at byte {pos} exceeds the message")
        self.pos = pos + n
        return self.data[pos : pos + n]

    def check_count(self, n: int, what: str) -> None:
        """Reject a declared element count that the remaining bytes cannot hold."""
        if n < 0 or n > self.end - self.pos:
            raise DecodeError(f"{what} count {n} at byte {self.pos} exceeds the message")

    def finish(self) -> None:
        """Require that the whole message was consumed."""
        if self.pos != self.end:
            raise DecodeError(f"{self.end - self.pos} trailing bytes after the message")

    def enter(self) -> None:
        """Count one more level of list, map or object nesting."""
        depth = self.depth + 1
        if depth > self.max_depth:
            raise DecodeError(f"nesting deeper than max_depth={self.max_depth}")
        self.depth = depth

    # ------------------------------------------------------------------ text

    def utf8(self, n: int) -> bytes:
        """Consume and return the UTF-8 bytes that carry ``n`` UTF-16 units."""
        data = self.data
        start = pos = self.pos
        end = self.end
        if n > end - start:
            raise DecodeError(f"string length {n} at byte {start} exceeds the message")
        units = 0
        while units < n:
            stop = pos + (n - units)
            if stop > end:
                raise DecodeError(f"string at byte {start} runs past the message")
            units += _units_in(data[pos:stop])
            pos = _char_end(data, stop, pos)
        if units != n or pos > end:
            raise DecodeError(f"string at byte {start} does not end on a character")
        self.pos = pos
        return data[start:pos]

    def text(self, n: int) -> str:
        """Consume a string of ``n`` UTF-16 units."""
        pos = self.pos
        stop = pos + n
        if stop > self.end:
            raise DecodeError(f"string length {n} at byte {pos} exceeds the message")
        raw = self.data[pos:stop]
        if raw.isascii():
            self.pos = stop
            return raw.decode("ascii")
        return from_wire(self.utf8(n))

    # ------------------------------------------------------------------ Hessian 2

    def value2(self) -> Any:
        """Read one Hessian 2 value."""
        pos = self.pos
        code = self.data[pos]
        self.pos = pos + 1
        return _V2[code](self, code)

    def int2(self) -> int:
        """Read a Hessian 2 value that must be an integer (a length or an index)."""
        value = self.value2()
        if type(value) is not int:
            raise DecodeError(f"expected an int before byte {self.pos}, got {type(value).__name__}")
        return value

    def string2(self) -> str:
        """Read a Hessian 2 value that must be a string."""
        value = self.value2()
        if type(value) is not str:
            kind = type(value).__name__
            raise DecodeError(f"expected a string before byte {self.pos}, got {kind}")
        return value

    def type2(self) -> str:
        """Read a Hessian 2 type: a new type name, or the index of one seen before."""
        value = self.value2()
        if type(value) is str:
            self.types.append(value)
            return value
        if type(value) is int:
            if 0 <= value < len(self.types):
                return self.types[value]
            raise DecodeError(f"type reference {value} is undefined")
        raise DecodeError(f"expected a type before byte {self.pos}")

    def fixed_list2(self, n: int, type_: str | None) -> Any:
        """Read ``n`` Hessian 2 elements of a list that has already been announced."""
        self.check_count(n, "list")
        self.enter()
        items: list[Any] = []
        result = TypedList(type_, items) if type_ else items
        self.refs.append(result)
        read = self.value2
        for _ in range(n):
            items.append(read())
        self.depth -= 1
        return result

    def open_list2(self, type_: str | None) -> Any:
        """Read Hessian 2 elements up to the closing ``Z``."""
        self.enter()
        items: list[Any] = []
        result = TypedList(type_, items) if type_ else items
        self.refs.append(result)
        data = self.data
        read = self.value2
        while data[self.pos] != 0x5A:
            items.append(read())
        self.pos += 1
        self.depth -= 1
        return result

    def map2(self, type_: str | None) -> Any:
        """Read Hessian 2 key/value pairs up to the closing ``Z``."""
        self.enter()
        entries: dict[Any, Any] = {}
        result = TypedMap(type_, entries) if type_ else entries
        self.refs.append(result)
        data = self.data
        read = self.value2
        while data[self.pos] != 0x5A:
            key = read()
            _put(entries, key, read())
        self.pos += 1
        self.depth -= 1
        return result

    def instance2(self, index: int) -> HessianObject:
        """Read the field values of an object whose class definition is ``index``."""
        if not 0 <= index < len(self.classes):
            raise DecodeError(f"object refers to undefined class definition {index}")
        type_, names = self.classes[index]
        self.enter()
        fields: dict[str, Any] = {}
        obj = HessianObject(type_, fields)
        self.refs.append(obj)
        read = self.value2
        for name in names:
            fields[name] = read()
        self.depth -= 1
        return obj

    def ref(self, index: int) -> Any:
        """The list, map or object that was the ``index``-th one in this message."""
        if not 0 <= index < len(self.refs):
            raise DecodeError(f"reference {index} is undefined")
        return self.refs[index]

    # ------------------------------------------------------------------ Hessian 1

    def value1(self) -> Any:
        """Read one Hessian 1 value."""
        pos = self.pos
        code = self.data[pos]
        self.pos = pos + 1
        return _V1[code](self, code)

    def type1(self) -> str:
        """Read the optional ``t`` type of a Hessian 1 list or map ("" when absent)."""
        if self.data[self.pos] != 0x74:
            return ""
        self.pos += 1
        return self.text(self.u16())


def _put(entries: dict[Any, Any], key: Any, value: Any) -> None:
    try:
        entries[key] = value
    except TypeError:
        kind = type(key).__name__
        raise DecodeError(f"map key of type {kind} cannot be a Python dict key") from None


# ---------------------------------------------------------------------- Hessian 2 codes


def _bad(r: Reader, code: int) -> Any:
    raise DecodeError(f"unexpected code 0x{code:02x} at byte {r.pos - 1}")


def _null(r: Reader, code: int) -> Any:
    return None


def _true(r: Reader, code: int) -> Any:
    return True


def _false(r: Reader, code: int) -> Any:
    return False


def _int_direct(r: Reader, code: int) -> Any:
    return code - 0x90


def _int_byte(r: Reader, code: int) -> Any:
    return ((code - 0xC8) << 8) + r.byte()


def _int_short(r: Reader, code: int) -> Any:
    pos = r.pos
    r.pos = pos + 2
    data = r.data
    return ((code - 0xD4) << 16) + (data[pos] << 8) + data[pos + 1]


def _int_32(r: Reader, code: int) -> Any:
    return r.i32()


def _long_direct(r: Reader, code: int) -> Any:
    return code - 0xE0


def _long_byte(r: Reader, code: int) -> Any:
    return ((code - 0xF8) << 8) + r.byte()


def _long_short(r: Reader, code: int) -> Any:
    pos = r.pos
    r.pos = pos + 2
    data = r.data
    return ((code - 0x3C) << 16) + (data[pos] << 8) + data[pos + 1]


def _long_64(r: Reader, code: int) -> Any:
    pos = r.pos
    r.pos = pos + 8
    return _I64(r.data, pos)[0]


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


def _double_64(r: Reader, code: int) -> Any:
    pos = r.pos
    r.pos = pos + 8
    return _F64(r.data, pos)[0]


def _date_millis(r: Reader, code: int) -> Any:
    pos = r.pos
    r.pos = pos + 8
    return _date(_I64(r.data, pos)[0])


def _date_minutes(r: Reader, code: int) -> Any:
    return _date(r.i32() * 60000)


def _str_direct(r: Reader, code: int) -> Any:
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


def _bin_final(r: Reader, code: int) -> Any:
    return r.take(r.u16())


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


def _list_typed_fixed(r: Reader, code: int) -> Any:
    type_ = r.type2()
    return r.fixed_list2(r.int2(), type_)


def _list_untyped_fixed(r: Reader, code: int) -> Any:
    return r.fixed_list2(r.int2(), None)


def _list_typed_direct(r: Reader, code: int) -> Any:
    return r.fixed_list2(code - 0x70, r.type2())


def _list_untyped_direct(r: Reader, code: int) -> Any:
    return r.fixed_list2(code - 0x78, None)


def _list_typed_open(r: Reader, code: int) -> Any:
    return r.open_list2(r.type2())


def _list_untyped_open(r: Reader, code: int) -> Any:
    return r.open_list2(None)


def _map_untyped(r: Reader, code: int) -> Any:
    return r.map2(None)


def _map_typed(r: Reader, code: int) -> Any:
    return r.map2(r.type2())


def _class_def(r: Reader, code: int) -> Any:
    # Definitions precede the value that uses them; loop rather than recurse over runs.
    while code == 0x43:
        type_ = r.string2()
        count = r.int2()
        r.check_count(count, "field")
        r.classes.append((type_, tuple(r.string2() for _ in range(count))))
        code = r.byte()
    return _V2[code](r, code)


def _object_direct(r: Reader, code: int) -> Any:
    return r.instance2(code - 0x60)


def _object(r: Reader, code: int) -> Any:
    return r.instance2(r.int2())


def _ref2(r: Reader, code: int) -> Any:
    return r.ref(r.int2())


def _table(*ranges: tuple[int, int, Handler]) -> list[Handler]:
    table: list[Handler] = [_bad] * 256
    for first, last, handler in ranges:
        for code in range(first, last + 1):
            table[code] = handler
    return table


_V2 = _table(
    (0x00, 0x1F, _str_direct),
    (0x20, 0x2F, _bin_direct),
    (0x30, 0x33, _str_short),
    (0x34, 0x37, _bin_short),
    (0x38, 0x3F, _long_short),
    (0x41, 0x41, _bin_chunks),
    (0x42, 0x42, _bin_final),
    (0x43, 0x43, _class_def),
    (0x44, 0x44, _double_64),
    (0x46, 0x46, _false),
    (0x48, 0x48, _map_untyped),
    (0x49, 0x49, _int_32),
    (0x4A, 0x4A, _date_millis),
    (0x4B, 0x4B, _date_minutes),
    (0x4C, 0x4C, _long_64),
    (0x4D, 0x4D, _map_typed),
    (0x4E, 0x4E, _null),
    (0x4F, 0x4F, _object),
    (0x51, 0x51, _ref2),
    (0x52, 0x52, _str_chunks),
    (0x53, 0x53, _str_final),
    (0x54, 0x54, _true),
    (0x55, 0x55, _list_typed_open),
    (0x56, 0x56, _list_typed_fixed),
    (0x57, 0x57, _list_untyped_open),
    (0x58, 0x58, _list_untyped_fixed),
    (0x59, 0x59, _int_32),
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


# ---------------------------------------------------------------------- Hessian 1 codes


def _v1_date(r: Reader, code: int) -> Any:
    return _date_millis(r, code)


def _v1_str_final(r: Reader, code: int) -> Any:
    return r.text(r.u16())


def _v1_str_chunks(r: Reader, code: int) -> Any:
    final = code - 0x20  # 's' -> 'S', 'x' -> 'X'
    parts = [r.utf8(r.u16())]
    while True:
        code = r.byte()
        if code != final and code != final + 0x20:
            raise DecodeError(f"expected a string chunk at byte {r.pos - 1}, got 0x{code:02x}")
        parts.append(r.utf8(r.u16()))
        if code == final:
            return from_wire(b"".join(parts))


def _v1_bin_chunks(r: Reader, code: int) -> Any:
    parts = [r.take(r.u16())]
    while True:
        code = r.byte()
        if code not in (0x42, 0x62):
            raise DecodeError(f"expected a binary chunk at byte {r.pos - 1}, got 0x{code:02x}")
        parts.append(r.take(r.u16()))
        if code == 0x42:
            return b"".join(parts)


def _v1_list(r: Reader, code: int) -> Any:
    type_ = r.type1()
    if r.peek() == 0x6C:  # 'l': a length the reader may use only as a sanity check
        r.pos += 1
        r.check_count(r.i32(), "list")
    r.enter()
    items: list[Any] = []
    result = TypedList(type_, items) if type_ else items
    r.refs.append(result)
    data = r.data
    read = r.value1
    while data[r.pos] != 0x7A:
        items.append(read())
    r.pos += 1
    r.depth -= 1
    return result


def _v1_map(r: Reader, code: int) -> Any:
    type_ = r.type1()
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
    data = r.data
    read = r.value1
    is_object = type(result) is HessianObject
    while data[r.pos] != 0x7A:
        key = read()
        if is_object and type(key) is not str:
            raise DecodeError(f"field name of {type_} is a {type(key).__name__}, not a string")
        _put(entries, key, read())
    r.pos += 1
    r.depth -= 1
    return result


def _v1_ref(r: Reader, code: int) -> Any:
    return r.ref(r.i32())


_V1 = _table(
    (0x42, 0x42, _bin_final),
    (0x44, 0x44, _double_64),
    (0x46, 0x46, _false),
    (0x49, 0x49, _int_32),
    (0x4C, 0x4C, _long_64),
    (0x4D, 0x4D, _v1_map),
    (0x4E, 0x4E, _null),
    (0x52, 0x52, _v1_ref),
    (0x53, 0x53, _v1_str_final),
    (0x54, 0x54, _true),
    (0x56, 0x56, _v1_list),
    (0x58, 0x58, _v1_str_final),
    (0x62, 0x62, _v1_bin_chunks),
    (0x64, 0x64, _v1_date),
    (0x73, 0x73, _v1_str_chunks),
    (0x78, 0x78, _v1_str_chunks),
)
