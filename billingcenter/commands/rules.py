"""``billingcenter rules``: not yet implemented."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    """Add the ``rules`` subcommand (none yet)."""
    del subparsers


__all__ = ["register", "argparse"]
