"""The codec against bytes written by Caucho's own Java library (golden vectors)."""

from __future__ import annotations

from pathlib import Path

import pytest

from billingcenter.hessian import (
    Fault,
    decode_call,
    decode_reply,
    decode_value,
    encode_call,
    encode_fault,
    encode_reply,
    encode_value,
)
from tests.hessian.golden_cases import (
    Case,
    Vector,
    canonical,
    canonical_fault,
    cases,
    load_vectors,
)

VECTORS = load_vectors()
CASES = cases()
IDS = [vector.name for vector in VECTORS]


def encode(case: Case) -> bytes:
    """Our bytes for the value, call, reply or fault a vector stands for."""
    if case.kind == "value":
        return encode_value(case.value, case.version)
    if case.kind == "call":
        return encode_call(case.method, case.args, case.version)
    if case.kind == "reply":
        return encode_reply(case.value, case.version)
    fault = case.value
    return encode_fault(fault.code, fault.message, fault.detail, case.version)


def caucho_bytes(vector: Vector) -> bytes:
    """Caucho's bytes: stored inline, or (large vectors) ours once proven equal by SHA-256."""
    data = vector.data
    if data is not None:
        return data
    ours = encode(CASES[vector.name])
    if not vector.matches(ours):
        pytest.fail(f"{vector.name}: only a digest is stored and our encoder's bytes differ")
    return ours


def first_difference(ours: bytes, theirs: bytes) -> str:
    """Where two byte strings part, with a little context."""
    index = next((i for i, (a, b) in enumerate(zip(ours, theirs, strict=False)) if a != b),
                 min(len(ours), len(theirs)))
    start = max(index - 8, 0)
    return (f"first difference at byte {index} (lengths {len(ours)} vs {len(theirs)}): "
            f"ours {ours[start:index + 16].hex(' ')} / caucho {theirs[start:index + 16].hex(' ')}")


class TestVectorFile:
    """The committed vectors file and the Python meanings of its vectors."""

    def test_every_vector_has_a_meaning(self):
        """Each vector GoldenVectors.java writes has exactly one Python case, and vice versa."""
        assert sorted(IDS) == sorted(CASES)
        assert len(IDS) == len(set(IDS))

    def test_covers_every_call_envelope(self):
        """The file holds calls in all three envelopes HessianProxyFactory can send."""
        assert {CASES[n].version for n in IDS if n.endswith("/request")} == {"c1", "c2", "H2"}

    @pytest.mark.java
    def test_caucho_writes_the_committed_vectors(self, caucho_vectors: Path):
        """Caucho 4.0.38 run today writes exactly the vectors committed in the repository."""
        committed = {vector.name: vector for vector in VECTORS}
        fresh = {vector.name: vector for vector in load_vectors(caucho_vectors)}
        changed = sorted(name for name in committed.keys() | fresh.keys()
                         if committed.get(name) != fresh.get(name))
        assert changed == []


class TestEncoder:
    """Our encoder against Caucho's HessianOutput, Hessian2Output and HessianSkeleton."""

    @pytest.mark.parametrize("vector", VECTORS, ids=IDS)
    def test_writes_caucho_bytes(self, vector: Vector):
        """Our encoder writes exactly the bytes Caucho wrote for this vector."""
        ours = encode(CASES[vector.name])
        if vector.data is not None:
            assert ours == vector.data, first_difference(ours, vector.data)
        else:
            assert vector.matches(ours), f"{len(ours)} bytes, Caucho wrote {vector.length}"


class TestDecoder:
    """Our decoder against Caucho's bytes."""

    @pytest.mark.parametrize("vector", VECTORS, ids=IDS)
    def test_reads_caucho_bytes(self, vector: Vector):
        """Our decoder reads Caucho's bytes back to the vector's Python value."""
        case = CASES[vector.name]
        data = caucho_bytes(vector)
        if case.kind == "value":
            assert canonical(decode_value(data, case.version)) == canonical(case.value)
        elif case.kind == "call":
            call = decode_call(data)
            assert (call.method, call.version, call.headers) == (case.method, case.version, {})
            assert canonical(call.args) == canonical(case.args)
        elif case.kind == "reply":
            assert canonical(decode_reply(data)) == canonical(case.value)
        else:
            with pytest.raises(Fault) as raised:
                decode_reply(data)
            assert canonical_fault(raised.value) == canonical_fault(case.value)
