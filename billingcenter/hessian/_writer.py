"""Hessian 1 and 2 writers that reproduce Caucho 4.0.38's bytes (HessianOutput, Hessian2Output).

Values are written into one ``bytearray``. Lists, maps and objects are numbered in write
order, as Caucho's readers count them, and an object written twice in one message goes out
the second time as a reference (``R``/``Q``), as Caucho does for the same Java instance.
Tuples are numbered but never shared: they are values, not instances.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from billingcenter.hessian._text import cesu8, to_units
from billingcenter.hessian.values import (
    EncodeError,
    HessianObject,
    Int,
    Long,
    TypedList,
    TypedMap,
)

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
CHUNK = 0x8000  # Caucho's string (both versions) and Hessian 1 binary chunk, in units/bytes

_I32P = struct.Struct(">i").pack
_I64P = struct.Struct(">q").pack
_F64P = struct.Struct(">d").pack
_NAN = b"\x7f\xf8\x00\x00\x00\x00\x00\x00"  # Java's Double.doubleToLongBits(NaN)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def millis(value: datetime) -> int:
    """Milliseconds since the epoch of an aware datetime (sub-millisecond part dropped)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise EncodeError(f"naive datetime {value.isoformat()} has no time zone")
    return (value - _EPOCH) // _MS


def java_int(value: float) -> int:
    """Java's ``(int) value``: NaN is 0, out-of-range saturates, otherwise truncates."""
    if value != value:
        return 0
    if value >= INT32_MAX:
        return INT32_MAX
    if value <= INT32_MIN:
        return INT32_MIN
    return int(value)


def _utf16_len_header(units: str) -> bytes:
    n = len(units)
    if n > 0xFFFF:
        raise EncodeError(f"name of {n} UTF-16 units does not fit a 16-bit length")
    return n.to_bytes(2, "big") + cesu8(units)


def _as_long(writer: Any, item: Any) -> None:
    if isinstance(item, bool) or not isinstance(item, int):
        raise EncodeError(f"a [long array cannot hold {type(item).__name__}")
    writer.long_(item)


def _as_double(writer: Any, item: Any) -> None:
    if isinstance(item, bool) or not isinstance(item, (int, float)):
        raise EncodeError(f"a [double array cannot hold {type(item).__name__}")
    writer.float_(float(item))


# Java primitive arrays hold one wire type whatever Python number the caller passes.
_ARRAY_ITEM: dict[str, Callable[[Any, Any], None]] = {
    "[long": _as_long,
    "[double": _as_double,
    "[float": _as_double,
}


class _Writer:
    """Shared traversal: type dispatch, reference numbering, lists and maps."""

    __slots__ = ("out", "refs", "nrefs")
    dispatch: ClassVar[dict[type, Callable[[Any, Any], None]]] = {}

    def __init__(self) -> None:
        self.out = bytearray()
        self.refs: dict[int, int] = {}
        self.nrefs = 0

    # Hooks each version writes its own way.
    def null(self, value: Any) -> None:
        raise NotImplementedError

    def bool_(self, value: bool) -> None:
        raise NotImplementedError

    def int_(self, value: int) -> None:
        raise NotImplementedError

    def long_(self, value: int) -> None:
        raise NotImplementedError

    def float_(self, value: float) -> None:
        raise NotImplementedError

    def date_(self, value: datetime) -> None:
        raise NotImplementedError

    def str_(self, value: str) -> None:
        raise NotImplementedError

    def bytes_(self, value: bytes) -> None:
        raise NotImplementedError

    def ref_(self, index: int) -> None:
        raise NotImplementedError

    def list_head(self, length: int, type_: str | None) -> None:
        raise NotImplementedError

    def list_end(self) -> None:
        raise NotImplementedError

    def map_head(self, type_: str | None) -> None:
        raise NotImplementedError

    def map_end(self) -> None:
        raise NotImplementedError

    def object_(self, value: HessianObject) -> None:
        raise NotImplementedError

    # Traversal.
    def value(self, value: Any) -> None:
        """Write any supported Python value."""
        fn = self.dispatch.get(type(value))
        if fn is None:
            fn = self.resolve(value)
        fn(self, value)

    def resolve(self, value: Any) -> Callable[[Any, Any], None]:
        """The writer method for a value whose exact type is not in the dispatch table."""
        cls = type(self)
        for kind, method in _SUBCLASS_ORDER:
            if isinstance(value, kind):
                fn: Callable[[Any, Any], None] = getattr(cls, method)
                return fn
        raise EncodeError(f"cannot write a {type(value).__module__}.{type(value).__qualname__}")

    def int_checked(self, value: int) -> None:
        """An ``Int``: a Java int, so a value outside 32 bits is an error, not a long."""
        if not INT32_MIN <= value <= INT32_MAX:
            raise EncodeError(f"Int({int(value)}) does not fit a 32-bit Java int")
        self.int_(int(value))

    def seen(self, value: Any) -> bool:
        """Write a reference if ``value`` was written before; otherwise number it."""
        key = id(value)
        index = self.refs.get(key)
        if index is not None:
            self.ref_(index)
            return True
        self.refs[key] = self.nrefs
        self.nrefs += 1
        return False

    def list_(self, value: list[Any] | tuple[Any, ...]) -> None:
        """An untyped list (a tuple is written as a list, never shared)."""
        if isinstance(value, tuple):
            self.nrefs += 1
        elif self.seen(value):
            return
        self.list_head(len(value), None)
        dispatch = self.dispatch
        for item in value:
            fn = dispatch.get(type(item)) or self.resolve(item)
            fn(self, item)
        self.list_end()

    def typed_list_(self, value: TypedList) -> None:
        """A list with a Java type; primitive arrays coerce their items to the array's type."""
        if self.seen(value):
            return
        items = value.items
        self.list_head(len(items), _type_name(value.type))
        write = _ARRAY_ITEM.get(value.type)
        if write is None:
            for item in items:
                self.value(item)
        else:
            for item in items:
                write(self, item)
        self.list_end()

    def dict_(self, value: dict[Any, Any]) -> None:
        """An untyped map (Java ``HashMap``)."""
        if self.seen(value):
            return
        self._map(None, value)

    def typed_map_(self, value: TypedMap) -> None:
        """A map with a Java type such as ``java.util.Hashtable``."""
        if self.seen(value):
            return
        self._map(_type_name(value.type), value.entries)

    def _map(self, type_: str | None, entries: dict[Any, Any]) -> None:
        self.map_head(type_)
        write = self.value
        for key, item in entries.items():
            write(key)
            write(item)
        self.map_end()


def _type_name(type_: str) -> str:
    if not isinstance(type_, str) or not type_:
        raise EncodeError(f"a Hessian type must be a non-empty string, not {type_!r}")
    return type_


def _field_names(value: HessianObject) -> tuple[str, ...]:
    names = tuple(value.fields)
    for name in names:
        if not isinstance(name, str):
            raise EncodeError(f"field name {name!r} of {value.type} is not a string")
    return names


# isinstance order matters: bool before int, Int/Long before int, datetime before date.
_SUBCLASS_ORDER: tuple[tuple[type | tuple[type, ...], str], ...] = (
    (bool, "bool_"),
    (Int, "int_checked"),
    (Long, "long_"),
    (int, "int_"),
    (float, "float_"),
    (str, "str_"),
    ((bytes, bytearray, memoryview), "bytes_"),
    (datetime, "date_"),
    ((list, tuple), "list_"),
    (dict, "dict_"),
    (TypedList, "typed_list_"),
    (TypedMap, "typed_map_"),
    (HessianObject, "object_"),
)


def _dispatch(cls: type[_Writer]) -> dict[type, Callable[[Any, Any], None]]:
    methods = {
        type(None): "null",
        bool: "bool_",
        int: "int_",
        Int: "int_checked",
        Long: "long_",
        float: "float_",
        str: "str_",
        bytes: "bytes_",
        bytearray: "bytes_",
        memoryview: "bytes_",
        datetime: "date_",
        list: "list_",
        tuple: "list_",
        dict: "dict_",
        TypedList: "typed_list_",
        TypedMap: "typed_map_",
        HessianObject: "object_",
    }
    return {kind: getattr(cls, name) for kind, name in methods.items()}


# ---------------------------------------------------------------------- Hessian 1


class Writer1(_Writer):
    """Caucho ``HessianOutput``: fixed-size numbers, ``V``/``M`` containers closed by ``z``."""

    __slots__ = ()

    def null(self, value: Any) -> None:
        self.out.append(0x4E)

    def bool_(self, value: bool) -> None:
        self.out.append(0x54 if value else 0x46)

    def int_(self, value: int) -> None:
        if INT32_MIN <= value <= INT32_MAX:
            self.out.append(0x49)
            self.out += _I32P(value)
        else:
            self.long_(value)

    def long_(self, value: int) -> None:
        if not INT64_MIN <= value <= INT64_MAX:
            raise EncodeError(f"{int(value)} does not fit a 64-bit Java long")
        self.out.append(0x4C)
        self.out += _I64P(value)

    def float_(self, value: float) -> None:
        self.out.append(0x44)
        self.out += _F64P(value) if value == value else _NAN

    def date_(self, value: datetime) -> None:
        self.out.append(0x64)
        self.out += _I64P(millis(value))

    def str_(self, value: str) -> None:
        units = value if value.isascii() else to_units(value)
        self.chunked_text(units)

    def chunked_text(self, units: str) -> None:
        """Caucho's ``s``/``S`` chunks of at most 0x8000 units, never ending on a high surrogate."""
        out = self.out
        n, start = len(units), 0
        while n > CHUNK:
            size = CHUNK
            if 0xD800 <= ord(units[start + size - 1]) <= 0xDBFF:
                size -= 1
            out.append(0x73)
            out += size.to_bytes(2, "big")
            out += cesu8(units[start : start + size])
            start += size
            n -= size
        out.append(0x53)
        out += n.to_bytes(2, "big")
        out += cesu8(units[start:])

    def bytes_(self, value: bytes) -> None:
        out = self.out
        data = bytes(value)
        n, start = len(data), 0
        while n > CHUNK:
            out += b"b\x80\x00"
            out += data[start : start + CHUNK]
            start += CHUNK
            n -= CHUNK
        out.append(0x42)
        out += n.to_bytes(2, "big")
        out += data[start:]

    def ref_(self, index: int) -> None:
        self.out.append(0x52)
        self.out += _I32P(index)

    def list_head(self, length: int, type_: str | None) -> None:
        out = self.out
        out.append(0x56)
        if type_ is not None:
            out.append(0x74)
            out += _utf16_len_header(to_units(type_))
        out.append(0x6C)
        out += _I32P(length)

    def list_end(self) -> None:
        self.out.append(0x7A)

    def map_head(self, type_: str | None) -> None:
        self.out += b"Mt"
        self.out += _utf16_len_header(to_units(type_)) if type_ else b"\x00\x00"

    def map_end(self) -> None:
        self.out.append(0x7A)

    def object_(self, value: HessianObject) -> None:
        """A Java object is a map typed with its class name: field name, value, ... ``z``."""
        if self.seen(value):
            return
        names = _field_names(value)
        self.map_head(_type_name(value.type))
        for name, item in zip(names, value.fields.values(), strict=True):
            self.str_(name)
            self.value(item)
        self.map_end()


Writer1.dispatch = _dispatch(Writer1)


# ---------------------------------------------------------------------- Hessian 2


def _small_int(value: int) -> bytes:
    if -16 <= value <= 47:
        return bytes((0x90 + value,))
    return bytes((0xC8 + (value >> 8), value & 0xFF))


_SMALL_INT = tuple(_small_int(v) for v in range(-2048, 2048))


class NeedsBufferModel(Exception):  # noqa: N818 -- a control signal, not an error
    """Binary data may cross Caucho's 8 KiB buffer; rewrite with :class:`BufferedWriter2`."""


class Writer2(_Writer):
    """Caucho ``Hessian2Output``: compact numbers, class definitions, typed-name references."""

    __slots__ = ("classes", "types")

    def __init__(self) -> None:
        super().__init__()
        self.classes: dict[tuple[str, tuple[str, ...]], int] = {}
        self.types: dict[str, int] = {}

    def null(self, value: Any) -> None:
        self.out.append(0x4E)

    def bool_(self, value: bool) -> None:
        self.out.append(0x54 if value else 0x46)

    def int_(self, value: int) -> None:
        if -2048 <= value <= 2047:
            self.out += _SMALL_INT[value + 2048]
        elif -262144 <= value <= 262143:
            self.out += bytes((0xD4 + (value >> 16), (value >> 8) & 0xFF, value & 0xFF))
        elif INT32_MIN <= value <= INT32_MAX:
            self.out.append(0x49)
            self.out += _I32P(value)
        else:
            self.long_(value)

    def long_(self, value: int) -> None:
        out = self.out
        if -8 <= value <= 15:
            out.append(0xE0 + value)
        elif -2048 <= value <= 2047:
            out += bytes((0xF8 + (value >> 8), value & 0xFF))
        elif -262144 <= value <= 262143:
            out += bytes((0x3C + (value >> 16), (value >> 8) & 0xFF, value & 0xFF))
        elif INT32_MIN <= value <= INT32_MAX:
            out.append(0x59)
            out += _I32P(value)
        elif INT64_MIN <= value <= INT64_MAX:
            out.append(0x4C)
            out += _I64P(value)
        else:
            raise EncodeError(f"{int(value)} does not fit a 64-bit Java long")

    def float_(self, value: float) -> None:
        out = self.out
        whole = java_int(value)
        if whole == value:
            if whole == 0:
                out.append(0x5B)
                return
            if whole == 1:
                out.append(0x5C)
                return
            if -0x80 <= whole < 0x80:
                out += bytes((0x5D, whole & 0xFF))
                return
            if -0x8000 <= whole < 0x8000:
                out += bytes((0x5E, (whole >> 8) & 0xFF, whole & 0xFF))
                return
        mills = java_int(value * 1000)
        if 0.001 * mills == value:
            out.append(0x5F)
            out += _I32P(mills)
            return
        out.append(0x44)
        out += _F64P(value) if value == value else _NAN

    def date_(self, value: datetime) -> None:
        ms = millis(value)
        if ms % 60000 == 0 and INT32_MIN <= ms // 60000 <= INT32_MAX:
            self.out.append(0x4B)
            self.out += _I32P(ms // 60000)
        else:
            self.out.append(0x4A)
            self.out += _I64P(ms)

    def str_(self, value: str) -> None:
        if value.isascii():
            n = len(value)
            out = self.out
            if n <= 31:
                out.append(n)
            elif n <= 1023:
                out.append(0x30 + (n >> 8))
                out.append(n & 0xFF)
            elif n <= CHUNK:
                out.append(0x53)
                out += n.to_bytes(2, "big")
            else:
                self.chunked_text(value)
                return
            out += value.encode()
            return
        self.chunked_text(to_units(value))

    def text_head(self, n: int) -> None:
        """The header of the last (or only) piece of a string of ``n`` units."""
        out = self.out
        if n <= 31:
            out.append(n)
        elif n <= 1023:
            out.append(0x30 + (n >> 8))
            out.append(n & 0xFF)
        else:
            out.append(0x53)
            out += n.to_bytes(2, "big")

    def chunked_text(self, units: str) -> None:
        """``R`` chunks of 0x8000 units (one less before a high surrogate), then a last piece."""
        out = self.out
        n, start = len(units), 0
        while n > CHUNK:
            size = CHUNK
            if 0xD800 <= ord(units[start + size - 1]) <= 0xDBFF:
                size -= 1
            out.append(0x52)
            out += size.to_bytes(2, "big")
            out += cesu8(units[start : start + size])
            start += size
            n -= size
        self.text_head(n)
        out += cesu8(units[start:])

    def bytes_(self, value: bytes) -> None:
        n = len(value)
        out = self.out
        offset = len(out)
        # Until 8161 bytes no buffer flush can have happened, so Caucho's offset is len(out);
        # a blob that also fits in the rest of the 8 KiB buffer goes out in one piece.
        if n and (offset > 8160 or offset + 3 + n > 8192):
            raise NeedsBufferModel
        if n <= 15:
            out.append(0x20 + n)
        elif n <= 1023:
            out.append(0x34 + (n >> 8))
            out.append(n & 0xFF)
        else:
            out.append(0x42)
            out += n.to_bytes(2, "big")
        out += value

    def ref_(self, index: int) -> None:
        self.out.append(0x51)
        self.int_(index)

    def type_(self, type_: str) -> None:
        """A list or map type: the name the first time, then its index."""
        index = self.types.get(type_)
        if index is None:
            self.types[type_] = len(self.types)
            self.str_(type_)
        else:
            self.int_(index)

    def list_head(self, length: int, type_: str | None) -> None:
        out = self.out
        if type_ is None:
            if length <= 7:
                out.append(0x78 + length)
            else:
                out.append(0x58)
                self.int_(length)
        elif length <= 7:
            out.append(0x70 + length)
            self.type_(type_)
        else:
            out.append(0x56)
            self.type_(type_)
            self.int_(length)

    def list_end(self) -> None:
        """Fixed-length lists have no end marker."""

    def map_head(self, type_: str | None) -> None:
        if type_ is None:
            self.out.append(0x48)
        else:
            self.out.append(0x4D)
            self.type_(type_)

    def map_end(self) -> None:
        self.out.append(0x5A)

    def object_(self, value: HessianObject) -> None:
        """Class definition once per (type, field names), then ``0x60+n``/``O n`` and values."""
        if self.seen(value):
            return
        names = _field_names(value)
        key = (_type_name(value.type), names)
        index = self.classes.get(key)
        if index is None:
            index = len(self.classes)
            self.classes[key] = index
            self.class_def(key[0], names)
        self.instance_head(index)
        write = self.value
        for item in value.fields.values():
            write(item)

    def class_def(self, type_: str, names: tuple[str, ...]) -> None:
        """``C`` type field-count field-names."""
        self.out.append(0x43)
        self.str_(type_)
        self.int_(len(names))
        for name in names:
            self.str_(name)

    def instance_head(self, index: int) -> None:
        """The start of an object of class definition ``index``."""
        if index <= 15:
            self.out.append(0x60 + index)
        else:
            self.out.append(0x4F)
            self.int_(index)


Writer2.dispatch = _dispatch(Writer2)
