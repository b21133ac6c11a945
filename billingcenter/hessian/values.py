"""The Python side of Hessian values that have no plain Python equivalent.

Mapping used by the codec (both directions unless noted):

==================  =========================================================
Hessian             Python
==================  =========================================================
null                ``None``
boolean             ``bool``
int (32 bit)        ``int`` (encoded as int when it fits in 32 bits)
long (64 bit)       ``int`` when decoded; ``Long`` forces long when encoding
double              ``float``
date                aware ``datetime`` in UTC (millisecond precision)
string              ``str`` (non-BMP characters travel as surrogate pairs)
binary              ``bytes``
untyped list        ``list`` (``tuple`` also encodes as a list)
typed list          ``TypedList``
untyped map         ``dict``
typed map           ``TypedMap`` (Hessian 1 typed maps with a class name that is
                    not a ``java.util`` map decode as ``HessianObject``)
object              ``HessianObject``
==================  =========================================================
"""

from __future__ import annotations

from typing import Any

import attrs


class Long(int):
    """An integer that must go out as a Hessian long whatever its size (Java ``long``)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"Long({int(self)})"


class Int(int):
    """An integer that must go out as a Hessian int (Java ``int``); out of range is an error."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"Int({int(self)})"


@attrs.define(eq=True)
class HessianObject:
    """A Java object on the wire: its class name and its fields, in wire order."""

    type: str
    fields: dict[str, Any] = attrs.field(factory=dict)


@attrs.define(eq=True)
class TypedList:
    """A list that carries a Java type name (for example ``[int`` or ``java.util.ArrayList``)."""

    type: str
    items: list[Any] = attrs.field(factory=list)


@attrs.define(eq=True)
class TypedMap:
    """A map that carries a Java type name (for example ``java.util.Hashtable``)."""

    type: str
    entries: dict[Any, Any] = attrs.field(factory=dict)


@attrs.frozen
class Call:
    """A decoded call: method name as sent (possibly mangled), arguments, headers, version.

    ``version`` is the envelope the caller used: ``"c1"`` (``c 01 00``),
    ``"c2"`` (``c 02 00``, Hessian 1 call body) or ``"H2"`` (``H 02 00 C``).
    """

    method: str
    args: tuple[Any, ...]
    headers: dict[str, Any] = attrs.field(factory=dict)
    version: str = "H2"


class HessianError(Exception):
    """Base of the codec's errors."""


class DecodeError(HessianError):
    """The bytes are not valid Hessian (or exceed the decoder's limits)."""


class EncodeError(HessianError):
    """A value cannot be written as Hessian."""


@attrs.define(eq=False, str=False)
class Fault(HessianError):
    """A Hessian fault reply: ``code``, ``message`` and an optional ``detail`` value."""

    code: str
    message: str
    detail: Any = None

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"
