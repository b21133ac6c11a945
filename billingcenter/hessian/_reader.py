"""The cursor shared by the Hessian 1 and 2 readers, and the codes both versions share.

The reader never trusts a declared length: every count is checked against the bytes that
are left before anything is read or allocated. Running off the end shows up as
``IndexError`` or ``struct.error``, which :mod:`billingcenter.hessian.decoder` turns into
:class:`DecodeError` in one place instead of checking before every byte.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from billingcenter.hessian._text import from_wire
from billingcenter.hessian.values import DecodeError

_U16 = struct.Struct(">H").unpack_from
I32 = struct.Struct(">i").unpack_from
_I64 = struct.Struct(">q").unpack_from
_F64 = struct.Struct(">d").unpack_from

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CONTINUATION = bytes(range(0x80, 0xC0))
_FOUR_BYTE_LEADS = bytes(range(0xF0, 0xF8))
# Surrogates (CESU-8 pairs, or escaped invalid bytes) and astral characters need the slow path.
_NOT_BMP_TEXT = re.compile("[\ud800-\udfff\U00010000-\U0010ffff]")

Handler = Callable[["Reader", int], Any]


def date_from_millis(millis: int) -> datetime:
    """The aware UTC datetime ``millis`` ms after the epoch."""
    try:
        return _EPOCH + timedelta(0, 0, 0, millis)  # positional: a third faster than by name
    except OverflowError:
        raise DecodeError(f"date {millis} ms is outside Python's datetime range") from None


def put(entries: dict[Any, Any], key: Any, value: Any) -> None:
    """Store a map entry; a key Python cannot hash is a DecodeError."""
    try:
        entries[key] = value
    except TypeError:
        kind = type(key).__name__
        raise DecodeError(f"map key of type {kind} cannot be a Python dict key") from None


def table(*ranges: tuple[int, int, Handler]) -> list[Handler]:
    """A 256-entry dispatch table from (first code, last code, handler) ranges."""
    codes: list[Handler] = [bad] * 256
    for first, last, handler in ranges:
        for code in range(first, last + 1):
            codes[code] = handler
    return codes


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
        return int(I32(self.data, pos)[0])

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
        data = self.data
        pos = self.pos
        stop = pos + n
        if stop > self.end:
            raise DecodeError(f"string length {n} at byte {pos} exceeds the message")
        raw = data[pos:stop]
        if raw.isascii():
            self.pos = stop
            return raw.decode("ascii")
        # BMP text: n units are n characters of at most 3 bytes. Decoding a window that
        # may run into the next values is safe: escapes there lie beyond the n we keep.
        head = data[pos : pos + 3 * n].decode("utf-8", "surrogateescape")[:n]
        if len(head) == n and _NOT_BMP_TEXT.search(head) is None:
            self.pos = pos + len(head.encode("utf-8"))
            return head
        return from_wire(self.utf8(n))

    def ref(self, index: int) -> Any:
        """The list, map or object that was the ``index``-th one in this message."""
        if not 0 <= index < len(self.refs):
            raise DecodeError(f"reference {index} is undefined")
        return self.refs[index]


# ---------------------------------------------------------------------- codes of both versions


def bad(r: Reader, code: int) -> Any:
    """A code this version does not define."""
    raise DecodeError(f"unexpected code 0x{code:02x} at byte {r.pos - 1}")


def null(r: Reader, code: int) -> Any:
    """``N``."""
    return None


def true(r: Reader, code: int) -> Any:
    """``T``."""
    return True


def false(r: Reader, code: int) -> Any:
    """``F``."""
    return False


def int32(r: Reader, code: int) -> Any:
    """``I`` (and Hessian 2's ``Y`` long): four bytes."""
    return r.i32()


def long64(r: Reader, code: int) -> Any:
    """``L``: eight bytes."""
    pos = r.pos
    r.pos = pos + 8
    return _I64(r.data, pos)[0]


def double64(r: Reader, code: int) -> Any:
    """``D``: an IEEE double."""
    pos = r.pos
    r.pos = pos + 8
    return _F64(r.data, pos)[0]


def date_millis(r: Reader, code: int) -> Any:
    """Hessian 1 ``d`` / Hessian 2 ``J``: milliseconds since the epoch."""
    pos = r.pos
    r.pos = pos + 8
    return date_from_millis(_I64(r.data, pos)[0])


def binary_final(r: Reader, code: int) -> Any:
    """``B``: the last (or only) binary chunk."""
    return r.take(r.u16())
