"""The product catalogue file (TOML): products orders may name, with their plans."""

from __future__ import annotations

import tomllib
from pathlib import Path

from billingcenter.config import ConfigError
from billingcenter.model import Product


def load_catalogue(path: Path) -> tuple[Product, ...]:
    """Read ``[[product]]`` entries (code, name, plans) from a TOML file."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"catalogue {path}: {exc}") from exc
    products = []
    for index, entry in enumerate(data.get("product", [])):
        code = entry.get("code")
        plans = entry.get("plans", [])
        if not isinstance(code, str) or not code.strip() or len(code) > 128:
            raise ConfigError(f"catalogue {path}: product #{index + 1} needs a code")
        if not isinstance(plans, list) or not all(isinstance(p, str) and p for p in plans):
            raise ConfigError(f"catalogue {path}: plans of {code!r} must be a list of strings")
        products.append(Product(code, str(entry.get("name", code)), frozenset(plans)))
    codes = [p.code for p in products]
    if len(set(codes)) != len(codes):
        raise ConfigError(f"catalogue {path}: a product code appears twice")
    return tuple(products)
