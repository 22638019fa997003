"""Hostile clients against ``drain serve``, before authentication: what each one costs.

Usage (from the repository root)::

    .venv/bin/python -m bench.hostile [--database-url URL] [--only heads,slow,idle,trickle]

One fresh database on the target server (``--database-url``, else ``BENCH_DATABASE_URL``,
else a temporary embedded PostgreSQL), ``drain migrate``, then for each scenario a new
``drain serve`` (1 worker, HTTP Basic credentials set, 127.0.0.1 only) and a client that
never sends credentials:

- ``heads``: ``--head-connections`` connections (16) each send a request head that never
  ends, one header of ``--head-mb`` MB (8) in 64 KiB writes. Prints the service's RSS
  before, while the heads are held, and after they are closed, and what each connection
  was answered.
- ``slow``: one connection sends a head of 4, 8, 16, 32 MB in 2 KiB writes (TCP_NODELAY, a
  drain after each). Prints the service's CPU seconds per head: linear in the size when
  the head is capped, growing faster than the size when it is not.
- ``idle``: the service runs with ``ulimit -n`` lowered to ``--fd-limit`` (256); the client
  opens ``--idle`` (400) connections that send nothing and ``--idle // 2`` that send half a
  head. Prints the service's open file descriptors, whether ``GET /health`` and a
  ``POST /logs`` are answered meanwhile, how many of the attacker's connections the service
  closed after ``--wait`` seconds (8), and the service's log lines about connections.
- ``trickle``: a POST without credentials announces a 100 MB body; after the 401 it sends
  one body byte every 0.5 s for ``--trickle-s`` seconds (8). Prints whether the service
  still holds the connection (a response complete, the rest of a body never needed).

Every loop is bounded in count and time; only 127.0.0.1 is used; only the processes this
script started are stopped (by PID). Figures and their dates are in bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import socket
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import psutil  # type: ignore[import-untyped]

from bench.run import admin_server
from bench.service import Service, migrate
from testkit.pg import create_database, drop_database

USER, PASSWORD = "bench", "hostile-bench-password"
HEAD_START = b"POST /logs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/logplex-1\r\n"
MiB = 2**20


def _rss_mb(svc: Service) -> float:
    total = 0
    for p in svc.tree():
        with contextlib.suppress(psutil.NoSuchProcess):
            total += p.memory_info().rss
    return total / 1e6


def _cpu_s(svc: Service) -> float:
    total = 0.0
    for p in svc.tree():
        with contextlib.suppress(psutil.NoSuchProcess):
            t = p.cpu_times()
            total += t.user + t.system
    return total


def _fds(svc: Service) -> int:
    total = 0
    for p in svc.tree():
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            total += p.num_fds()
    return total


async def _quiet(svc: Service, *, settle_s: float = 0.3, limit_s: float = 30.0) -> None:
    """Wait until the service's CPU stops moving (it has worked through what it received)."""
    deadline = time.monotonic() + limit_s
    last = _cpu_s(svc)
    while time.monotonic() < deadline:
        await asyncio.sleep(settle_s)
        now = _cpu_s(svc)
        if now - last < 0.02:
            return
        last = now


async def _answer(reader: asyncio.StreamReader, timeout_s: float) -> str:
    """The status line the service sent, "closed" (EOF or reset), or "no answer"."""
    try:
        async with asyncio.timeout(timeout_s):
            line = await reader.readline()
    except TimeoutError:
        return "no answer"
    except OSError:
        return "closed"
    if not line:
        return "closed"
    return line.decode("latin-1").strip()


async def _get(port: int, path: str, timeout_s: float = 5.0) -> str:
    """``GET path`` on a new connection: the status line, or what went wrong."""
    try:
        async with asyncio.timeout(timeout_s):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                request = f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                writer.write(request.encode())
                await writer.drain()
                line = await reader.readline()
            finally:
                writer.close()
    except TimeoutError:
        return f"no answer in {timeout_s:g} s"
    except OSError as e:
        return f"{type(e).__name__}"
    return line.decode("latin-1").strip() or "closed"


async def _post_logs(port: int, timeout_s: float = 5.0) -> str:
    """A small POST /logs with the credentials: the status line, or what went wrong."""
    import base64

    auth = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    line = b"<134>1 2026-12-01T00:00:00+00:00 host app web.1 - hello\n"
    body = str(len(line)).encode() + b" " + line
    head = (
        f"POST /logs HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Basic {auth}\r\n"
        f"Content-Type: application/logplex-1\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    try:
        async with asyncio.timeout(timeout_s):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                writer.write(head + body)
                await writer.drain()
                status = await reader.readline()
            finally:
                writer.close()
    except TimeoutError:
        return f"no answer in {timeout_s:g} s"
    except OSError as e:
        return f"{type(e).__name__}"
    return status.decode("latin-1").strip() or "closed"


async def _send_head(
    port: int, total: int, write: int, *, drain_each: bool, hold: bool
) -> tuple[int, str, asyncio.StreamWriter | None]:
    """Send HEAD_START and one header of ``total`` bytes in ``write``-byte writes; never end
    the head; stop as soon as the service answers or closes. Returns (bytes sent, the
    answer, the writer when ``hold`` and the service left the connection open)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    answer = asyncio.create_task(_answer(reader, 600.0))
    sent = 0
    chunk = b"a" * write
    try:
        writer.write(HEAD_START + b"X-Pad: ")
        sent += len(HEAD_START) + 7
        while sent < total and not answer.done() and not writer.is_closing():
            writer.write(chunk)
            sent += write
            if drain_each or sent % MiB < write:
                await writer.drain()
                await asyncio.sleep(0)  # let the answer task see an answer
    except OSError:
        pass
    try:
        async with asyncio.timeout(1.0):
            status = await answer
    except TimeoutError:
        status = "no answer"
    if hold and status == "no answer":
        return sent, status, writer
    writer.close()
    return sent, status, None


async def scenario_heads(svc: Service, args: argparse.Namespace) -> None:
    await _quiet(svc)
    before = _rss_mb(svc)
    started = time.monotonic()
    results = await asyncio.gather(
        *(
            _send_head(svc.port, int(args.head_mb * MiB), 65536, drain_each=False, hold=True)
            for _ in range(args.head_connections)
        )
    )
    await _quiet(svc)
    held = _rss_mb(svc)
    elapsed = time.monotonic() - started
    for *_rest, writer in results:
        if writer is not None:
            writer.close()
    await asyncio.sleep(1.0)
    after = _rss_mb(svc)
    answers: dict[str, int] = {}
    for _sent, answer, _w in results:
        answers[answer] = answers.get(answer, 0) + 1
    sent_mb = sum(r[0] for r in results) / MiB
    print(
        f"heads: {args.head_connections} connections x {args.head_mb:g} MB header, never ended: "
        f"RSS {before:.0f} MB before, {held:.0f} MB holding them, {after:.0f} MB after closing; "
        f"{sent_mb:.1f} MB sent in {elapsed:.1f} s; answers {answers}"
    )


async def scenario_slow(svc: Service, args: argparse.Namespace) -> None:
    print("slow: one never-ended header in 2 KiB writes, service CPU per head")
    for mb in (4, 8, 16, 32):
        await _quiet(svc)
        cpu0 = _cpu_s(svc)
        t0 = time.monotonic()
        sent, answer, _w = await _send_head(svc.port, mb * MiB, 2048, drain_each=True, hold=False)
        await _quiet(svc)
        cpu = _cpu_s(svc) - cpu0
        print(
            f"  {mb} MB: service CPU {cpu:.2f} s ({cpu / mb:.2f} s/MB), {sent / MiB:.2f} MB sent "
            f"in {time.monotonic() - t0:.1f} s, answer {answer!r}"
        )


async def _open_idle(port: int, send: bytes) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    if send:
        writer.write(send)
        await writer.drain()
    return reader, writer


def _closed(reader: asyncio.StreamReader) -> bool:
    return reader.at_eof() or (reader.exception() is not None)


async def scenario_idle(svc: Service, args: argparse.Namespace) -> None:
    log_mark = svc.log_path.stat().st_size
    fds0 = _fds(svc)
    conns: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    refused = 0
    t0 = time.monotonic()
    half = HEAD_START + b"X-Half: "
    for i in range(args.idle + args.idle // 2):
        try:
            async with asyncio.timeout(2.0):
                conns.append(await _open_idle(svc.port, half if i >= args.idle else b""))
        except (OSError, TimeoutError):
            refused += 1
    opened_s = time.monotonic() - t0
    await asyncio.sleep(0.5)
    fds_peak = _fds(svc)
    health = await _get(svc.port, "/health")
    post = await _post_logs(svc.port)
    print(
        f"idle: ulimit -n {args.fd_limit}; {len(conns)} connections opened "
        f"({args.idle} silent, {args.idle // 2} half a head; {refused} failed) in {opened_s:.1f} s;"
        f" service fds {fds0} -> {fds_peak}"
    )
    print(f"  meanwhile: GET /health -> {health!r}; POST /logs -> {post!r}")
    # let the readers see EOFs: read in the background for the wait
    readers = [asyncio.create_task(_drain_reader(r, args.wait)) for r, _w in conns]
    await asyncio.sleep(args.wait)
    closed = sum(1 for t in readers if t.done() and t.result())
    for t in readers:
        t.cancel()
    health2 = await _get(svc.port, "/health")
    post2 = await _post_logs(svc.port)
    print(
        f"  after {args.wait:g} s: {closed} of {len(conns)} attacker connections closed by the "
        f"service; service fds {_fds(svc)}; GET /health -> {health2!r}; POST /logs -> {post2!r}"
    )
    for _r, w in conns:
        w.close()
    await asyncio.sleep(0.5)
    with svc.log_path.open("rb") as f:
        f.seek(log_mark)
        lines = [
            line.decode("utf-8", "replace")[:200]
            for line in f.read().splitlines()
            if b"onnection" in line or b"accept" in line or b"resource" in line
        ]
    print(f"  service log lines about connections: {len(lines)}")
    for line in lines[:6]:
        print(f"    {line}")


async def _drain_reader(reader: asyncio.StreamReader, limit_s: float) -> bool:
    """Read until EOF (True: the service closed it) or ``limit_s`` passes (False)."""
    try:
        async with asyncio.timeout(limit_s):
            while await reader.read(65536):
                pass
    except TimeoutError:
        return False
    except OSError:
        return True
    return True


async def scenario_trickle(svc: Service, args: argparse.Namespace) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", svc.port)
    writer.write(HEAD_START + b"Content-Length: 100000000\r\n\r\n" + b"x" * 1000)
    await writer.drain()
    status = await _answer(reader, 5.0)
    eof = asyncio.create_task(_drain_reader(reader, args.trickle_s + 1))
    sent = 0
    t0 = time.monotonic()
    with contextlib.suppress(OSError):
        while time.monotonic() - t0 < args.trickle_s and not eof.done():
            writer.write(b"x")
            await writer.drain()
            sent += 1
            await asyncio.sleep(0.5)
    held_s = time.monotonic() - t0
    closed = eof.done() and eof.result()
    eof.cancel()
    writer.close()
    print(
        f"trickle: answered {status!r}; then {sent} body bytes in {held_s:.1f} s: connection "
        + ("closed by the service" if closed else "still open")
    )


SCENARIOS = {
    "heads": scenario_heads,
    "slow": scenario_slow,
    "idle": scenario_idle,
    "trickle": scenario_trickle,
}


async def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench.hostile", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL"))
    ap.add_argument("--only", default=",".join(SCENARIOS), help="comma-separated scenarios")
    ap.add_argument("--head-connections", type=int, default=16)
    ap.add_argument("--head-mb", type=float, default=8.0)
    ap.add_argument("--fd-limit", type=int, default=256)
    ap.add_argument("--idle", type=int, default=400)
    ap.add_argument("--wait", type=float, default=8.0)
    ap.add_argument("--trickle-s", type=float, default=8.0)
    ap.add_argument(
        "--service-env", action="append", default=[], metavar="NAME=VALUE", help="extra env"
    )
    args = ap.parse_args(argv)
    chosen = [s for s in args.only.split(",") if s]
    unknown = [s for s in chosen if s not in SCENARIOS]
    if unknown:
        ap.error(f"unknown scenarios {unknown}; known: {list(SCENARIOS)}")
    # the client needs a descriptor per connection too
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    extra = dict(item.split("=", 1) for item in args.service_env)
    log_dir = Path(tempfile.mkdtemp(prefix="drain-hostile-logs-"))
    with admin_server(args.database_url) as (admin_url, _kind):
        dbname, db_url = await create_database(admin_url, prefix="drain_hostile")
        try:
            migrate(db_url)
            for name in chosen:
                env = {"DRAIN_USERNAME": USER, "DRAIN_PASSWORD": PASSWORD, **extra}
                svc = Service(
                    db_url,
                    extra_env=env,
                    log_path=log_dir / f"{name}.log",
                    fd_limit=args.fd_limit if name == "idle" else None,
                )
                await svc.start()
                try:
                    await SCENARIOS[name](svc, args)
                finally:
                    svc.stop()
        finally:
            await drop_database(admin_url, dbname)
    print(f"service logs: {log_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
