"""POST latency at low and at high load, and a run of Heroku's log-shuttle into the drain.

Usage (from the repository root)::

    .venv/bin/python -m bench.latency                                # low + high load
    LOG_SHUTTLE=/path/to/log-shuttle .venv/bin/python -m bench.latency   # + log-shuttle
    .venv/bin/python -m bench.latency --log-shuttle /path/to/log-shuttle --skip low,high

The server is ``--database-url``, else ``BENCH_DATABASE_URL``, else a throw-away embedded
PostgreSQL; the URL must be a superuser's (a fresh database ``drain_bench_<random>`` is
created, migrated with ``drain migrate``, emptied before each section and dropped at the
end). ``drain serve`` runs with 1 worker on 127.0.0.1 (bench/service.py). Sections:

1. **low load**: one small batch at a time: ``--n`` (200) sequential POSTs over one
   keep-alive connection, each the next as soon as the previous one is answered, with
   bodies of 1 and of 10 event frames (``bench.gen.make_event_body``). An app that logs
   little gets such POSTs from Logplex; log-shuttle's are up to ``-batch-size`` lines.
2. **small batches, 8 connections**: closed loop, bodies of 50 events, as
   ``log-shuttle -num-outlets 8 -batch-size 50`` posts when it is backed up.
3. **high load**: ``bench.run``'s service phase, with ``bench.run --quick``'s plan (the 64
   bodies of ~100 KiB, 32 connections, warm-up 1 s, closed loop 6 s, open loop at 80 % of
   that rate 5 s): the same figures as ``bench.run --quick``'s "drain serve, 1 worker" rows.
4. **log-shuttle** (only with ``--log-shuttle PATH`` or ``LOG_SHUTTLE``: a local benchmark
   with a binary built outside this repository, not a CI test): the drain gets
   ``DRAIN_USERNAME``/``DRAIN_PASSWORD`` and log-shuttle posts to
   ``http://USER:PASSWORD@127.0.0.1:PORT/logs`` with ``-num-outlets 8 -batch-size 50
   -stats-interval 100ms``; ``--shuttle-lines`` (10,000) lines ``@[bench.shuttle]
   {"n":i}`` are written to its stdin, either as fast as the pipe takes them (rate 0, like
   ``cat file | log-shuttle``) or paced at ``--shuttle-rates`` lines per second; a rate
   with ``/block`` adds ``-drop=false`` (log-shuttle blocks its input instead of
   dropping). Printed: rows stored in ``raw_events`` (and whether each ``n`` is stored
   once), the seconds from the first line written to the last batched line stored, and
   log-shuttle's
   own account from its stats lines (stdout): ``lines.read``, ``lines.batched``,
   ``lines.dropped`` (its buffer of ``-back-buff`` 50 batches was full: reported to the
   drain as ``Error L12: N messages dropped since ...`` and ``Logplex-Drop-Count``),
   ``msg.lost`` (gave up after retries: ``Error L13``, ``Logplex-Lost-Count``), POST
   p99; and how many POSTs reached the drain with a not-event line (the L12/L13 reports;
   from the drain's ``batch`` log lines). After the lines, once all lines log-shuttle
   batched are stored, one more line (``@[bench.shuttle.end]``) is written so that a drop
   count still pending in log-shuttle goes out with its POST.

Every POST is bounded by Logplex's 5 s time-out; every wait here is bounded in time.
Only processes started here are stopped, by PID.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import secrets
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import orjson

from bench.gen import make_bodies, make_event_body
from bench.loadgen import Result, percentile, prepare, run_load
from bench.run import LoadPlan, admin_server, describe_server, git_commit, phase_service, reset
from bench.service import Service, migrate
from testkit.pg import create_database, drop_database

#: log-shuttle's flags for the run (the issue's).
SHUTTLE_FLAGS = ("-num-outlets", "8", "-batch-size", "50")
SHUTTLE_TAG = "bench.shuttle"
_STAT = re.compile(rb"(\S+?)=(\S+)")


def _ms(values: Sequence[float], q: float) -> str:
    return f"{percentile(values, q) * 1e3:.1f}"


async def _stored(db_url: str, tag: str | None = None) -> tuple[int, int]:
    """(rows in raw_events, distinct payloads) — of ``tag`` only when given."""
    conn = await asyncpg.connect(db_url)
    try:
        where = "WHERE tag = $1" if tag else ""
        args = (tag,) if tag else ()
        row = await conn.fetchrow(
            f"SELECT count(*) AS n, count(DISTINCT payload) AS d FROM raw_events {where}", *args
        )
        assert row is not None
        return int(row["n"]), int(row["d"])
    finally:
        await conn.close()


# ----------------------------------------------------------------------------- low load


@dataclass(slots=True)
class Low:
    """One low-load series: ``n`` sequential POSTs of ``events`` events each."""

    events: int
    result: Result
    stored: int


async def low_load(
    db_url: str, log_dir: Path, n: int, sizes: Sequence[int], service_env: dict[str, str]
) -> list[Low]:
    """One service; for each size, ``n`` POSTs one after the other on one connection."""
    await reset(db_url)
    svc = Service(db_url, extra_env=service_env, log_path=log_dir / "serve-low.log")
    await svc.start()
    out: list[Low] = []
    try:
        for size in sizes:
            now = datetime.now(UTC)
            warm = make_event_body(size, now=now, tag="bench.warmup")
            body = make_event_body(size, now=now, tag=f"bench.low{size}")
            await run_load(
                prepare([warm], host="127.0.0.1", port=svc.port),
                port=svc.port,
                connections=1,
                max_requests=10,
            )
            res = await run_load(
                prepare([body], host="127.0.0.1", port=svc.port),
                port=svc.port,
                connections=1,
                duration_s=120.0,
                max_requests=n,
            )
            stored, _ = await _stored(db_url, f"bench.low{size}")
            out.append(Low(size, res, stored))
    finally:
        svc.stop()
    return out


async def small_batches(
    db_url: str, log_dir: Path, service_env: dict[str, str], *, seconds: float = 6.0
) -> tuple[Result, int]:
    """Closed loop, 8 connections, 50-event bodies (log-shuttle backed up); (result, stored)."""
    await reset(db_url)
    svc = Service(db_url, extra_env=service_env, log_path=log_dir / "serve-small.log")
    await svc.start()
    try:
        now = datetime.now(UTC)
        body = make_event_body(50, now=now, tag="bench.small")
        prepared = prepare([body], host="127.0.0.1", port=svc.port)
        await run_load(prepared, port=svc.port, connections=8, duration_s=1.0)  # warm-up
        await reset(db_url)
        res = await run_load(
            prepared, port=svc.port, connections=8, duration_s=seconds, max_requests=200_000
        )
    finally:
        svc.stop()
    stored, _ = await _stored(db_url, "bench.small")
    return res, stored


# ----------------------------------------------------------------------------- log-shuttle


@dataclass(slots=True)
class ShuttleRun:
    """What one log-shuttle run did; counts are lines (log-shuttle's "messages")."""

    rate: float
    block: bool
    lines: int
    feed_s: float
    delivered_s: float
    stored: int
    distinct: int
    stats: dict[str, float]
    post_p99_s: float | None
    posts_with_reports: int
    report_lines: int
    lost_upstream_counted: int
    stderr_tail: str
    exit_code: int | None
    #: /health's upstream_loss warnings at the end of the run: (source, lost, retries_since,
    #: unanswered_since); the last two None for another source than L13
    health_losses: list[tuple[str, int, int | None, int | None]] = field(default_factory=list)


def _read_stats(path: Path) -> tuple[dict[str, float], float | None]:
    """Sum the ``*.count`` fields of log-shuttle's stats lines (each is a difference since
    the previous line); the last line's ``outlet.post.success.p99`` (seconds)."""
    sums: dict[str, float] = {}
    p99: float | None = None
    try:
        data = path.read_bytes()
    except OSError:
        return sums, p99
    for line in data.splitlines():
        if b"lines.read.count=" not in line:
            continue
        for key, value in _STAT.findall(line):
            try:
                v = float(value)
            except ValueError:
                continue
            k = key.decode()
            if k.endswith(".count"):
                sums[k] = sums.get(k, 0.0) + v
            elif k == "outlet.post.success.p99":
                p99 = v
    return sums, p99


def _drain_reports(log_path: Path) -> tuple[int, int, int]:
    """From the drain's ``batch`` log lines: (POSTs that held lines other than events, those
    lines, messages counted lost upstream). The bench lines are all events, so another line
    here is a log-shuttle report (L12 or L13: a typed platform line, or a not-event when
    platform_events is off)."""
    posts = lines = lost = 0
    with contextlib.suppress(OSError):
        for raw in log_path.read_bytes().splitlines():
            if not raw.startswith(b"{"):
                continue
            try:
                rec = orjson.loads(raw)
            except orjson.JSONDecodeError:
                continue
            if rec.get("event") != "batch":
                continue
            ne = int(rec.get("not_events") or 0) + int(rec.get("typed_lines") or 0)
            if ne:
                posts += 1
                lines += ne
            lost += int(rec.get("lost_upstream") or 0)
    return posts, lines, lost


async def _wait_for(timeout_s: float, pred: Callable[[], Awaitable[bool]]) -> bool:
    """Poll ``pred`` every 50 ms until it is true (True) or ``timeout_s`` passed (False)."""
    deadline = time.monotonic() + timeout_s
    for _ in range(100_000):  # bounded by the deadline too
        if await pred():
            return True
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return False


def _health_losses(port: int) -> list[tuple[str, int, int | None, int | None]]:
    """The upstream_loss warnings of the drain's /health on 127.0.0.1:``port``."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as answer:
        document = orjson.loads(answer.read())
    return [
        (w["source"], w["lost"], w.get("retries_since"), w.get("unanswered_since"))
        for w in document.get("warnings", [])
        if w.get("kind") == "upstream_loss"
    ]


async def shuttle_run(
    db_url: str,
    log_dir: Path,
    binary: str,
    *,
    lines: int,
    rate: float,
    block: bool = False,
    service_env: dict[str, str],
    extra_flags: Sequence[str] = (),
) -> ShuttleRun:
    """One drain, one log-shuttle process; ``lines`` lines at ``rate`` lines/s (0: unpaced);
    ``block``: with ``-drop=false``."""
    await reset(db_url)
    user, password = "shuttle", secrets.token_hex(16)
    env = {**service_env, "DRAIN_USERNAME": user, "DRAIN_PASSWORD": password}
    tag = f"r{int(rate)}{'-block' if block else ''}"
    svc = Service(db_url, extra_env=env, log_path=log_dir / f"serve-shuttle-{tag}.log")
    await svc.start()
    out_path = log_dir / f"shuttle-{tag}.stdout"
    err_path = log_dir / f"shuttle-{tag}.stderr"
    url = f"http://{user}:{password}@127.0.0.1:{svc.port}/logs"
    payload = b"".join(b'@[%s] {"n":%d}\n' % (SHUTTLE_TAG.encode(), i) for i in range(lines))
    proc: subprocess.Popen[bytes] | None = None
    feed_s = delivered_s = 0.0
    health_losses: list[tuple[str, int, int | None, int | None]] = []
    try:
        with out_path.open("wb") as out, err_path.open("wb") as err:
            proc = subprocess.Popen(  # noqa: ASYNC220 - returns at once
                [
                    binary,
                    "-logs-url",
                    url,
                    *SHUTTLE_FLAGS,
                    *extra_flags,
                    *(["-drop=false"] if block else []),
                    "-stats-interval",
                    "100ms",
                ],
                stdin=subprocess.PIPE,
                stdout=out,
                stderr=err,
            )
        assert proc.stdin is not None
        t0 = time.monotonic()
        if rate <= 0:
            await asyncio.to_thread(proc.stdin.write, payload)
            await asyncio.to_thread(proc.stdin.flush)
        else:
            chunk = max(1, int(rate / 200))  # every 5 ms
            step = payload.split(b"\n")[:-1]
            for start in range(0, lines, chunk):
                due = t0 + start / rate
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                part = b"\n".join(step[start : start + chunk]) + b"\n"
                await asyncio.to_thread(proc.stdin.write, part)
                await asyncio.to_thread(proc.stdin.flush)
        feed_s = time.monotonic() - t0

        async def all_read() -> bool:
            s, _ = _read_stats(out_path)
            done = s.get("lines.batched.count", 0) + s.get("lines.dropped.count", 0)
            return s.get("lines.read.count", 0) >= lines and done >= lines

        await _wait_for(60.0, all_read)

        async def batched_stored() -> bool:
            s, _ = _read_stats(out_path)
            n, _d = await _stored(db_url, SHUTTLE_TAG)
            return n >= s.get("lines.batched.count", 0)

        await _wait_for(60.0, batched_stored)
        delivered_s = time.monotonic() - t0
        # one more line: its POST carries a drop/lost count still pending in log-shuttle
        proc.stdin.write(b'@[bench.shuttle.end] {"lines":%d}\n' % lines)
        proc.stdin.flush()

        async def end_stored() -> bool:
            n, _d = await _stored(db_url, "bench.shuttle.end")
            return n >= 1

        await _wait_for(10.0, end_stored)
        await asyncio.sleep(0.25)  # one more stats line
        health_losses = await asyncio.to_thread(_health_losses, svc.port)
        proc.stdin.close()
        try:
            await asyncio.to_thread(proc.wait, 30)
        except subprocess.TimeoutExpired:
            proc.kill()
            await asyncio.to_thread(proc.wait, 10)
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(10)
        svc.stop()
    stored, distinct = await _stored(db_url, SHUTTLE_TAG)
    stats, p99 = _read_stats(out_path)
    posts, report_lines, lost = _drain_reports(svc.log_path)
    err_text = err_path.read_text(errors="replace").strip().splitlines()
    return ShuttleRun(
        rate=rate,
        block=block,
        lines=lines,
        feed_s=feed_s,
        delivered_s=delivered_s,
        stored=stored,
        distinct=distinct,
        stats=stats,
        post_p99_s=p99,
        posts_with_reports=posts,
        report_lines=report_lines,
        lost_upstream_counted=lost,
        stderr_tail=" | ".join(err_text[-3:]),
        exit_code=proc.returncode if proc is not None else None,
        health_losses=health_losses,
    )


# ----------------------------------------------------------------------------- main


async def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench.latency", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL"),
        help="superuser URL of the server (default: $BENCH_DATABASE_URL, else embedded)",
    )
    ap.add_argument("--n", type=int, default=200, help="sequential POSTs per low-load series")
    ap.add_argument(
        "--log-shuttle",
        default=os.environ.get("LOG_SHUTTLE"),
        help="path of a log-shuttle binary (default: $LOG_SHUTTLE); without it, no shuttle run",
    )
    ap.add_argument("--shuttle-lines", type=int, default=10_000)
    ap.add_argument(
        "--shuttle-rates",
        default="0,10000,20000,0/block",
        help=(
            "lines/s to feed log-shuttle, comma-separated; 0 = as fast as the pipe takes them; "
            "RATE/block = with -drop=false"
        ),
    )
    ap.add_argument(
        "--shuttle-flags",
        default="",
        help="more log-shuttle flags, space-separated, e.g. '-timeout 40ms'",
    )
    ap.add_argument("--skip", default="", help="sections to skip: low,small,high,shuttle")
    ap.add_argument(
        "--service-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for drain serve (repeatable)",
    )
    args = ap.parse_args(argv)
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    service_env = dict(kv.split("=", 1) for kv in args.service_env)
    binary = args.log_shuttle
    if "shuttle" not in skip and not binary:
        print(
            "- log-shuttle run SKIPPED: no binary given (--log-shuttle PATH or "
            "LOG_SHUTTLE=PATH; build heroku/log-shuttle outside this repository)",
            flush=True,
        )
        skip.add("shuttle")
    elif binary and not os.access(binary, os.X_OK):
        print(f"error: log-shuttle binary {binary!r} is not an executable file", file=sys.stderr)
        return 2

    log_dir = Path(tempfile.mkdtemp(prefix="drain-bench-latency-"))
    with admin_server(args.database_url) as (admin_url, kind):
        info = await describe_server(admin_url)
        pm_pid = int(info["postmaster_pid"])
        dbname, db_url = await create_database(admin_url, prefix="drain_bench")
        print(f"# drain latency benchmark — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC", flush=True)
        print(
            f"- drain commit {git_commit()}; PostgreSQL: {kind}: "
            f"{info['version'].split(' on ')[0]}, fsync={info['fsync']}, "
            f"synchronous_commit={info['synchronous_commit']}; service logs in {log_dir}"
            + (f"; service environment {service_env}" if service_env else ""),
            flush=True,
        )
        try:
            migrate(db_url)
            if "low" not in skip:
                print(f"\n## low load: {args.n} sequential POSTs, one connection, 1 worker")
                print("\n| events per POST | POST p50 ms | p99 ms | max ms | statuses | stored |")
                print("|---|---|---|---|---|---|")
                for low in await low_load(db_url, log_dir, args.n, (1, 10), service_env):
                    r = low.result
                    lat = r.acked_latencies_s
                    print(
                        f"| {low.events} | {_ms(lat, 50)} | {_ms(lat, 99)} | {_ms(lat, 100)} | "
                        f"{r.status_counts} | {low.stored} of {r.acked * low.events} |",
                        flush=True,
                    )
            if "small" not in skip:
                res, stored = await small_batches(db_url, log_dir, service_env)
                lat = res.acked_latencies_s
                print("\n## small batches: 50 events per POST, 8 connections, closed loop, 6 s")
                print(
                    f"\n{res.acked / res.duration_s:,.0f} POSTs/s, "
                    f"{res.acked_events / res.duration_s:,.0f} events/s; POST p50 "
                    f"{_ms(lat, 50)} ms, p99 {_ms(lat, 99)} ms; statuses {res.status_counts}, "
                    f"time-outs {res.timeouts}; stored {stored:,} of {res.acked_events:,} acked",
                    flush=True,
                )
            if "high" not in skip:
                plan = LoadPlan(
                    connections=32, warmup_s=1.0, full_s=6.0, rate_s=5.0, max_requests=20_000
                )
                bodies = make_bodies(64, now=datetime.now(UTC), seed=20261201)
                full, at80 = await phase_service(
                    db_url, dbname, pm_pid, bodies, 1, plan, log_dir, service_env
                )
                print("\n## high load: bench.run --quick's service phase, 1 worker")
                print("\n| phase | events/s | POST p50 ms | p99 ms | max ms | stored = acked |")
                print("|---|---|---|---|---|---|")
                for p in (full, at80):
                    print(
                        f"| {p.name} | {p.events_per_s:,.0f} | {_ms(p.latencies_s, 50)} | "
                        f"{_ms(p.latencies_s, 99)} | {_ms(p.latencies_s, 100)} | {p.check} |",
                        flush=True,
                    )
            if "shuttle" not in skip:
                assert binary
                runs = [
                    (float(r.split("/")[0]), r.endswith("/block"))
                    for r in args.shuttle_rates.split(",")
                    if r.strip()
                ]
                extra = args.shuttle_flags.split()
                print(
                    f"\n## log-shuttle {' '.join((*SHUTTLE_FLAGS, *extra))}: "
                    f"{args.shuttle_lines:,} lines ({binary})"
                )
                print(
                    "\n| fed at | fed in s | stored in s | stored (distinct) | read | batched | "
                    "dropped (L12) | lost (L13) | POSTs | POST p99 ms | POSTs with a report | "
                    "counted lost by drain | /health's loss warnings | exit |"
                )
                print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
                for rate, block in runs:
                    s = await shuttle_run(
                        db_url,
                        log_dir,
                        binary,
                        lines=args.shuttle_lines,
                        rate=rate,
                        block=block,
                        service_env=service_env,
                        extra_flags=extra,
                    )
                    st = s.stats
                    warned = "; ".join(
                        f"{src} {n}" + (f" ({r} retries, {u} unanswered)" if r is not None else "")
                        for src, n, r, u in s.health_losses
                    )
                    p99 = f"{s.post_p99_s * 1e3:.1f}" if s.post_p99_s is not None else "-"
                    fed = "pipe speed" if rate <= 0 else f"{rate:,.0f} lines/s"
                    print(
                        f"| {fed}{', -drop=false' if block else ''} | "
                        f"{s.feed_s:.2f} | {s.delivered_s:.2f} | {s.stored:,} ({s.distinct:,}) | "
                        f"{st.get('lines.read.count', 0):,.0f} | "
                        f"{st.get('lines.batched.count', 0):,.0f} | "
                        f"{st.get('lines.dropped.count', 0):,.0f} | "
                        f"{st.get('msg.lost.count', 0):,.0f} | "
                        f"{st.get('outlet.post.success.count', 0):,.0f} | {p99} | "
                        f"{s.posts_with_reports} ({s.report_lines} lines) | "
                        f"{s.lost_upstream_counted} | {warned or '-'} | {s.exit_code} |",
                        flush=True,
                    )
                    if s.stderr_tail:
                        print(f"  log-shuttle stderr (last lines): {s.stderr_tail}", flush=True)
        finally:
            await drop_database(admin_url, dbname)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
