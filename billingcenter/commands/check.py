"""``billingcenter check``: being built (issue 4); registers nothing yet."""

from __future__ import annotations

from typing import Any


def register(subparsers: Any) -> None:
    """Add ``check`` (not yet)."""
