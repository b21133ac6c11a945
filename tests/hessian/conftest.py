"""Fixtures for the Hessian codec tests: the vectors Caucho's real library writes today."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.hessian import caucho
from tests.support import unavailable


@pytest.fixture(scope="session")
def caucho_vectors(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A vectors file freshly written by GoldenVectors.java and Caucho 4.0.38.

    Skips with the reason when javac, java or Debian's jar is missing, except with
    ``CI=true``, where that fails the test.
    """
    reason = caucho.missing()
    if reason is not None:
        unavailable(reason)
    out = tmp_path_factory.mktemp("golden") / "vectors.json"
    try:
        caucho.generate(out)
    except subprocess.CalledProcessError as exc:
        pytest.fail(f"GoldenVectors failed: {exc}\n{exc.stdout}\n{exc.stderr}", pytrace=False)
    return out
