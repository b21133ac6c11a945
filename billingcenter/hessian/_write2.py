"""Caucho's ``Hessian2Output``: compact numbers, class definitions, type-name references."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from billingcenter.hessian._classdefs import ENCODED
from billingcenter.hessian._text import cesu8, to_units
from billingcenter.hessian._writer import (
    CHUNK,
    F64P,
    I32P,
    I64P,
    INT32_MAX,
    INT32_MIN,
    INT64_MAX,
    INT64_MIN,
    NAN,
    Writer,
    dispatch_table,
    field_names,
    java_int,
    millis,
    type_name,
)
from billingcenter.hessian.values import EncodeError, HessianObject


def _small_int(value: int) -> bytes:
    if -16 <= value <= 47:
        return bytes((0x90 + value,))
    return bytes((0xC8 + (value >> 8), value & 0xFF))


_SMALL_INT = tuple(_small_int(v) for v in range(-2048, 2048))
# The fault map's keys, as str_ writes them.
_KEYS = {name: bytes((len(name),)) + name.encode() for name in ("code", "message", "detail")}


class NeedsBufferModel(Exception):  # noqa: N818 -- a control signal, not an error
    """Binary data may cross Caucho's 8 KiB buffer; rewrite with :class:`BufferedWriter2`."""


class Writer2(Writer):
    """Writes Hessian 2 values; see the module docstring."""

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
            self.out += I32P(value)
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
            out += I32P(value)
        elif INT64_MIN <= value <= INT64_MAX:
            out.append(0x4C)
            out += I64P(value)
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
            out += I32P(mills)
            return
        out.append(0x44)
        out += F64P(value) if value == value else NAN

    def date_(self, value: datetime) -> None:
        ms = millis(value)
        minutes, rest = divmod(ms, 60000)
        if not rest and INT32_MIN <= minutes <= INT32_MAX:
            self.out.append(0x4B)
            self.out += I32P(minutes)
        else:
            self.out.append(0x4A)
            self.out += I64P(ms)

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

    def key_(self, name: str) -> None:
        raw = _KEYS.get(name)
        if raw is None:
            self.str_(name)
        else:
            self.out += raw

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
        fields = value.fields
        key = (value.type, tuple(fields))
        index = self.classes.get(key)
        if index is None:
            index = len(self.classes)
            self.classes[key] = index
            self.define(key, value)
        self.instance_head(index)
        dispatch = self.dispatch
        for item in fields.values():
            (dispatch.get(type(item)) or self.resolve(item))(self, item)

    def define(self, key: tuple[str, tuple[str, ...]], value: HessianObject) -> None:
        """Write the definition of ``value``'s class, ``key``, as encoded before if it was.

        A definition's bytes depend on nothing else in the message, so they are kept
        process-wide; its names are checked when it is first encoded.
        """
        raw = ENCODED.entries.get(key)
        if raw is None:
            names = field_names(value)
            start = len(self.out)
            self.class_def(type_name(value.type), names)
            raw = bytes(self.out[start:])
            ENCODED.remember(key, raw)
        else:
            self.out += raw

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


Writer2.dispatch = dispatch_table(Writer2)
