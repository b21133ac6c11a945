"""What the Hessian 1 and 2 writers share: type dispatch, reference numbering, containers.

Each writer reproduces Caucho 4.0.38's bytes (``HessianOutput``, ``Hessian2Output``) into
one ``bytearray``. Lists, maps and objects are numbered in write order, as Caucho's readers
count them, and an object written twice in one message goes out the second time as a
reference (``R``/``Q``), as Caucho does for the same Java instance. Tuples are numbered but
never shared: they are values, not instances.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from billingcenter.hessian._text import cesu8
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

I32P = struct.Struct(">i").pack
I64P = struct.Struct(">q").pack
F64P = struct.Struct(">d").pack
NAN = b"\x7f\xf8\x00\x00\x00\x00\x00\x00"  # Java's Double.doubleToLongBits(NaN)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def millis(value: datetime) -> int:
    """Milliseconds since the epoch of an aware datetime (sub-millisecond part dropped)."""
    # utcoffset() (None also when tzinfo is None) costs more than the rest: skip it for UTC.
    if value.tzinfo is not UTC and value.utcoffset() is None:
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


def utf16_len_header(units: str) -> bytes:
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


class Writer:
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

    def key_(self, name: str) -> None:
        """A fixed field name such as a fault's ``code``; a writer may keep it encoded."""
        self.str_(name)

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
        self.list_head(len(items), type_name(value.type))
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
        self._map(type_name(value.type), value.entries)

    def _map(self, type_: str | None, entries: dict[Any, Any]) -> None:
        self.map_head(type_)
        dispatch = self.dispatch
        for key, item in entries.items():
            (dispatch.get(type(key)) or self.resolve(key))(self, key)
            (dispatch.get(type(item)) or self.resolve(item))(self, item)
        self.map_end()


def type_name(type_: str) -> str:
    if not isinstance(type_, str) or not type_:
        raise EncodeError(f"a Hessian type must be a non-empty string, not {type_!r}")
    return type_


def field_names(value: HessianObject) -> tuple[str, ...]:
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


def dispatch_table(cls: type[Writer]) -> dict[type, Callable[[Any, Any], None]]:
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
