"""The process-wide class-definition caches never change what a message means or is.

:mod:`billingcenter.hessian._classdefs` keeps parsed (decoder) and encoded (encoder) class
definitions across messages. These tests pin down that a cache hit is only ever taken for
the very same bytes or the very same (type, field names), that the caches stay bounded, and
that every golden vector comes out the same from cold and from warm caches.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from billingcenter.hessian import (
    DecodeError,
    EncodeError,
    Fault,
    HessianObject,
    decode_call,
    decode_reply,
    decode_value,
    encode_call,
    encode_fault,
    encode_reply,
    encode_value,
)
from billingcenter.hessian._buffered import BufferedWriter2
from billingcenter.hessian._classdefs import (
    ENCODED,
    MAX_BYTES,
    MAX_TYPES,
    MAX_VARIANTS,
    PARSED,
    clear,
)
from tests.hessian.golden_cases import Case, canonical, canonical_fault, cases, load_vectors

TYPE = "org.billingcenter.api.ServiceOp"


@pytest.fixture(autouse=True)
def empty_caches() -> Iterator[None]:
    """Each test starts, and leaves the next test, with empty caches."""
    clear()
    yield
    clear()


def definition(type_: str, names: list[str]) -> bytes:
    """``C type count names`` for short ASCII names, as Hessian2Output writes it."""
    out = b"C" + bytes((len(type_),)) + type_.encode() + bytes((0x90 + len(names),))
    return out + b"".join(bytes((len(name),)) + name.encode() for name in names)


def one_object(type_: str, names: list[str], values: bytes) -> bytes:
    """A whole Hessian 2 value: a definition and one object of it."""
    return definition(type_, names) + b"\x60" + values


class TestDecoderCache:
    """Parsed definitions are reused only where the message holds the same bytes."""

    def test_same_type_other_fields(self):
        """A type name seen before with other fields is parsed afresh, both ways round."""
        old = one_object(TYPE, ["a", "b"], b"\x91\x92")
        new = one_object(TYPE, ["a", "c"], b"\x93\x94")
        longer = one_object(TYPE, ["a", "b", "c"], b"\x91\x92\x93")
        shorter = one_object(TYPE, ["a"], b"\x95")
        for _ in range(2):
            assert decode_value(old, 2) == HessianObject(TYPE, {"a": 1, "b": 2})
            assert decode_value(new, 2) == HessianObject(TYPE, {"a": 3, "c": 4})
            assert decode_value(longer, 2) == HessianObject(TYPE, {"a": 1, "b": 2, "c": 3})
            assert decode_value(shorter, 2) == HessianObject(TYPE, {"a": 5})

    def test_name_that_extends_a_cached_name(self):
        """Cached ``"ab"`` does not match ``"abc"``: the length byte differs."""
        decode_value(one_object(TYPE, ["ab"], b"\x91"), 2)
        assert decode_value(one_object(TYPE, ["abc"], b"\x92"), 2) == HessianObject(
            TYPE, {"abc": 2})

    def test_two_variants_in_one_message(self):
        """Two definitions of one type in one message keep their own field lists."""
        data = (b"\x7a" + one_object(TYPE, ["a"], b"\x91")
                + definition(TYPE, ["b", "c"]) + b"\x61\x92\x93")
        for _ in range(2):
            assert decode_value(data, 2) == [HessianObject(TYPE, {"a": 1}),
                                             HessianObject(TYPE, {"b": 2, "c": 3})]

    def test_cached_definition_then_truncated_message(self):
        """A message cut inside a definition seen before is still a DecodeError."""
        data = one_object(TYPE, ["alpha", "beta"], b"\x91\x92")
        decode_value(data, 2)
        for cut in range(1, len(data)):
            with pytest.raises(DecodeError):
                decode_value(data[:cut], 2)

    def test_names_holding_a_definition_are_not_cached(self):
        """A field name read through a nested ``C`` adds a class: that is never replayed."""
        nested = definition("x", []) + b"\x01a"  # a definition, then the string "a"
        # The nested definition is class 0, so TYPE is class 1.
        data = b"C" + bytes((len(TYPE),)) + TYPE.encode() + b"\x91" + nested + b"\x61\x91"
        first = decode_value(data, 2)
        assert TYPE not in PARSED.entries
        assert decode_value(data, 2) == first == HessianObject(TYPE, {"a": 1})

    def test_non_ascii_names(self):
        """Names outside ASCII are cached as their bytes and read back the same."""
        names = ["été", "€"]
        data = (b"C" + bytes((len(TYPE),)) + TYPE.encode() + b"\x92"
                + b"".join(bytes((len(n),)) + n.encode() for n in names) + b"\x60\x91\x92")
        for _ in range(2):
            assert decode_value(data, 2) == HessianObject(TYPE, {"été": 1, "€": 2})

    def test_variants_per_type_are_bounded(self):
        """At most MAX_VARIANTS field lists per type, the newest first."""
        for i in range(MAX_VARIANTS + 3):
            decode_value(one_object(TYPE, [f"f{i}"], b"\x91"), 2)
        kept = PARSED.entries[TYPE]
        assert len(kept) == MAX_VARIANTS
        assert kept[0][1] == (f"f{MAX_VARIANTS + 2}",)

    def test_types_are_bounded(self):
        """At most MAX_TYPES type names; the oldest goes first."""
        for i in range(MAX_TYPES + 10):
            decode_value(one_object(f"T{i}", ["a"], b"\x91"), 2)
        assert len(PARSED.entries) == MAX_TYPES
        assert "T0" not in PARSED.entries and f"T{MAX_TYPES + 9}" in PARSED.entries
        assert decode_value(one_object("T0", ["a"], b"\x92"), 2) == HessianObject("T0", {"a": 2})

    def test_large_definitions_are_not_cached(self):
        """A definition larger than MAX_BYTES is decoded but never kept."""
        names = [f"field{i:05d}" for i in range(MAX_BYTES // 10 + 1)]
        count = len(names)
        data = (b"C" + bytes((len(TYPE),)) + TYPE.encode() + b"\xd4" + count.to_bytes(2, "big")
                + b"".join(bytes((len(n),)) + n.encode() for n in names)
                + b"\x60" + b"\x90" * count)
        assert decode_value(data, 2) == HessianObject(TYPE, dict.fromkeys(names, 0))
        assert PARSED.entries == {}


class TestEncoderCache:
    """Encoded definitions are reused only for the same (type, field names)."""

    def test_same_type_other_fields(self):
        """One type written with other fields gets its own definition, cold or warm."""
        when = datetime(2026, 11, 1, tzinfo=UTC)
        objects = [HessianObject(TYPE, {"a": 1, "b": "x"}), HessianObject(TYPE, {"b": "x"}),
                   HessianObject(TYPE, {"b": "x", "a": 1}), HessianObject(TYPE, {"a": when})]
        cold = [encode_reply(obj, 2) for obj in objects]
        warm = [encode_reply(obj, 2) for obj in objects]
        assert cold == warm
        assert cold[0] == b"H\x02\x00R" + definition(TYPE, ["a", "b"]) + b"\x60\x91\x01x"
        assert cold[1] == b"H\x02\x00R" + definition(TYPE, ["b"]) + b"\x60\x01x"

    def test_definition_is_numbered_per_message(self):
        """A cached definition still takes the next class index of the message it is in."""
        encode_value(HessianObject("B", {"y": 2}), 2)
        data = encode_value([HessianObject("A", {"x": 1}), HessianObject("B", {"y": 2})], 2)
        assert data == (b"\x7a" + definition("A", ["x"]) + b"\x60\x91"
                        + definition("B", ["y"]) + b"\x61\x92")

    def test_refused_objects_stay_refused(self):
        """Bad field names or type names are refused every time, never cached."""
        for _ in range(2):
            with pytest.raises(EncodeError):
                encode_value(HessianObject(TYPE, {1: "x"}), 2)
            with pytest.raises(EncodeError):
                encode_value(HessianObject("", {"a": 1}), 2)
        assert ENCODED.entries == {}

    def test_buffered_writer_writes_definitions_piece_by_piece(self):
        """A cached definition does not skip the buffer flushes Caucho makes inside it.

        The definition starts past Caucho's flush threshold, so writing it moves the
        buffer start, and that decides how the blob after it is cut.
        """
        obj = HessianObject(TYPE, {"blob": b"\x01" * 100})
        args = ["s" * 8170, obj]
        plain = BufferedWriter2()
        plain.out += b"H\x02\x00C"
        plain.str_("store")
        plain.int_(len(args))
        for arg in args:
            plain.value(arg)
        assert ENCODED.entries == {}  # BufferedWriter2 neither reads nor fills the cache
        for _ in range(2):  # cold (the plain attempt fills the cache), then warm
            assert encode_call("store", args) == bytes(plain.out)
            assert (TYPE, ("blob",)) in ENCODED.entries
        assert decode_call(bytes(plain.out)).args == (args[0], obj)

    def test_types_are_bounded(self):
        """At most MAX_TYPES definitions are kept; bigger ones never."""
        for i in range(MAX_TYPES + 10):
            encode_value(HessianObject(f"T{i}", {"a": 1}), 2)
        assert len(ENCODED.entries) == MAX_TYPES
        assert ("T0", ("a",)) not in ENCODED.entries
        clear()
        encode_value(HessianObject(TYPE, {f"f{i:05d}": 0 for i in range(MAX_BYTES // 7)}), 2)
        assert ENCODED.entries == {}


VECTORS = load_vectors()
CASES = cases()


def encode(case: Case) -> bytes:
    """Our bytes for the value, call, reply or fault a golden case stands for."""
    if case.kind == "value":
        return encode_value(case.value, case.version)
    if case.kind == "call":
        return encode_call(case.method, case.args, case.version)
    if case.kind == "reply":
        return encode_reply(case.value, case.version)
    return encode_fault(case.value.code, case.value.message, case.value.detail, case.version)


def decode(case: Case, data: bytes) -> Any:
    """What our decoder makes of ``data``, in a form that compares by value."""
    if case.kind == "value":
        return canonical(decode_value(data, case.version))
    if case.kind == "call":
        call = decode_call(data)
        return call.method, call.version, canonical(call.args)
    try:
        return canonical(decode_reply(data))
    except Fault as fault:
        return canonical_fault(fault)


def golden_pass() -> list[tuple[bytes, Any]]:
    """Encode and decode every golden case; encodings are checked against Caucho's."""
    results = []
    for vector in VECTORS:
        case = CASES[vector.name]
        ours = encode(case)
        if vector.data is not None:
            assert ours == vector.data, vector.name
        else:
            assert vector.matches(ours), vector.name
        results.append((ours, decode(case, ours)))
    return results


def test_golden_vectors_cold_and_warm():
    """Every golden vector encodes to Caucho's bytes and decodes alike, cold then warm."""
    cold = golden_pass()
    assert PARSED.entries and ENCODED.entries
    assert golden_pass() == cold
