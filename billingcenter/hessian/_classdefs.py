"""Process-wide caches of Hessian 2 class definitions, shared across messages.

A service sees the same few DTO classes over and over, so the field list of a ``C``
definition is parsed (decoder) or encoded (encoder) once and then reused:

* :class:`Parsed` maps a type name to the raw bytes that followed it (field count and
  field names) and the tuple of names those bytes spell. A later definition of that type
  is a hit only if the message holds exactly those bytes at that point, so a changed field
  list, or a different class under the same name, is simply parsed again. That is sound
  because an int or a string is read from its own bytes alone; a definition whose names
  nest another definition (a side effect on the message's class table) is never kept.
* :class:`Encoded` maps ``(type, field names)`` to the bytes of the whole definition.

Both are bounded (number of entries and size of one entry), evict the oldest type first
and are safe to share between threads: readers use plain ``dict.get``, writers a lock.
"""

from __future__ import annotations

import threading

MAX_TYPES = 256  # type names (decoder) or (type, names) keys (encoder) kept
MAX_VARIANTS = 4  # field lists kept per type name by the decoder, newest first
MAX_BYTES = 2048  # a definition larger than this is never cached


class Parsed:
    """Decoder side: type name -> ((raw count and names, names), ...) newest first."""

    __slots__ = ("entries", "lock")

    def __init__(self) -> None:
        self.entries: dict[str, tuple[tuple[bytes, tuple[str, ...]], ...]] = {}
        self.lock = threading.Lock()

    def remember(self, type_: str, raw: bytes, names: tuple[str, ...]) -> None:
        """Keep the field names ``raw`` spelled after ``type_`` (if small enough)."""
        if len(raw) + len(type_) > MAX_BYTES:
            return
        with self.lock:
            entries = self.entries
            old = entries.get(type_)
            if old is None:
                if len(entries) >= MAX_TYPES:
                    del entries[next(iter(entries))]
                entries[type_] = ((raw, names),)
            else:
                entries[type_] = ((raw, names), *old[: MAX_VARIANTS - 1])

    def clear(self) -> None:
        """Forget every definition."""
        with self.lock:
            self.entries.clear()


class Encoded:
    """Encoder side: ``(type, field names)`` -> the bytes of its ``C`` definition."""

    __slots__ = ("entries", "lock")

    def __init__(self) -> None:
        self.entries: dict[tuple[str, tuple[str, ...]], bytes] = {}
        self.lock = threading.Lock()

    def remember(self, key: tuple[str, tuple[str, ...]], raw: bytes) -> None:
        """Keep the encoded definition ``raw`` of ``key`` (if small enough)."""
        if len(raw) > MAX_BYTES:
            return
        with self.lock:
            entries = self.entries
            if key not in entries and len(entries) >= MAX_TYPES:
                del entries[next(iter(entries))]
            entries[key] = raw

    def clear(self) -> None:
        """Forget every definition."""
        with self.lock:
            self.entries.clear()


PARSED = Parsed()
ENCODED = Encoded()


def clear() -> None:
    """Empty both caches (tests use this to compare cold and warm runs)."""
    PARSED.clear()
    ENCODED.clear()
