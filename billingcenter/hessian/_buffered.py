"""A Hessian 2 writer that also models Caucho's 8 KiB output buffer, for binary data.

``Hessian2Output.writeBytes`` cuts a blob into ``A`` chunks sized by the room left in its
8192-byte buffer, so the bytes Caucho sends depend on where its buffer was last flushed.
Every other value comes out the same wherever the flushes fall. This writer repeats each
flush test Caucho makes (their thresholds differ per method) while writing, and is used
only for messages that carry binary data which might straddle a buffer boundary.
"""

from __future__ import annotations

from datetime import datetime

from billingcenter.hessian._text import cesu8, to_units
from billingcenter.hessian._write2 import Writer2
from billingcenter.hessian._writer import CHUNK, dispatch_table, field_names, type_name
from billingcenter.hessian.values import HessianObject

SIZE = 8192
# Caucho flushes before a write when its offset reaches these values:
AT_16 = SIZE - 16  # "SIZE <= offset + 16": int, long, double, null, string, each char
PAST_16 = SIZE - 15  # "SIZE < offset + 16": boolean, ref, binary tail
PAST_32 = SIZE - 31  # "SIZE < offset + 32": date, list/map/object heads and ends, types


class BufferedWriter2(Writer2):
    """:class:`Writer2` plus the position of Caucho's last buffer flush."""

    __slots__ = ("base",)

    def __init__(self) -> None:
        super().__init__()
        self.base = 0  # index in ``out`` of Caucho's buffer start

    def room(self, limit: int) -> None:
        """Flush (move the buffer start here) when the buffer offset has reached ``limit``."""
        if len(self.out) - self.base >= limit:
            self.base = len(self.out)

    def null(self, value: object) -> None:
        self.room(AT_16)
        super().null(value)

    def bool_(self, value: bool) -> None:
        self.room(PAST_16)
        super().bool_(value)

    def int_(self, value: int) -> None:
        self.room(AT_16)
        super().int_(value)

    def long_(self, value: int) -> None:
        self.room(AT_16)
        super().long_(value)

    def float_(self, value: float) -> None:
        self.room(AT_16)
        super().float_(value)

    def date_(self, value: datetime) -> None:
        self.room(PAST_32)
        super().date_(value)

    def str_(self, value: str) -> None:
        self.room(AT_16)
        self.chunked_text(value if value.isascii() else to_units(value))

    def key_(self, name: str) -> None:
        self.str_(name)  # a key may move the buffer start like any string

    def chunked_text(self, units: str) -> None:
        out = self.out
        n, start = len(units), 0
        while n > CHUNK:
            size = CHUNK
            if 0xD800 <= ord(units[start + size - 1]) <= 0xDBFF:
                size -= 1
            self.room(AT_16)
            out.append(0x52)
            out += size.to_bytes(2, "big")
            self.print_(cesu8(units[start : start + size]))
            start += size
            n -= size
        self.room(AT_16)
        self.text_head(n)
        self.print_(cesu8(units[start:]))

    def print_(self, encoded: bytes) -> None:
        """Append text, flushing before each character that starts at offset >= AT_16."""
        start = len(self.out)
        self.out += encoded
        size = len(encoded)
        due = AT_16 - (start - self.base)  # first index in ``encoded`` that would flush
        while True:
            i = max(due, 0)
            while i < size and 0x80 <= encoded[i] < 0xC0:
                i += 1  # flush tests happen before a character, never inside one
            if i >= size:
                return
            self.base = start + i
            due = i + AT_16

    def bytes_(self, value: bytes) -> None:
        data = bytes(value)
        out = self.out
        n, start = len(data), 0
        while SIZE - (len(out) - self.base) - 3 < n:
            size = SIZE - (len(out) - self.base) - 3
            if size < 16:
                self.base = len(out)
                size = min(SIZE - 3, n)
            out.append(0x41)
            out += size.to_bytes(2, "big")
            out += data[start : start + size]
            start += size
            n -= size
            self.base = len(out)  # Caucho flushes after every chunk
        self.room(PAST_16)
        if n <= 15:
            out.append(0x20 + n)
        elif n <= 1023:
            out.append(0x34 + (n >> 8))
            out.append(n & 0xFF)
        else:
            out.append(0x42)
            out += n.to_bytes(2, "big")
        out += data[start:]

    def ref_(self, index: int) -> None:
        self.room(PAST_16)
        super().ref_(index)

    def type_(self, type_: str) -> None:
        self.room(PAST_32)
        super().type_(type_)

    def list_head(self, length: int, type_: str | None) -> None:
        self.room(PAST_32)
        super().list_head(length, type_)

    def map_head(self, type_: str | None) -> None:
        self.room(PAST_32)
        super().map_head(type_)

    def map_end(self) -> None:
        self.room(PAST_32)
        super().map_end()

    def define(self, key: tuple[str, tuple[str, ...]], value: HessianObject) -> None:
        """Always written piece by piece: each piece may move the buffer start."""
        names = field_names(value)
        self.class_def(type_name(value.type), names)

    def class_def(self, type_: str, names: tuple[str, ...]) -> None:
        self.room(PAST_32)
        super().class_def(type_, names)

    def instance_head(self, index: int) -> None:
        self.room(PAST_32)
        super().instance_head(index)


BufferedWriter2.dispatch = dispatch_table(BufferedWriter2)
