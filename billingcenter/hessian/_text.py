"""Text as Java and Hessian see it: UTF-16 code units, surrogate pairs sent as CESU-8."""

from __future__ import annotations

import re

_ASTRAL = re.compile("[\U00010000-\U0010ffff]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _pair(match: re.Match[str]) -> str:
    code = ord(match.group()) - 0x10000
    return chr(0xD800 | (code >> 10)) + chr(0xDC00 | (code & 0x3FF))


def to_units(text: str) -> str:
    """Return ``text`` with each non-BMP character split into its UTF-16 surrogate pair.

    The result has one Python character per UTF-16 unit, so ``len`` counts what Java's
    ``String.length()`` counts and slicing cuts where Java would.
    """
    if _ASTRAL.search(text) is None:
        return text
    return _ASTRAL.sub(_pair, text)


def cesu8(units: str) -> bytes:
    """Encode a string of UTF-16 units the way Java's Hessian writers do (CESU-8)."""
    return units.encode("utf-8", "surrogatepass")


def from_wire(raw: bytes) -> str:
    """Decode UTF-8 or CESU-8 bytes, joining surrogate pairs into single characters."""
    text = raw.decode("utf-8", "surrogatepass")
    if b"\xed" in raw and _SURROGATE.search(text) is not None:
        # Valid pairs become one character; a lone surrogate stays as Java had it.
        text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")
    return text
