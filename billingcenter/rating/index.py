"""Index of a rule set: which rules could hold for a record, found by dictionary look-ups.

A rule whose condition says ``call_type = "MOC"`` (or ``call_type = ["MOC", "CFW"]``)
cannot hold for a record whose ``call_type`` is anything else, or missing.  The index
is a small tree: each branch looks one such attribute up and leads to the rules that
could still hold -- the rules that accept that value and the rules that do not test
the attribute at all -- kept in file order, so the first rule whose full condition
holds is still the first match of the whole set.  A leaf is that ordered tuple, each
entry ``(mode bit, test, rule)`` where ``test`` leaves out the equality tests the path
to the leaf has already settled.

The tree is built once per rule set; branching stops when no attribute narrows a
list of more than :data:`LEAF_SIZE` rules.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, TypeAlias

from billingcenter.rating.predicates import Test, all_of

if TYPE_CHECKING:
    from billingcenter.rating.model import Rule

LEAF_SIZE = 3

Entry: TypeAlias = "tuple[int, Test, Rule]"
Leaf: TypeAlias = "tuple[Entry, ...]"


class Branch:
    """Look ``attribute`` up in ``children``; missing or unknown values go to ``fallback``."""

    __slots__ = ("attribute", "children", "fallback")

    def __init__(self, attribute: str, children: dict[str, Node], fallback: Node) -> None:
        self.attribute = attribute
        self.children = children
        self.fallback = fallback


Node: TypeAlias = "Branch | Leaf"

_MASKS: dict[frozenset[enum.Enum], int] = {}


def mode_mask(modes: frozenset[enum.Enum]) -> int:
    """The bits of a set of modes (memoised: the sets in use are few)."""
    mask = _MASKS.get(modes)
    if mask is None:
        mask = 0
        for mode in modes:
            mask |= _bit(mode)
        if len(_MASKS) < 256:
            _MASKS[modes] = mask
    return mask


def build_index(rules: Sequence[Rule]) -> Node:
    """The index tree of ``rules`` (in file order)."""
    return _build(tuple(rules), frozenset(), frozenset())


def candidates(node: Node, attributes: Mapping[str, str]) -> Leaf:
    """The entries, in file order, of the rules that could hold for ``attributes``."""
    while type(node) is Branch:
        node = node.children.get(attributes.get(node.attribute), node.fallback)  # type: ignore[arg-type]
    return node  # type: ignore[return-value]


def _bit(mode: enum.Enum) -> int:
    return 1 << [m.value for m in type(mode)].index(mode.value)


def _build(rules: tuple[Rule, ...], used: frozenset[str], settled: frozenset[str]) -> Node:
    if len(rules) <= LEAF_SIZE:
        return _leaf(rules, settled)
    best: tuple[tuple[int, int], str, dict[str, tuple[Rule, ...]], tuple[Rule, ...]] | None
    best = None
    for attribute in sorted(_attributes(rules) - used):
        children, fallback = _split(rules, attribute)
        sizes = [len(c) for c in children.values()] + [len(fallback)]
        score = (max(sizes), sum(sizes))
        if max(sizes) < len(rules) and (best is None or score < best[0]):
            best = (score, attribute, children, fallback)
    if best is None:
        return _leaf(rules, settled)
    _, attribute, children, fallback = best
    deeper = used | {attribute}
    return Branch(
        attribute,
        {value: _build(subset, deeper, settled | {attribute})
         for value, subset in children.items()},
        _build(fallback, deeper, settled),
    )


def _leaf(rules: tuple[Rule, ...], settled: frozenset[str]) -> Leaf:
    """Entries whose tests skip ``settled`` attributes: the path proved them."""
    return tuple((_bit(rule.price.mode), _residual(rule, settled), rule) for rule in rules)


def _residual(rule: Rule, settled: frozenset[str]) -> Test:
    when = rule.when
    if not when.checks or not settled & set(when.equals):
        return when.test
    return all_of([(name, test) for name, test in when.checks
                   if not (name in settled and name in when.equals)])


def _attributes(rules: tuple[Rule, ...]) -> frozenset[str]:
    return frozenset(name for rule in rules for name in rule.when.equals)


def _split(
    rules: tuple[Rule, ...], attribute: str
) -> tuple[dict[str, tuple[Rule, ...]], tuple[Rule, ...]]:
    values = sorted({v for rule in rules for v in rule.when.equals.get(attribute, ())})
    children = {
        value: tuple(
            rule for rule in rules
            if attribute not in rule.when.equals or value in rule.when.equals[attribute]
        )
        for value in values
    }
    fallback = tuple(rule for rule in rules if attribute not in rule.when.equals)
    return children, fallback
