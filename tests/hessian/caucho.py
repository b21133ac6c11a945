"""Compile and run tests/java/golden/GoldenVectors.java against Debian's Caucho jar.

Regenerate the committed vectors after changing the Java program (needs javac, java and
``libhessian-java``)::

    python -m tests.hessian.caucho tests/hessian/golden/caucho-4.0.38.json
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.hessian.golden_cases import JAVA_SOURCE

HESSIAN_JAR = Path(os.environ.get("HESSIAN_JAR", "/usr/share/java/hessian.jar"))
INSTALL_HINT = "apt-get install libhessian-java openjdk-17-jdk-headless"
JAVA_OPENS = (
    "--add-opens", "java.base/java.lang=ALL-UNNAMED",
    "--add-opens", "java.base/java.util=ALL-UNNAMED",
    "--add-opens", "java.base/java.math=ALL-UNNAMED",
)


def missing() -> str | None:
    """Why the generator cannot run here, or None when javac, java and the jar are present."""
    for tool in ("javac", "java"):
        if shutil.which(tool) is None:
            return f"{tool} not found on PATH ({INSTALL_HINT})"
    if not HESSIAN_JAR.is_file():
        return f"Caucho's jar {HESSIAN_JAR} not found ({INSTALL_HINT})"
    return None


def generate(out: Path) -> None:
    """Compile GoldenVectors.java into a temp dir and have it write its vectors to ``out``."""
    with tempfile.TemporaryDirectory(prefix="golden-classes-") as classes:
        subprocess.run(
            ["javac", "-encoding", "UTF-8", "-cp", str(HESSIAN_JAR), "-d", classes,
             str(JAVA_SOURCE)],
            check=True, capture_output=True, text=True, timeout=300,
        )
        subprocess.run(
            ["java", *JAVA_OPENS, "-cp", os.pathsep.join([classes, str(HESSIAN_JAR)]),
             "golden.GoldenVectors", str(out)],
            check=True, capture_output=True, text=True, timeout=300,
        )


if __name__ == "__main__":
    reason = missing()
    if reason is not None:
        sys.exit(reason)
    generate(Path(sys.argv[1]))
