"""Shared test helpers: the rule that real services are mandatory in CI."""

from __future__ import annotations

import os

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(reason: str) -> None:
    """Fail loudly in CI, skip with the reason elsewhere, when a real part is missing."""
    if IN_CI:
        pytest.fail(f"{reason} (mandatory when CI=true)", pytrace=False)
    pytest.skip(reason)
