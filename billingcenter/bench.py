"""Benchmarks: ``python -m billingcenter.bench`` (or ``scripts/bench``) prints figures.

1. Read-only Hessian calls, each next to a plain ``twisted.web`` resource answering
   the same request bytes with the same reply bytes: ``getTotalPrice`` on
   ``billingcenter serve``, and a DTO echoed by the Hessian resource alone.  Each
   server runs alone in its own process; the load comes from this process over
   keep-alive loopback connections.
2. ``insertServiceOp`` committed to MariaDB by ``billingcenter serve`` at 1, 8 and
   32 concurrent keep-alive connections, every call a new record.

Figures are printed, never asserted: this is a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from typing import Any, cast

from billingcenter.hessian import HessianObject, Long
from billingcenter.hessian.encoder import encode_call

PACKAGE = "org.billingcenter.api."
WHEN = datetime(2026, 11, 1, tzinfo=UTC)
KEY_WIDTH = 12


def http_request(body: bytes, path: bytes = b"/billing") -> bytes:
    """One keep-alive POST with ``body``."""
    return (b"POST " + path + b" HTTP/1.1\r\nHost: bench\r\nContent-Type: application/x-hessian"
            b"\r\nContent-Length: %d\r\n\r\n" % len(body)) + body


def receipt_call() -> bytes:
    """The read-only call: a Receipt in, the same Receipt back (see ``_echo_server``)."""
    receipt = HessianObject(PACKAGE + "Receipt",
                            {"key": "op-1", "status": "ACCEPTED", "recordedAt": WHEN})
    return encode_call("echoReceipt", [receipt], "H2")


def usage_template(order_id: str) -> tuple[bytes, int]:
    """An insertServiceOp body whose opId is a fixed-width counter at the returned offset."""
    marker = "#" * KEY_WIDTH
    op = HessianObject(PACKAGE + "ServiceOp", {
        "opId": marker, "orderId": order_id, "productCode": "SMS-NOTIFY", "itemCode": "sms",
        "userId": "bench-user", "payerId": None, "quantity": Long(1), "occurredAt": WHEN,
        "attributes": {"callType": "local"},
    })
    body = encode_call("insertServiceOp", [op], "H2")
    return body, body.index(marker.encode())


async def _connection(host: str, port: int, make_body: Any, deadline: float,
                      counts: list[int], errors: list[str]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < deadline:
            writer.write(http_request(make_body()))
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
            reply = await reader.readexactly(length)
            if not head.startswith(b"HTTP/1.1 200") or reply[3:4] not in (b"R", b"F"):
                errors.append(head.split(b"\r\n", 1)[0].decode() + " " + repr(reply[:80]))
                return
            counts[0] += 1
    finally:
        writer.close()


def load(host: str, port: int, make_body: Any, connections: int, seconds: float) -> float:
    """Drive ``connections`` keep-alive connections for ``seconds``; return calls/s."""
    counts: list[int] = [0]
    errors: list[str] = []

    async def main() -> float:
        deadline = time.perf_counter() + seconds
        start = time.perf_counter()
        await asyncio.gather(*(
            _connection(host, port, make_body, deadline, counts, errors)
            for _ in range(connections)))
        return time.perf_counter() - start

    elapsed = asyncio.run(main())
    if errors:
        raise RuntimeError(f"bench calls failed: {errors[0]}")
    return counts[0] / elapsed


def _start(argv: list[str], env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env=env)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = re.search(r":(\d+)/billing", line)
    if not match:
        proc.kill()
        raise RuntimeError(f"server did not start: {line!r}")
    return proc, int(match.group(1))


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


def _serve_fixed(kind: str, reply_hex: str) -> None:
    """Run one bench server in this process: ``hessian`` (our resource) or ``plain``."""
    from twisted.internet import reactor as global_reactor
    from twisted.web import resource, server

    from billingcenter.api.methods import Method
    from billingcenter.resource import HessianResource, make_site

    if kind == "hessian":
        echo = Method("echoReceipt", ("Receipt",), lambda service, args: args[0])
        site: Any = make_site(HessianResource(None, {"echoReceipt": echo}), 1 << 20)
    else:
        reply = bytes.fromhex(reply_hex)

        class Plain(resource.Resource):
            isLeaf = True

            def render_POST(self, request: Any) -> bytes:
                request.content.read()
                request.setHeader(b"content-type", b"application/x-hessian")
                return reply

        root = resource.Resource()
        root.putChild(b"billing", cast(resource.IResource, Plain()))
        site = server.Site(root)
        site.log = lambda request: None
    reactor: Any = global_reactor
    port = reactor.listenTCP(0, site, interface="127.0.0.1")
    print(f"listening on http://127.0.0.1:{port.getHost().port}/billing", flush=True)
    reactor.run()


def price_call() -> bytes:
    """getTotalPrice: read-only (it answers NOT_IMPLEMENTED until the rating work lands)."""
    request = HessianObject(PACKAGE + "PriceRequest", {
        "payerId": "bench-payer", "productCode": "SMS-NOTIFY", "planCode": "SMS-PER-USE",
        "orderId": None, "quantity": Long(10), "days": 0, "accountNum": 0, "at": WHEN,
        "attributes": {}})
    return encode_call("getTotalPrice", [request], "H2")


def _fetch_reply(port: int, body: bytes) -> bytes:
    from billingcenter.client import HessianClient

    client = HessianClient(f"http://127.0.0.1:{port}/billing")
    try:
        return client.call_raw(body)
    finally:
        client.close()


def _compare(label: str, ours: list[str], body: bytes, seconds: float,
             connections: int) -> None:
    """Run ``ours`` then a plain resource answering the same bytes; print both rates."""
    rates = {}
    proc, port = _start(ours)
    try:
        reply = _fetch_reply(port, body)
        load("127.0.0.1", port, lambda: body, connections, 1.0)  # warm up
        rates["ours"] = load("127.0.0.1", port, lambda: body, connections, seconds)
    finally:
        _stop(proc)
    proc, port = _start([sys.executable, "-m", "billingcenter.bench", "--serve", "plain",
                         "--reply-hex", reply.hex()])
    try:
        load("127.0.0.1", port, lambda: body, connections, 1.0)
        rates["plain"] = load("127.0.0.1", port, lambda: body, connections, seconds)
    finally:
        _stop(proc)
    ratio = rates["ours"] / rates["plain"]
    print(f"  {label}")
    print(f"    plain twisted.web resource, same bytes : {rates['plain']:8.0f} calls/s")
    print(f"    billingcenter                          : {rates['ours']:8.0f} calls/s"
          f"  ({ratio:.2f} of plain; target >= 0.85)")


def _publish_shipped_rules(data_dir: str) -> None:
    """Publish conf/rules into the embedded database of ``data_dir``."""
    from pathlib import Path

    from billingcenter.config import REPO_CONF, Roles
    from billingcenter.ledger import migrate
    from billingcenter.ledger.engine import create_engine, default_sqlite_url
    from billingcenter.ledger.rules import RuleStore

    url = default_sqlite_url(Path(data_dir))
    migrate.upgrade(url)
    store = RuleStore(create_engine(url), Roles(frozenset({"alice"}), frozenset({"bob"}),
                                                frozenset({"dave"})))
    now = datetime.now(UTC)
    texts = [p.read_text(encoding="utf-8") for p in sorted((REPO_CONF / "rules").glob("*.toml"))]
    for imported in store.import_versions(texts, "alice", now):
        version = imported.version
        store.review(version.rule_set, version.version, "bob", now)
        store.publish(version.rule_set, version.version, "dave", now)


def bench_read(seconds: float, connections: int) -> None:
    """Print calls/s of read-only calls: ours vs a plain twisted.web resource."""
    print(f"read-only calls, {connections} keep-alive connections, {seconds:.0f} s each:")
    with tempfile.TemporaryDirectory() as tmp:
        _publish_shipped_rules(tmp)
        _compare("getTotalPrice on `billingcenter serve` (SQLite default, shipped rules)",
                 [sys.executable, "-m", "billingcenter", "serve", "--endpoint",
                  "tcp:0:interface=127.0.0.1", "--data-dir", tmp],
                 price_call(), seconds, connections)
    _compare("a DTO in, the DTO out, through the Hessian resource alone (codec + dispatch)",
             [sys.executable, "-m", "billingcenter.bench", "--serve", "hessian"],
             receipt_call(), seconds, connections)


def _mysql(sql: str, url_db: str) -> None:
    import pymysql

    conn = pymysql.connect(host="127.0.0.1", user="root", password="", autocommit=True)
    try:
        with conn.cursor() as cur:
            for statement in sql.format(db=url_db).split(";"):
                if statement.strip():
                    cur.execute(statement)
    finally:
        conn.close()


def bench_insert(seconds: float, levels: list[int], database: str) -> None:
    """Print insertServiceOp calls/s committed to MariaDB at each concurrency level."""
    from billingcenter.client import HessianClient
    from billingcenter.ledger import migrate

    _mysql("DROP DATABASE IF EXISTS {db}; CREATE DATABASE {db} CHARACTER SET utf8mb4", database)
    url = f"mysql+pymysql://root@127.0.0.1:3306/{database}"
    migrate.upgrade(url)
    with tempfile.TemporaryDirectory() as tmp:
        proc, port = _start([sys.executable, "-m", "billingcenter", "serve", "--endpoint",
                             "tcp:0:interface=127.0.0.1", "--database-url", url,
                             "--data-dir", tmp])
        try:
            client = HessianClient(f"http://127.0.0.1:{port}/billing")
            client.call("installOrder", HessianObject(PACKAGE + "Order", {
                "orderId": "bench-order", "payerId": "bench-payer", "userId": "bench-user",
                "productCode": "SMS-NOTIFY", "planCode": "SMS-PER-USE", "activatedAt": WHEN,
                "accountNum": 0}))
            client.close()
            template, offset = usage_template("bench-order")
            counter = [0]

            def make_body() -> bytes:
                counter[0] += 1
                key = b"%0*d" % (KEY_WIDTH, counter[0])
                return template[:offset] + key + template[offset + KEY_WIDTH:]

            print(f"insertServiceOp committed to MariaDB ({database}), {seconds:.0f} s each:")
            for level in levels:
                rate = load("127.0.0.1", port, make_body, level, seconds)
                print(f"  {level:3d} connections : {rate:8.0f} calls/s")
        finally:
            _stop(proc)
    _mysql("DROP DATABASE IF EXISTS {db}", database)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks and print their figures."""
    parser = argparse.ArgumentParser(prog="billingcenter-bench", description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--read-connections", type=int, default=8)
    parser.add_argument("--levels", default="1,8,32")
    parser.add_argument("--database", default="billingcenter_bench")
    parser.add_argument("--only", choices=("read", "insert"))
    parser.add_argument("--serve", choices=("hessian", "plain"), help=argparse.SUPPRESS)
    parser.add_argument("--reply-hex", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        _serve_fixed(args.serve, args.reply_hex)
        return 0
    print(f"billingcenter bench, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
          f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    if args.only in (None, "read"):
        bench_read(args.seconds, args.read_connections)
    if args.only in (None, "insert"):
        bench_insert(args.seconds, [int(n) for n in args.levels.split(",")], args.database)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
