"""Caucho's ``HessianOutput``: fixed-size numbers, ``V``/``M`` containers closed by ``z``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

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
    millis,
    type_name,
    utf16_len_header,
)
from billingcenter.hessian.values import EncodeError, HessianObject


class Writer1(Writer):
    """Writes Hessian 1 values; see the module docstring."""

    __slots__ = ()

    def null(self, value: Any) -> None:
        self.out.append(0x4E)

    def bool_(self, value: bool) -> None:
        self.out.append(0x54 if value else 0x46)

    def int_(self, value: int) -> None:
        if INT32_MIN <= value <= INT32_MAX:
            self.out.append(0x49)
            self.out += I32P(value)
        else:
            self.long_(value)

    def long_(self, value: int) -> None:
        if not INT64_MIN <= value <= INT64_MAX:
            raise EncodeError(f"{int(value)} does not fit a 64-bit Java long")
        self.out.append(0x4C)
        self.out += I64P(value)

    def float_(self, value: float) -> None:
        self.out.append(0x44)
        self.out += F64P(value) if value == value else NAN

    def date_(self, value: datetime) -> None:
        self.out.append(0x64)
        self.out += I64P(millis(value))

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
        self.out += I32P(index)

    def list_head(self, length: int, type_: str | None) -> None:
        out = self.out
        out.append(0x56)
        if type_ is not None:
            out.append(0x74)
            out += utf16_len_header(to_units(type_))
        out.append(0x6C)
        out += I32P(length)

    def list_end(self) -> None:
        self.out.append(0x7A)

    def map_head(self, type_: str | None) -> None:
        self.out += b"Mt"
        self.out += utf16_len_header(to_units(type_)) if type_ else b"\x00\x00"

    def map_end(self) -> None:
        self.out.append(0x7A)

    def object_(self, value: HessianObject) -> None:
        """A Java object is a map typed with its class name: field name, value, ... ``z``."""
        if self.seen(value):
            return
        names = field_names(value)
        self.map_head(type_name(value.type))
        for name, item in zip(names, value.fields.values(), strict=True):
            self.str_(name)
            self.value(item)
        self.map_end()


Writer1.dispatch = dispatch_table(Writer1)


