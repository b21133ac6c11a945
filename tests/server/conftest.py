"""Fixtures for tests that run the real server as a subprocess and call it over a socket.

* ``java_kit``: the Java toolchain, the contract jar built by ``interfaces/build.sh`` into a
  temp dir, and ``tests/java/interop`` compiled; it runs ``InteropClient`` and Caucho's own
  skeleton (``ReferenceServer``).  When javac/java/jar or Debian's Caucho jar are missing the
  tests skip with the reason, except with ``CI=true``, where they fail.
* ``open_server``: ``python -m billingcenter serve`` with no callers (auth off, loopback).
* ``auth_server``: the same with ``[caller:*]`` sections (HTTP Basic, per-caller methods).

Each server gets its own data dir (SQLite) and listens on a free loopback port, parsed from
its ``billingcenter listening on http://127.0.0.1:PORT/billing`` line on stdout.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import attrs
import pytest

from tests.support import unavailable

REPO = Path(__file__).resolve().parents[2]
INTEROP_SRC = REPO / "tests" / "java" / "interop"
BUILD_SH = REPO / "interfaces" / "build.sh"
INSTALL_HINT = "apt-get install libhessian-java openjdk-17-jdk-headless"
JAVA_OPENS = (
    "--add-opens", "java.base/java.lang=ALL-UNNAMED",
    "--add-opens", "java.base/java.util=ALL-UNNAMED",
    "--add-opens", "java.base/java.math=ALL-UNNAMED",
)
LISTENING = re.compile(r"billingcenter listening on (http://\S+)")
START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0

# Credentials of the auth_server fixture.  ASCII only: Caucho's HessianProxyFactory base64-
# encodes "user:password" one char per byte, so non-ASCII credentials cannot work.
ORDER_SYSTEM = ("order-system", "s3cret-order!")
REPORTING = ("reporting", "r3port")
ALL_METHODS = (
    "installOrder, updateOrderState, insertServiceOp, getTotalPrice, payCallback, "
    "changeAccountNum"
)


def _tail(path: Path, lines: int = 60) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no output)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty)"


# ---------------------------------------------------------------------------- Java


@attrs.frozen
class JavaKit:
    """A JVM with Caucho, the contract jar and the compiled interop classes."""

    java: str
    classpath: str
    api_jar: Path

    def command(self, main: str, *args: str) -> list[str]:
        """The command line that runs ``main`` with the interop classpath."""
        return [self.java, *JAVA_OPENS, "-Dfile.encoding=UTF-8", "-cp", self.classpath, main,
                *args]

    def run_client(
        self,
        url: str,
        prefix: str,
        mode: str = "default",
        scenario: str = "full",
        credentials: tuple[str, str] | None = None,
        timeout: float = 180.0,
    ) -> ClientRun:
        """Run InteropClient once and collect its lines."""
        args = ["--url", url, "--prefix", prefix, "--mode", mode, "--scenario", scenario]
        if credentials is not None:
            args += ["--user", credentials[0], "--password", credentials[1]]
        cmd = self.command("InteropClient", *args)
        try:
            proc = subprocess.run(cmd, capture_output=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            # Keep what it printed so far: the last check is the one that hung.
            return ClientRun(
                cmd, -1, _text(exc.stdout) + f"FAIL timeout the client ran over {timeout}s\n",
                _text(exc.stderr),
            )
        return ClientRun(cmd, proc.returncode, _text(proc.stdout), _text(proc.stderr))


def _text(data: bytes | str | None) -> str:
    if data is None:
        return ""
    return data if isinstance(data, str) else data.decode("utf-8", "replace")


@attrs.frozen
class ClientRun:
    """The outcome of one InteropClient run."""

    cmd: Sequence[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def checks(self) -> dict[str, str]:
        """Check name -> ``OK``/``FAIL``."""
        result = {}
        for line in self.stdout.splitlines():
            parts = line.split(" ", 2)
            if len(parts) >= 2 and parts[0] in ("OK", "FAIL"):
                result[parts[1]] = parts[0]
        return result

    def report(self) -> str:
        """Everything needed to see why a run failed."""
        return (f"$ {' '.join(self.cmd)}\nexit {self.returncode}\n--- stdout\n{self.stdout}"
                f"--- stderr\n{self.stderr}")


def _run(cmd: Sequence[str], what: str, **kwargs: object) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, **kwargs)  # type: ignore[call-overload]
    if proc.returncode != 0:
        pytest.fail(f"{what} failed (exit {proc.returncode}):\n$ {' '.join(map(str, cmd))}\n"
                    f"{proc.stdout}\n{proc.stderr}", pytrace=False)


@pytest.fixture(scope="session")
def java_kit(tmp_path_factory: pytest.TempPathFactory) -> JavaKit:
    """Build the contract jar and compile the interop client (skip/fail when Java is missing)."""
    tools = {name: shutil.which(name) for name in ("javac", "java", "jar")}
    hessian_jar = Path(os.environ.get("HESSIAN_JAR", "/usr/share/java/hessian.jar"))
    missing = [name for name, path in tools.items() if path is None]
    if not hessian_jar.is_file():
        missing.append(f"Caucho Hessian jar {hessian_jar}")
    if missing:
        unavailable(f"Java interop needs {', '.join(missing)}; {INSTALL_HINT}")

    build = tmp_path_factory.mktemp("api-jar")
    env = {**os.environ, "BUILD_DIR": str(build), "HESSIAN_JAR": str(hessian_jar)}
    _run(["bash", str(BUILD_SH)], "interfaces/build.sh", env=env)
    api_jar = build / "billingcenter-api.jar"
    if not api_jar.is_file():
        pytest.fail(f"interfaces/build.sh succeeded but {api_jar} does not exist")

    classes = tmp_path_factory.mktemp("interop-classes")
    compile_cp = os.pathsep.join([str(hessian_jar), str(api_jar)])
    sources = sorted(str(p) for p in INTEROP_SRC.glob("*.java"))
    _run([str(tools["javac"]), "--release", "11", "-encoding", "UTF-8", "-nowarn",
          "-cp", compile_cp, "-d", str(classes), *sources], "javac tests/java/interop")
    return JavaKit(
        java=str(tools["java"]),
        classpath=os.pathsep.join([str(hessian_jar), str(api_jar), str(classes)]),
        api_jar=api_jar,
    )


@attrs.define
class ReferenceServer:
    """Caucho's own HessianSkeleton serving the contract (the oracle for the client)."""

    proc: subprocess.Popen[bytes]
    url: str
    log: Path


@pytest.fixture(scope="session")
def reference_server(
    java_kit: JavaKit, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ReferenceServer]:
    """tests/java/interop/ReferenceServer on a free port, with user order-system."""
    workdir = tmp_path_factory.mktemp("reference-server")
    log = workdir / "out.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            java_kit.command("ReferenceServer", "0", *ORDER_SYSTEM),
            stdout=out, stderr=subprocess.STDOUT,
        )
    try:
        url = _wait_for_url(proc, log, re.compile(r"reference listening on (http://\S+)"),
                            "ReferenceServer")
        yield ReferenceServer(proc, url, log)
    finally:
        _stop(proc)


# ---------------------------------------------------------------------------- the server


@attrs.define
class ServerProcess:
    """A ``python -m billingcenter serve`` subprocess."""

    proc: subprocess.Popen[bytes]
    url: str
    stdout: Path
    stderr: Path
    data_dir: Path

    def logs(self) -> str:
        """The tails of the server's stdout and stderr, for failure messages."""
        return (f"--- server stdout ({self.stdout})\n{_tail(self.stdout)}\n"
                f"--- server stderr ({self.stderr})\n{_tail(self.stderr)}")


def _wait_for_url(
    proc: subprocess.Popen[bytes], stdout: Path, pattern: re.Pattern[str], what: str,
    stderr: Path | None = None,
) -> str:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        match = pattern.search(stdout.read_text(encoding="utf-8", errors="replace"))
        if match:
            return match.group(1)
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    code = proc.poll()
    _stop(proc)
    detail = f"--- stdout\n{_tail(stdout)}"
    if stderr is not None:
        detail += f"\n--- stderr\n{_tail(stderr)}"
    state = f"exited with {code}" if code is not None else f"not listening after {START_TIMEOUT}s"
    pytest.fail(f"{what} {state}:\n{detail}", pytrace=False)
    raise AssertionError("unreachable")


def _stop(proc: subprocess.Popen[bytes]) -> int | None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=STOP_TIMEOUT)
    return proc.returncode


def start_server(workdir: Path, config_text: str | None) -> ServerProcess:
    """Start the server with this config (None: no --config) and wait until it listens."""
    data_dir = workdir / "data"
    data_dir.mkdir(exist_ok=True)
    cmd = [sys.executable, "-m", "billingcenter", "serve",
           "--endpoint", "tcp:0:interface=127.0.0.1", "--data-dir", str(data_dir)]
    if config_text is not None:
        config = workdir / "billingcenter.ini"
        config.write_text(config_text, encoding="utf-8")
        cmd += ["--config", str(config)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO),
                                                       os.environ.get("PYTHONPATH")]))}
    stdout, stderr = workdir / "stdout.log", workdir / "stderr.log"
    with open(stdout, "wb") as out, open(stderr, "wb") as err:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=err,
                                stdin=subprocess.DEVNULL)
    url = _wait_for_url(proc, stdout, LISTENING, "billingcenter serve", stderr)
    return ServerProcess(proc, url, stdout, stderr, data_dir)


def hash_password(password: str) -> str:
    """A password hash made by the CLI, as an operator would make it."""
    proc = subprocess.run(
        [sys.executable, "-m", "billingcenter", "hash-password", password],
        cwd=REPO, capture_output=True, text=True, check=False,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    if proc.returncode != 0 or not proc.stdout.strip():
        pytest.fail(f"billingcenter hash-password failed (exit {proc.returncode}):\n"
                    f"{proc.stdout}\n{proc.stderr}", pytrace=False)
    return proc.stdout.strip().splitlines()[-1]


def _catalogue_section() -> str:
    return (f"[catalogue]\nfile = {REPO / 'conf' / 'catalogue.toml'}\n"
            "[roles]\nauthors = alice\nreviewers = bob\npublishers = dave\n")


def publish_shipped_rules(workdir: Path, config_text: str) -> None:
    """Import every conf/rules file as alice; bob reviews, dave publishes (the real CLI)."""
    config = workdir / "rules.ini"
    config.write_text(config_text, encoding="utf-8")
    data_dir = workdir / "data"
    data_dir.mkdir(exist_ok=True)
    base = [sys.executable, "-m", "billingcenter", "rules"]
    where = ["--config", str(config), "--data-dir", str(data_dir)]
    files = sorted(str(p) for p in (REPO / "conf" / "rules").glob("*.toml"))
    _run([*base, "import", *files, "--as", "alice", *where], "rules import", cwd=REPO)
    listing = subprocess.run([*base, "list", *where], capture_output=True, text=True,
                             check=True, cwd=REPO).stdout.splitlines()[1:]
    for name, version in (line.split()[:2] for line in listing):
        _run([*base, "review", name, version, "--as", "bob", *where], "rules review", cwd=REPO)
        _run([*base, "publish", name, version, "--as", "dave", *where], "rules publish",
             cwd=REPO)


@pytest.fixture(scope="session")
def open_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The server with no callers: auth off, loopback only; the shipped rules published."""
    workdir = tmp_path_factory.mktemp("server-open")
    publish_shipped_rules(workdir, _catalogue_section())
    server = start_server(workdir, _catalogue_section())
    try:
        yield server
    finally:
        _stop(server.proc)


@pytest.fixture(scope="session")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The server with two callers: order-system (every method), reporting (getTotalPrice)."""
    config = (
        _catalogue_section()
        + f"\n[caller:{ORDER_SYSTEM[0]}]\npassword_hash = {hash_password(ORDER_SYSTEM[1])}\n"
        + f"methods = {ALL_METHODS}\n"
        + f"\n[caller:{REPORTING[0]}]\npassword_hash = {hash_password(REPORTING[1])}\n"
        + "methods = getTotalPrice\n"
    )
    workdir = tmp_path_factory.mktemp("server-auth")
    publish_shipped_rules(workdir, config)
    server = start_server(workdir, config)
    try:
        yield server
    finally:
        _stop(server.proc)


@pytest.fixture(scope="session")
def callers() -> dict[str, tuple[str, str]]:
    """(user, password) of auth_server's callers, by role."""
    return {"order-system": ORDER_SYSTEM, "reporting": REPORTING}


@pytest.fixture
def run_prefix(request: pytest.FixtureRequest) -> str:
    """A key prefix unique to this test and run (keys stay well under 64 characters)."""
    name = re.sub(r"[^A-Za-z0-9]+", "", request.node.name)[-16:]
    return f"{name}-{os.getpid() % 100000}-{time.time_ns() % 10**9:09d}"
