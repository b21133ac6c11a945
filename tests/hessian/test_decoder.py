"""Unit tests for billingcenter.hessian.decoder."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billingcenter.hessian import (
    Call,
    DecodeError,
    Fault,
    HessianObject,
    TypedList,
    TypedMap,
    decode_call,
    decode_reply,
    decode_value,
)
from tests.hessian.golden_cases import canonical, load_vectors

H2_ADD = b"H\x02\x00C\x03add\x92\x91\x92"
C1_ADD = b"c\x01\x00m\x00\x03addI\x00\x00\x00\x01I\x00\x00\x00\x02z"

# Small Caucho messages of every kind, for the truncation and mutation tests.
SMALL_VECTORS = [v for v in load_vectors() if v.hex is not None and v.length <= 600]


def nested_lists(depth: int, version: int) -> bytes:
    """``depth`` lists, each holding the next; the innermost is empty."""
    if version == 2:
        return b"\x79" * (depth - 1) + b"\x78"
    return b"Vl\x00\x00\x00\x01" * (depth - 1) + b"Vl\x00\x00\x00\x00z" + b"z" * (depth - 1)


class TestDecodeCall:
    """decode_call: the three envelopes Caucho sends, a bare C, and malformed calls."""

    def test_hessian2_call(self):
        """An H 02 00 C call yields its method, arguments and version H2."""
        assert decode_call(H2_ADD) == Call("add", (1, 2), {}, "H2")

    def test_bare_c_call(self):
        """A Hessian 2 call without the H 02 00 header is accepted as version H2."""
        assert decode_call(b"C\x03add\x92\x91\x92") == Call("add", (1, 2), {}, "H2")

    def test_hessian1_call(self):
        """A c 01 00 call yields version c1."""
        assert decode_call(C1_ADD) == Call("add", (1, 2), {}, "c1")

    def test_c2_envelope(self):
        """A c 02 00 call (HessianProxyFactory's default) yields version c2."""
        assert decode_call(b"c\x02\x00m\x00\x04pingz") == Call("ping", (), {}, "c2")

    def test_hessian1_headers(self):
        """Hessian 1 call headers come back in Call.headers."""
        data = b"c\x01\x00H\x00\x02idS\x00\x01xm\x00\x04pingz"
        assert decode_call(data) == Call("ping", (), {"id": "x"}, "c1")

    def test_unicode_method_name(self):
        """A Hessian 1 method name length counts UTF-16 units, not bytes."""
        data = b"c\x02\x00m\x00\x02\xe8\xae\xa1\xe8\xb4\xb9z"
        assert decode_call(data).method == "计费"

    def test_bytearray_and_memoryview(self):
        """Any bytes-like input is accepted."""
        assert decode_call(bytearray(H2_ADD)) == decode_call(memoryview(H2_ADD))

    @pytest.mark.parametrize("data, message", [
        (b"", "truncated"),
        (b"X\x02\x00", "not a Hessian call"),
        (b"H\x03\x00C\x03add\x90", "unsupported Hessian version 3.0"),
        (b"H\x02\x00R\x90", "expected 'C'"),
        (b"c\x01\x00z", "expected 'm'"),
        (H2_ADD + b"\x90", "1 trailing bytes"),
        (C1_ADD + b"z", "1 trailing bytes"),
        (b"C\x91\x90", "expected a string"),
        (b"C\x03add\x01x", "expected an int"),
        (b"C\x03add\x8f", "argument count -1"),
        (b"C\x03addI\x7f\xff\xff\xff\x90", "argument count 2147483647"),
    ])
    def test_malformed(self, data: bytes, message: str):
        """Malformed calls raise DecodeError saying what is wrong."""
        with pytest.raises(DecodeError, match=message):
            decode_call(data)

    @pytest.mark.parametrize("vector", [v for v in SMALL_VECTORS if "/request" in v.name
                                        or v.name.startswith("call/")], ids=lambda v: v.name)
    def test_every_truncation_fails(self, vector):
        """Every proper prefix of a Caucho call raises DecodeError, nothing else."""
        data = vector.data
        for end in range(len(data)):
            with pytest.raises(DecodeError):
                decode_call(data[:end])


class TestPythonHessianClients:
    """Calls written by python-hessian (the DESIGN's baseline client) decode."""

    @pytest.mark.parametrize("version, envelope", [(1, "c1"), (2, "c2")])
    def test_python_hessian_call(self, version: int, envelope: str):
        """python-hessian's calls, with its list length of -1 and untyped maps, decode."""
        from pyhessian import encoder, protocol
        from pyhessian.data_types import long as py_long

        order = protocol.object_factory("com.example.Order", id=1, title="x")
        args = [1, "héllo😀", py_long(5), [1, 2], {"a": 1}, order, None,
                datetime(2024, 1, 1), protocol.Binary(b"ab"), "y" * 40000 + "😀"]
        data = encoder.encode_object(protocol.Call("store", args, version=version))
        expected = (1, "héllo😀", 5, [1, 2], {"a": 1},
                    HessianObject("com.example.Order", {"id": 1, "title": "x"}), None,
                    datetime(2024, 1, 1, tzinfo=UTC), b"ab", "y" * 40000 + "😀")
        assert decode_call(data) == Call("store", expected, {}, envelope)


class TestDecodeReply:
    """decode_reply: both reply versions, faults, and malformed replies."""

    def test_hessian1_reply(self):
        """An r 01 00 reply yields its value."""
        assert decode_reply(b"r\x01\x00I\x00\x00\x00\x03z") == 3

    def test_hessian1_reply_headers_are_skipped(self):
        """Hessian 1 reply headers are read and ignored."""
        assert decode_reply(b"r\x01\x00H\x00\x01aNS\x00\x02okz") == "ok"

    def test_hessian2_reply(self):
        """An H 02 00 R reply yields its value."""
        assert decode_reply(b"H\x02\x00R\x03abc") == "abc"

    def test_bare_r_reply(self):
        """A Hessian 2 reply without the version header is accepted."""
        assert decode_reply(b"R\x4e") is None

    def test_hessian1_fault(self):
        """An f fault is raised as Fault with code, message and detail."""
        data = (b"r\x01\x00fS\x00\x04codeS\x00\x01XS\x00\x07messageS\x00\x02hi"
                b"S\x00\x06detailI\x00\x00\x00\x07zz")
        with pytest.raises(Fault) as raised:
            decode_reply(data)
        assert (raised.value.code, raised.value.message, raised.value.detail) == ("X", "hi", 7)

    def test_hessian2_fault(self):
        """An F map is raised as Fault; a missing detail is None."""
        data = b"H\x02\x00FH\x04code\x01X\x07message\x02hiZ"
        with pytest.raises(Fault) as raised:
            decode_reply(data)
        assert (raised.value.code, raised.value.message, raised.value.detail) == ("X", "hi", None)

    def test_fault_null_message(self):
        """A null fault message (Caucho writes N for a null getMessage()) becomes ""."""
        with pytest.raises(Fault) as raised:
            decode_reply(b"H\x02\x00FH\x04code\x01X\x07messageNZ")
        assert raised.value.message == ""

    @pytest.mark.parametrize("data, message", [
        (b"r\x02\x00Nz", "unsupported Hessian reply version 2.0"),
        (b"r\x01\x00N", "truncated"),
        (b"r\x01\x00NN", "expected 'z'"),
        (b"H\x02\x00F\x91", "untyped map"),
        (b"H\x02\x00FH\x04code\x91Z", "fault code is a int"),
        (b"H\x02\x00C\x90", "not a Hessian reply"),
        (b"H\x02\x00R\x90\x90", "1 trailing bytes"),
    ])
    def test_malformed(self, data: bytes, message: str):
        """Malformed replies raise DecodeError saying what is wrong."""
        with pytest.raises(DecodeError, match=message):
            decode_reply(data)

    @pytest.mark.parametrize("vector", [v for v in SMALL_VECTORS if v.name.startswith("reply/")
                                        or v.name.endswith("/reply")], ids=lambda v: v.name)
    def test_every_truncation_fails(self, vector):
        """Every proper prefix of a Caucho reply raises DecodeError, never a Fault or value."""
        data = vector.data
        for end in range(len(data)):
            with pytest.raises(DecodeError):
                decode_reply(data[:end])


class TestStrings:
    """Strings: lengths in UTF-16 units, chunks, surrogate pairs and UTF-8 forms."""

    def test_compact_final_chunk(self):
        """An R chunk may end with a compact 0x00-0x1f piece (python-hessian drops it)."""
        assert decode_value(b"R\x00\x03abc\x02de", 2) == "abcde"

    def test_short_final_chunk(self):
        """An R chunk may end with a 0x30-0x33 piece."""
        assert decode_value(b"R\x00\x01a\x30\x20" + b"b" * 32, 2) == "a" + "b" * 32

    def test_long_string(self):
        """A 1024-unit S string decodes whole (python-hessian mangles strings of 1024+)."""
        assert decode_value(b"S\x04\x00" + b"x" * 1024, 2) == "x" * 1024

    def test_surrogate_pair_is_one_character(self):
        """A CESU-8 surrogate pair (two 3-byte units) becomes one Python character."""
        assert decode_value(b"\x02\xed\xa0\xbd\xed\xb8\x80", 2) == "😀"

    def test_surrogate_pair_across_chunks(self):
        """A surrogate pair split between two chunks is still joined."""
        assert decode_value(b"R\x00\x01\xed\xa0\xbd\x01\xed\xb8\x80", 2) == "😀"

    def test_four_byte_utf8(self):
        """Real 4-byte UTF-8 counts as two units and is accepted."""
        assert decode_value(b"\x03\xf0\x9f\x98\x80a", 2) == "😀a"

    def test_four_byte_utf8_cut_by_length(self):
        """A length that ends inside a 4-byte character's surrogate pair is rejected."""
        with pytest.raises(DecodeError, match="does not end on a character"):
            decode_value(b"\x01\xf0\x9f\x98\x80", 2)

    def test_lone_surrogate_is_kept(self):
        """A lone surrogate, legal in a Java string, stays as it was."""
        assert decode_value(b"\x01\xed\xa0\xbd", 2) == "\ud83d"

    def test_multibyte_then_compact_int(self):
        """A string ending in a 2-byte character is not extended into the next value's code."""
        assert decode_value(b"\x7a\x01\xc3\xa9\xa0", 2) == ["é", 16]

    def test_cjk_length_in_units(self):
        """Three-byte characters count one unit each."""
        assert decode_value(b"S\x00\x02\xe8\xae\xa1\xe8\xb4\xb9", 1) == "计费"

    def test_hessian1_chunks(self):
        """Hessian 1 s chunks end with an S chunk."""
        assert decode_value(b"s\x00\x02abS\x00\x01c", 1) == "abc"

    def test_hessian1_xml_is_a_string(self):
        """Hessian 1 x/X XML values decode as strings."""
        assert decode_value(b"x\x00\x01<X\x00\x01>", 1) == "<>"

    @pytest.mark.parametrize("data, version", [
        (b"\x01\xff", 2),
        (b"\x02\xc3a", 2),
        (b"S\xff\xffabc", 2),
        (b"R\x00\x01a\x91", 2),
        (b"s\x00\x01aI\x00\x00\x00\x01", 1),
    ])
    def test_malformed(self, data: bytes, version: int):
        """Invalid UTF-8, lengths past the end and bad chunk sequences raise DecodeError."""
        with pytest.raises(DecodeError):
            decode_value(data, version)


class TestScalars:
    """Numbers, dates and binaries in forms the golden vectors do not all reach."""

    @pytest.mark.parametrize("data, value", [
        (b"\x5f\x00\x00\x30\x39", 12.345),
        (b"\x5d\x80", -128.0),
        (b"\x5e\x80\x00", -32768.0),
        (b"\x38\x00\x00", -262144),
        (b"\xf0\x00", -2048),
        (b"\xd8", -8),
        (b"Y\x80\x00\x00\x00", -(2**31)),
    ])
    def test_hessian2_compact_numbers(self, data: bytes, value: float):
        """Caucho's compact double and long forms decode to the exact value."""
        assert decode_value(data, 2) == value

    def test_minute_date(self):
        """A 0x4b date counts minutes since the epoch and is aware UTC."""
        assert decode_value(b"\x4b\x01\xb1\x5d\xe0", 2) == datetime(2024, 1, 1, tzinfo=UTC)

    def test_date_out_of_python_range(self):
        """A date Python's datetime cannot hold raises DecodeError."""
        with pytest.raises(DecodeError, match="outside Python's datetime range"):
            decode_value(b"J\x7f\xff\xff\xff\xff\xff\xff\xff", 2)

    def test_binary_chunks(self):
        """An A chunk may end with a compact binary piece."""
        assert decode_value(b"A\x00\x02ab\x21c", 2) == b"abc"

    def test_hessian1_binary_chunks(self):
        """Hessian 1 b chunks end with a B chunk."""
        assert decode_value(b"b\x00\x01aB\x00\x01b", 1) == b"ab"

    @pytest.mark.parametrize("code", [0x40, 0x45, 0x47, 0x50])
    def test_reserved_codes(self, code: int):
        """Codes Hessian 2 reserves raise DecodeError."""
        with pytest.raises(DecodeError, match=f"unexpected code 0x{code:02x}"):
            decode_value(bytes([code]), 2)


class TestReferences:
    """References count every list, map and object, empty ones included."""

    def test_empty_list_counts(self):
        """An empty list takes a reference number (python-hessian forgets it)."""
        value = decode_value(b"\x7a\x78\x51\x91", 2)
        assert value == [[], []] and value[0] is value[1]

    def test_empty_map_counts(self):
        """An empty map takes a reference number."""
        value = decode_value(b"\x7b\x48\x5a\x48\x01k\x91\x5a\x51\x92", 2)
        assert value == [{}, {"k": 1}, {"k": 1}] and value[1] is value[2]

    def test_self_reference(self):
        """A reference to an enclosing list yields the same Python object."""
        value = decode_value(b"\x79\x51\x90", 2)
        assert value[0] is value

    def test_hessian1_reference(self):
        """Hessian 1 R counts lists and maps the same way."""
        data = b"Vl\x00\x00\x00\x03Vl\x00\x00\x00\x00zMt\x00\x00zR\x00\x00\x00\x02z"
        value = decode_value(data, 1)
        assert value == [[], {}, {}] and value[1] is value[2]

    @pytest.mark.parametrize("data, version", [
        (b"\x7a\x78\x51\x92", 2),
        (b"\x51\x90", 2),
        (b"R\x00\x00\x00\x00", 1),
        (b"Vl\x00\x00\x00\x01R\xff\xff\xff\xffz", 1),
    ])
    def test_undefined_reference(self, data: bytes, version: int):
        """A reference to a container not yet read raises DecodeError."""
        with pytest.raises(DecodeError, match="reference .* is undefined"):
            decode_value(data, version)


class TestTypesAndObjects:
    """Typed lists and maps, type references, class definitions and objects."""

    def test_type_reference(self):
        """A repeated list type is sent as the index of its first use."""
        data = b"\x7a\x71\x04[int\x91\x71\x90\x92"
        assert decode_value(data, 2) == [TypedList("[int", [1]), TypedList("[int", [2])]

    def test_open_typed_list(self):
        """A U list of unknown length ends at Z."""
        assert decode_value(b"U\x04[int\x91\x92Z", 2) == TypedList("[int", [1, 2])

    def test_open_untyped_list(self):
        """A W list of unknown length ends at Z."""
        assert decode_value(b"W\x91\x92Z", 2) == [1, 2]

    def test_typed_map(self):
        """An M map keeps its type."""
        data = b"M\x13java.util.Hashtable\x01k\x01vZ"
        assert decode_value(data, 2) == TypedMap("java.util.Hashtable", {"k": "v"})

    def test_object_fields_in_wire_order(self):
        """An object's fields keep the order of its class definition."""
        data = b"C\x01P\x92\x01b\x01a\x60\x91\x92"
        value = decode_value(data, 2)
        assert value == HessianObject("P", {"b": 1, "a": 2})
        assert list(value.fields) == ["b", "a"]

    def test_object_by_index(self):
        """An O object names its class definition by index."""
        assert decode_value(b"C\x01P\x91\x01aO\x90\x91", 2) == HessianObject("P", {"a": 1})

    def test_many_class_definitions_in_a_row(self):
        """A long run of class definitions is read without recursion."""
        data = b"C\x01P\x90" * 5000 + b"N"
        assert decode_value(data, 2) is None

    def test_hessian1_unknown_list_length(self):
        """A Hessian 1 list length of -1 means "unknown" and the list runs to z."""
        assert decode_value(b"Vl\xff\xff\xff\xffI\x00\x00\x00\x01z", 1) == [1]

    def test_hessian1_object(self):
        """A Hessian 1 map typed with a class name is an object."""
        data = b"Mt\x00\x01PS\x00\x01aI\x00\x00\x00\x01z"
        assert decode_value(data, 1) == HessianObject("P", {"a": 1})

    def test_hessian1_java_util_map(self):
        """A Hessian 1 map typed with a java.util class stays a typed map."""
        data = b"Mt\x00\x13java.util.HashtableI\x00\x00\x00\x01Nz"
        assert decode_value(data, 1) == TypedMap("java.util.Hashtable", {1: None})

    @pytest.mark.parametrize("data, version, message", [
        (b"\x71\x91", 2, "type reference 1 is undefined"),
        (b"\x71\x78", 2, "expected a type"),
        (b"\x60", 2, "undefined class definition 0"),
        (b"C\x01PI\x7f\xff\xff\xff", 2, "field count"),
        (b"H\x78\x91Z", 2, "cannot be a Python dict key"),
        (b"Mt\x00\x01PI\x00\x00\x00\x01Nz", 1, "not a string"),
    ])
    def test_malformed(self, data: bytes, version: int, message: str):
        """Bad type references, class definitions, keys and field names raise DecodeError."""
        with pytest.raises(DecodeError, match=message):
            decode_value(data, version)


class TestLimits:
    """Depth limits and declared lengths cannot exhaust the stack or memory."""

    @pytest.mark.parametrize("version", [1, 2])
    def test_depth_at_limit(self, version: int):
        """Nesting exactly max_depth containers deep decodes."""
        value = decode_value(nested_lists(64, version), version)
        for _ in range(63):
            value = value[0]
        assert value == []

    @pytest.mark.parametrize("version", [1, 2])
    def test_depth_over_limit(self, version: int):
        """One container deeper than max_depth raises DecodeError."""
        with pytest.raises(DecodeError, match="nesting deeper than max_depth=64"):
            decode_value(nested_lists(65, version), version)

    def test_custom_depth(self):
        """max_depth is configurable per call."""
        with pytest.raises(DecodeError, match="max_depth=2"):
            decode_call(b"C\x04echo\x91\x79\x79\x78", max_depth=2)

    def test_depth_beyond_python_stack(self):
        """Nesting past Python's recursion limit is a DecodeError, not a RecursionError."""
        with pytest.raises(DecodeError):
            decode_value(b"\x57" * 100000, 2, max_depth=10**9)

    @pytest.mark.parametrize("data, version", [
        (b"XI\x7f\xff\xff\xff", 2),
        (b"\x56\x04[intI\x7f\xff\xff\xff", 2),
        (b"B\xff\xff\x00", 2),
        (b"Vl\x7f\xff\xff\xff", 1),
        (b"B\xff\xff", 1),
    ])
    def test_absurd_lengths(self, data: bytes, version: int):
        """Lengths larger than the message fail at once, before allocating anything."""
        start = time.perf_counter()
        with pytest.raises(DecodeError):
            decode_value(data, version)
        assert time.perf_counter() - start < 0.1

    @pytest.mark.parametrize("version", [1, 2])
    def test_version_must_be_1_or_2(self, version: int):
        """decode_value refuses a version other than 1 or 2."""
        with pytest.raises(ValueError, match="must be 1 or 2"):
            decode_value(b"N", version + 2)


class TestFuzz:
    """Whatever the bytes, the decoder returns a value or raises DecodeError."""

    @settings(max_examples=400, deadline=1000)
    @given(st.binary(max_size=200))
    def test_arbitrary_bytes(self, data: bytes):
        """Random bytes never raise anything but DecodeError."""
        for decode in (decode_call, decode_reply, lambda d: decode_value(d, 1),
                       lambda d: decode_value(d, 2)):
            try:
                decode(data)
            except (DecodeError, Fault):
                pass

    @settings(max_examples=400, deadline=1000)
    @given(st.sampled_from(SMALL_VECTORS), st.data())
    def test_mutated_caucho_messages(self, vector, data):
        """Caucho messages with one byte changed decode or raise DecodeError only."""
        raw = bytearray(vector.data)
        index = data.draw(st.integers(0, len(raw) - 1))
        raw[index] = data.draw(st.integers(0, 255))
        kind = vector.name.split("/")[0]
        try:
            if kind == "value":
                decode_value(bytes(raw), 1 if "/h1/" in vector.name else 2)
            elif kind == "call" or vector.name.endswith("/request"):
                decode_call(bytes(raw))
            else:
                decode_reply(bytes(raw))
        except (DecodeError, Fault):
            pass


def test_canonical_helper_sees_sharing():
    """The test helper tells shared objects from equal copies (the decoder preserves sharing)."""
    shared: list[int] = []
    assert canonical([shared, shared]) != canonical([[], []])
