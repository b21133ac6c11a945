"""What every Caucho golden vector means in Python, keyed by the names GoldenVectors.java uses.

The vectors file (``golden/caucho-4.0.38.json``) holds only bytes; this module holds the
Python value each one must decode to and encode from. ``Long`` marks Java longs: it equals
the plain ``int`` the decoder returns, and tells the encoder to write a long.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from billingcenter.hessian import Fault, HessianObject, Long, TypedList, TypedMap

VECTORS_FILE = Path(__file__).parent / "golden" / "caucho-4.0.38.json"
JAVA_SOURCE = Path(__file__).parents[1] / "java" / "golden" / "GoldenVectors.java"

MINUTE_MS = 1704067200000  # 2024-01-01T00:00:00Z
POJO = "golden.GoldenVectors$Pojo"


def at(millis: int) -> datetime:
    """The aware UTC datetime ``millis`` ms after the epoch."""
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=millis)


def text(n: int) -> str:
    """GoldenVectors.text: ``n`` chars cycling through a-z0-9."""
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    return (alphabet * (n // len(alphabet) + 1))[:n]


def mixed_text(n: int) -> str:
    """GoldenVectors.mixedText: ``n`` chars cycling through CJK, Latin-1 and ASCII."""
    alphabet = "计费中心aé"
    return (alphabet * (n // len(alphabet) + 1))[:n]


def blob(n: int) -> bytes:
    """GoldenVectors.blob: ``n`` bytes of (7 i + 3) mod 256."""
    return bytes((7 * i + 3) & 0xFF for i in range(n))


def pojo(count: int = 7) -> HessianObject:
    """GoldenVectors.pojo(), fields in Caucho's order (primitives and java.lang first)."""
    return HessianObject(POJO, {
        "name": "张三",
        "count": count,
        "amount": Long(1234567890123),
        "active": True,
        "ratio": 0.5,
        "optionalAmount": Long(42),
        "created": at(MINUTE_MS + 123),
        "tags": ["a", "b"],
        "attrs": TypedMap("java.util.LinkedHashMap", {"x": 1}),
        "child": None,
    })


def bare_pojo(name: str | None = None, count: int = 0) -> HessianObject:
    """A Pojo with only ``name`` and ``count`` set."""
    return HessianObject(POJO, {
        "name": name, "count": count, "amount": Long(0), "active": False, "ratio": 0.0,
        "optionalAmount": None, "created": None, "tags": None, "attrs": None, "child": None,
    })


def illegal_state() -> HessianObject:
    """The IllegalStateException GoldenServiceImpl.fail throws; its cause is itself."""
    frame = HessianObject("java.lang.StackTraceElement", {
        "classLoaderName": None, "moduleName": None, "moduleVersion": None,
        "declaringClass": "golden.GoldenServiceImpl", "methodName": "fail",
        "fileName": "GoldenVectors.java", "lineNumber": 42, "format": 0,
    })
    error = HessianObject("java.lang.IllegalStateException", {
        "detailMessage": "boom <&>",
        "cause": None,
        "stackTrace": TypedList("[java.lang.StackTraceElement", [frame]),
        "suppressedExceptions": TypedList("java.util.Collections$EmptyList", []),
    })
    error.fields["cause"] = error
    return error


def coded_exception() -> HessianObject:
    """GoldenException("E_LIMIT", ...) built without stack trace or suppression."""
    return HessianObject("golden.GoldenException", {
        "code": "E_LIMIT", "detailMessage": "limit exceeded", "cause": None,
        "stackTrace": None, "suppressedExceptions": None,
    })


@dataclass
class Case:
    """The meaning of one vector: a value, a call, a reply value or a fault."""

    kind: str  # "value" | "call" | "reply" | "fault"
    version: Any  # 1 | 2 for values and replies, "c1" | "c2" | "H2" for calls
    value: Any = None
    method: str = ""
    args: tuple[Any, ...] = field(default_factory=tuple)


# ---------------------------------------------------------------------------- values

INTS = [0, 1, -16, -17, 47, 48, -2048, -2049, 2047, 2048, -262144, -262145, 262143, 262144,
        -(2**31), 2**31 - 1]
LONGS = [0, 1, -8, -9, 15, 16, -2048, -2049, 2047, 2048, -262144, -262145, 262143, 262144,
         -(2**31), 2**31 - 1, -(2**31) - 1, 2**31, -(2**63), 2**63 - 1]
DOUBLES = {  # Java's Double.toString -> value
    "0.0": 0.0, "-0.0": -0.0, "1.0": 1.0, "-1.0": -1.0, "2.0": 2.0, "-128.0": -128.0,
    "127.0": 127.0, "-129.0": -129.0, "128.0": 128.0, "-32768.0": -32768.0,
    "32767.0": 32767.0, "-32769.0": -32769.0, "32768.0": 32768.0, "12.25": 12.25,
    "0.001": 0.001, "1.5": 1.5, "-2.75": -2.75, "0.1": 0.1, "3.14159": 3.14159,
    "2147483.647": 2147483.647, "2147483.648": 2147483.648, "1.0E300": 1e300,
    "1.0E-300": 1e-300, "4.9E-324": 5e-324, "1.7976931348623157E308": 1.7976931348623157e308,
    "NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf,
}
DATES = [0, MINUTE_MS, MINUTE_MS + 123, MINUTE_MS + 1000, -60000, -1, 253402300740000,
         253402300799999]
STRING_LENGTHS = [1, 31, 32, 1023, 1024, 1025, 4096, 32767, 32768, 32769, 65536, 70000]
BLOB_LENGTHS = [0, 1, 15, 16, 255, 1023, 1024, 4093, 8189, 8190, 70000]


def _values() -> dict[str, Any]:
    values: dict[str, Any] = {"null": None, "true": True, "false": False}
    values.update({f"int/{i}": i for i in INTS})
    values.update({f"long/{i}": Long(i) for i in LONGS})
    values.update({f"double/{name}": d for name, d in DOUBLES.items()})
    values.update({f"date/{ms}": at(ms) for ms in DATES})
    values["string/empty"] = ""
    values.update({f"string/ascii/{n}": text(n) for n in STRING_LENGTHS})
    values.update({
        "string/chinese": "计费中心",
        "string/latin1": "héllo wörld",
        "string/emoji": "😀",
        "string/emoji_mixed": "a😀b计",
        "string/nul": "a\x00b",
        "string/mixed/1024": mixed_text(1024),
        "string/mixed/40000": mixed_text(40000),
        "string/emoji_at_chunk_boundary": text(0x7FFF) + "😀" + text(5),
        "string/emoji_after_chunk_boundary": text(0x8000) + "😀" + text(5),
    })
    values.update({f"binary/{n}": blob(n) for n in BLOB_LENGTHS})
    values.update({
        "list/empty": [],
        "list/mixed": [1, "two", Long(3), 4.5, True, None],
        "list/seven": list(range(7)),
        "list/eight": list(range(8)),
        "list/nested": [[1, 2], [], ["x"]],
        "list/linked": TypedList("java.util.LinkedList", ["a", "b"]),
        "list/int_array": TypedList("[int", [1, 2, 3]),
        "list/int_array_empty": TypedList("[int", []),
        "list/int_array_ten": TypedList("[int", list(range(10))),
        "list/long_array": TypedList("[long", [1, 2]),
        "list/double_array": TypedList("[double", [1.5, 0.0]),
        "list/boolean_array": TypedList("[boolean", [True, False]),
        "list/string_array": TypedList("[string", ["a", "b"]),
        "list/object_array": TypedList("[object", [1, "a"]),
        "map/empty": {},
        "map/one": {"a": 1},
        "map/int_keys": {1: "one", 2: "two"},
        "map/hashtable": TypedMap("java.util.Hashtable", {"k": "v"}),
        "map/treemap": TypedMap("java.util.TreeMap", {"a": 1, "b": Long(2)}),
        "map/linked": TypedMap("java.util.LinkedHashMap", {"z": 1, "a": 2}),
        "map/nested": {"list": [1], "map": {"x": None}},
    })
    shared: list[Any] = [1]
    shared_map = {"k": 1}
    self_list: list[Any] = ["me"]
    self_list.append(self_list)
    self_map: dict[str, Any] = {}
    self_map["self"] = self_map
    values.update({
        "ref/same_list_twice": [shared, shared],
        "ref/after_empty_containers": [[], {}, TypedList("[int", []), shared_map, shared_map],
        "ref/self_list": self_list,
        "ref/self_map": self_map,
    })
    same = pojo()
    parent = pojo()
    parent.fields["child"] = bare_pojo("second", -1)
    loop = bare_pojo("loop")
    loop.fields["child"] = loop
    values.update({
        "object/pojo": pojo(),
        "object/pojo_nulls": bare_pojo(),
        "object/two_pojos": [pojo(), bare_pojo("second", -1)],
        "object/same_pojo_twice": [same, same],
        "object/nested_pojo": parent,
        "object/self_pojo": loop,
        "object/pojo_then_map": [pojo(), {"a": 1}],
    })
    values.update({f"random/{seed}": random_message(seed) for seed in range(12)})
    values["binary/after_text_split"] = [text(8100), blob(100)]
    values["binary/after_text_quirk"] = [text(8172), blob(14)]
    return values


class Rng:
    """GoldenVectors.Rng: the same 64-bit LCG, step for step."""

    def __init__(self, seed: int) -> None:
        self.x = seed

    def next(self, bound: int) -> int:
        """The next int in [0, bound)."""
        self.x = (self.x * 6364136223846793005 + 1442695040888963407) & (2**64 - 1)
        return (self.x >> 33) % bound


def random_item(r: Rng, depth: int) -> Any:
    """GoldenVectors.randomItem, drawing the same numbers in the same order."""
    kind = r.next(9 if depth > 1 else 11)
    if kind == 0:
        return r.next(1 << 20) - (1 << 19)
    if kind == 1:
        return Long(r.next(1 << 30) * 4096)
    if kind == 2:
        return text(r.next(3000))
    if kind == 3:
        return mixed_text(r.next(3000))
    if kind == 4:
        return blob(r.next(3000))
    if kind == 5:
        return at(MINUTE_MS + r.next(100000) * 1000)
    if kind == 6:
        return r.next(1000000) / 1000.0
    if kind == 7:
        return None if r.next(2) == 0 else True
    if kind == 8:
        return pojo(r.next(100))
    if kind == 9:
        return [random_item(r, depth + 1) for _ in range(r.next(6))]
    return TypedMap("java.util.LinkedHashMap",
                    {f"k{i}": random_item(r, depth + 1) for i in range(r.next(4))})


def random_message(seed: int) -> list[Any]:
    """The list GoldenVectors.randomMessages writes for ``seed``."""
    r = Rng(seed)
    return [random_item(r, 0) for _ in range(40)]


# ---------------------------------------------------------------------------- messages


def mixed_args() -> tuple[Any, ...]:
    """GoldenVectors.mixedArgs()."""
    return ("s", 5, Long(7), 2.5, at(MINUTE_MS), None, ["x", 1], pojo())


def _calls() -> dict[str, tuple[str, tuple[Any, ...]]]:
    shared = [1, 2]
    same = pojo()
    return {
        "add": ("add", (1, 2)),
        "no_args": ("ping", ()),
        "mixed": ("store", mixed_args()),
        "unicode_method": ("计费", ("😀",)),
        "shared_arg": ("pair", (shared, shared)),
        "same_arg_twice": ("pair", (same, same)),
        "long_string": ("echo", (text(70000),)),
        "binary": ("upload", (blob(20000),)),
    }


RUNTIME_FAULT = ("ServiceException", "boom &lt;&amp;&gt;")
STORE_RESULT = "s572.51704067200000null2张三"


def _replies() -> dict[str, Any]:
    """Skeleton answers: a value, or a Fault (its detail built fresh per use)."""
    return {
        "int": 3,
        "null": None,
        "string": "计费😀",
        "long": Long(6),
        "date": at(MINUTE_MS + 5),
        "pojo": pojo(),
        "pojo_list": [pojo(0), pojo(1)],
        "binary": blob(70000),
        "binary_small": blob(100),
        "text": text(70000),
        "text_then_binary": [text(9000), blob(20000)],
        "text_then_small_binary": [text(8168), blob(20)],
        "mixed_then_binary": [mixed_text(40000), blob(100)],
        "runtime_exception": Fault(*RUNTIME_FAULT, illegal_state()),
        "coded_exception": Fault("ServiceException", "limit exceeded", coded_exception()),
        "unknown_method": Fault("NoSuchMethodException", "The service has no method named: nope"),
    }


PROXY_MODES = {"default": "c2", "hessian2_request": "H2", "hessian1_reply": "c1"}


def _proxy_calls() -> dict[str, tuple[str, tuple[Any, ...], Any]]:
    return {
        "add": ("add", (1, 2), 3),
        "ping": ("ping", (), None),
        "echo": ("echo", ("计费😀",), "计费😀"),
        "echo_pojo": ("echoPojo", (pojo(),), pojo()),
        "store": ("store", mixed_args(), STORE_RESULT),
        "fail": ("fail", ("boom <&>",), Fault(*RUNTIME_FAULT, illegal_state())),
        "missing": ("missing", (1,), Fault("NoSuchMethodException",
                                           "The service has no method named: missing")),
    }


def _reply_case(version: int, result: Any) -> Case:
    if isinstance(result, Fault):
        return Case("fault", version, result)
    return Case("reply", version, result)


def cases() -> dict[str, Case]:
    """Every vector name GoldenVectors.java writes, with its meaning."""
    found: dict[str, Case] = {}
    for name, value in _values().items():
        found[f"value/h1/{name}"] = Case("value", 1, value)
    for name, value in _values().items():  # separate objects: no sharing between vectors
        found[f"value/h2/{name}"] = Case("value", 2, value)
    for version in ("c1", "c2", "H2"):
        for name, (method, args) in _calls().items():
            found[f"call/{version}/{name}"] = Case("call", version, method=method, args=args)
        for name, result in _replies().items():
            found[f"reply/{version}/{name}"] = _reply_case(1 if version == "c1" else 2, result)
    found["reply/H2/arg_count_mismatch"] = Case("fault", 2, Fault(
        "NoSuchMethod", "method public abstract int golden.GoldenVectors$GoldenService.add(int,int)"
        " argument length mismatch, received length=1"))
    for mode, version in PROXY_MODES.items():
        for name, (method, args, result) in _proxy_calls().items():
            found[f"proxy/{mode}/{name}/request"] = Case("call", version, method=method, args=args)
            found[f"proxy/{mode}/{name}/reply"] = _reply_case(1 if version == "c1" else 2, result)
    overloaded = "store_string_int_long_double_date_Object_List_GoldenVectors$Pojo"
    found["proxy/overload/store/request"] = Case("call", "c2", method=overloaded, args=mixed_args())
    found["proxy/overload/store/reply"] = Case("reply", 2, STORE_RESULT)
    return found


# ---------------------------------------------------------------------------- the file


@dataclass(frozen=True)
class Vector:
    """One named byte string Caucho wrote: inline when small, by SHA-256 when large."""

    name: str
    length: int
    hex: str | None = None
    sha256: str | None = None

    @property
    def data(self) -> bytes | None:
        """The bytes, when the file stores them."""
        return None if self.hex is None else bytes.fromhex(self.hex)

    def matches(self, data: bytes) -> bool:
        """Whether ``data`` is exactly these bytes."""
        if len(data) != self.length:
            return False
        if self.hex is not None:
            return data.hex() == self.hex
        return hashlib.sha256(data).hexdigest() == self.sha256


def load_vectors(path: Path = VECTORS_FILE) -> list[Vector]:
    """The vectors in a GoldenVectors.java output file, in file order."""
    document = json.loads(path.read_text(encoding="utf-8"))
    return [Vector(**entry) for entry in document["vectors"]]


# ---------------------------------------------------------------------------- comparing


def canonical(value: Any, seen: dict[int, int] | None = None) -> Any:
    """A comparable tree of ``value``: exact types, wire order, shared objects as ("ref", n).

    Plain ``==`` would call ``1 == True`` equal, ignore dict order, and recurse forever
    on the self-referencing objects Java exceptions contain.
    """
    seen = {} if seen is None else seen
    if value is None or type(value) in (bool, str, bytes):
        return (type(value).__name__, value)
    if isinstance(value, int) and not isinstance(value, bool):
        return ("int", int(value))
    if type(value) is float:
        return ("nan",) if math.isnan(value) else ("float", value)
    if type(value) is datetime:
        return ("date", value, value.utcoffset())
    if type(value) is tuple:
        return ("list", [canonical(item, seen) for item in value])
    key = id(value)
    if key in seen:
        return ("ref", seen[key])
    seen[key] = len(seen)
    if type(value) is list:
        return ("list", [canonical(item, seen) for item in value])
    if type(value) is dict:
        return ("map", [(canonical(k, seen), canonical(v, seen)) for k, v in value.items()])
    if type(value) is TypedList:
        return ("typed list", value.type, [canonical(item, seen) for item in value.items])
    if type(value) is TypedMap:
        return ("typed map", value.type,
                [(canonical(k, seen), canonical(v, seen)) for k, v in value.entries.items()])
    if type(value) is HessianObject:
        return ("object", value.type,
                [(name, canonical(v, seen)) for name, v in value.fields.items()])
    raise TypeError(f"no canonical form for {type(value).__name__}")


def canonical_fault(fault: Fault) -> Any:
    """A comparable form of a fault's code, message and detail."""
    return (fault.code, fault.message, canonical(fault.detail))
