"""ruff and mypy, configured in pyproject.toml, are part of the test suite."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import unavailable

REPO = Path(__file__).resolve().parent.parent


def _run(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, capture_output=True,
                          text=True, timeout=600)


@pytest.mark.parametrize("tool, args", [
    ("ruff", ("check", "billingcenter", "tests")),
    ("mypy", ()),
])
def test_clean(tool, args):
    """The package and tests pass the linters (the package strictly typed)."""
    if shutil.which(tool) is None and _run(tool, "--version").returncode != 0:
        unavailable(f"{tool} is not installed (pip install -e '.[test]')")
    result = _run(tool, *args)
    assert result.returncode == 0, result.stdout + result.stderr
