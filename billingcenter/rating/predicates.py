"""Compiled tests: one attribute's test, and the closure testing several at once.

Shared by ``conditions`` (which compiles a rule's ``when`` table) and ``index`` (which
recombines a rule's tests without the ones its place in the index already settled).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

Test = Callable[[Mapping[str, str]], bool]
ValueTest = Callable[[str | None], bool]  # None: the record lacks the attribute
Check = tuple[str, ValueTest]  # (attribute, test of its value)


def all_of(checks: Sequence[Check]) -> Test:
    """One closure that holds when every (attribute, test) holds; unrolled when short."""
    if not checks:
        return always
    if len(checks) == 1:
        ((k1, t1),) = checks
        return lambda a: t1(a.get(k1))
    if len(checks) == 2:
        (k1, t1), (k2, t2) = checks
        return lambda a: t1(a.get(k1)) and t2(a.get(k2))
    if len(checks) == 3:
        (k1, t1), (k2, t2), (k3, t3) = checks
        return lambda a: t1(a.get(k1)) and t2(a.get(k2)) and t3(a.get(k3))
    frozen = tuple(checks)

    def every(attributes: Mapping[str, str]) -> bool:
        get = attributes.get
        for key, test in frozen:
            if not test(get(key)):
                return False
        return True

    return every


def always(attributes: Mapping[str, str]) -> bool:
    """The test of an empty condition: it always holds."""
    return True
