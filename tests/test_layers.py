"""The import direction between the package's layers, written down and checked."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "billingcenter"

# module (or package) -> the billingcenter modules it may import (itself always allowed)
CORE = {"billingcenter.errors", "billingcenter.model", "billingcenter.money",
        "billingcenter.intake", "billingcenter.rating"}
ALLOWED = {
    "billingcenter.rating": {"billingcenter.errors", "billingcenter.model",
                             "billingcenter.money"},
    "billingcenter.hessian": set(),
    "billingcenter.money": set(),
    "billingcenter.errors": set(),
    "billingcenter.model": set(),
    "billingcenter.intake": {"billingcenter.errors", "billingcenter.model"},
    "billingcenter.ledger": CORE,
    # A job run now and again in the daemon (twisted only).
    "billingcenter.periodic": set(),
    "billingcenter.jobs": CORE | {"billingcenter.ledger", "billingcenter.periodic"},
    "billingcenter.service": CORE | {"billingcenter.ledger", "billingcenter.jobs"},
    "billingcenter.api": CORE | {"billingcenter.hessian"},
    "billingcenter.config": {"billingcenter.intake"},
    "billingcenter.auth": {"billingcenter.config"},
    "billingcenter.catalogue": {"billingcenter.config", "billingcenter.model"},
    "billingcenter.client": {"billingcenter.hessian"},
    # Outbound calls (chargeAccount, feedbackUser): the outbox and its Twisted client.
    "billingcenter.outbound": CORE | {"billingcenter.hessian", "billingcenter.ledger",
                                      "billingcenter.config", "billingcenter.api",
                                      "billingcenter.periodic"},
    "billingcenter.resource": CORE | {"billingcenter.api", "billingcenter.hessian",
                                      "billingcenter.auth", "billingcenter.config"},
}
# Pure layers import no I/O framework.
PURE = ("billingcenter.hessian", "billingcenter.money", "billingcenter.errors",
        "billingcenter.model", "billingcenter.intake", "billingcenter.api",
        "billingcenter.rating")
IO_LIBRARIES = ("twisted", "sqlalchemy", "pymysql", "alembic", "socket", "http")


def _modules() -> dict[str, set[str]]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        name = ".".join(rel.parts).removesuffix(".__init__")
        imports = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imports.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imports.add(node.module)
        found[name] = imports
    return found


def _layer(name: str) -> str | None:
    for layer in sorted(ALLOWED, key=len, reverse=True):
        if name == layer or name.startswith(layer + "."):
            return layer
    return None


def _within(target: str, allowed: set[str]) -> bool:
    return any(target == a or target.startswith(a + ".") for a in allowed)


def test_imports_follow_the_layers() -> None:
    """Every module imports only the layers below it."""
    breaches = []
    for name, imports in _modules().items():
        layer = _layer(name)
        if layer is None:
            continue  # wiring (cli, tap, bench, commands) may import anything
        allowed = ALLOWED[layer] | {layer}
        for target in imports:
            if target.startswith("billingcenter") and target != "billingcenter" and not _within(
                target, allowed
            ):
                breaches.append(f"{name} imports {target}")
    assert breaches == []


def test_pure_layers_import_no_io() -> None:
    """The codec, the core and the contract import no I/O library."""
    breaches = [
        f"{name} imports {target}"
        for name, imports in _modules().items()
        if _layer(name) in PURE
        for target in imports
        if target.split(".")[0] in IO_LIBRARIES
    ]
    assert breaches == []


def test_every_module_is_placed() -> None:
    """A new module must be given a layer (or be wiring) so the check stays complete."""
    wiring = {"billingcenter", "billingcenter.cli", "billingcenter.tap",
              "billingcenter.__main__", "billingcenter.bench"}
    unplaced = sorted(n for n in _modules() if _layer(n) is None and n not in wiring
                      and not n.startswith("billingcenter.commands"))
    assert unplaced == []
