"""The memory benchmark: RSS of the service tree before, at the peak and after three loads.

Usage (from the repository root)::

    .venv/bin/python -m bench.memory [--database-url URL] [--workers 2] [--skip burst]
    .venv/bin/python -m bench.memory --probe /tmp/drain-mem --probe-collect

Each scenario runs on a ``drain serve`` of its own (``--workers``, default 2: a standard-1X
dyno); memory is summed over the whole process tree (master, workers, multiprocessing's
resource tracker) with psutil:

1. **hostile gzip bodies** (issue "Hostile input", item 2): bodies of 60,000-byte frames
   that are not syslog lines (``x`` repeated, LF-terminated) up to the 8 MiB body cap
   (8,340,834 bytes, 8.8 KB gzipped), ``Content-Encoding: gzip``. After a warm-up of 40
   valid batches: the figure at rest; 30 such bodies one after the other; then
   ``--rounds`` rounds of ``--at-a-time`` (100) such bodies at once, each on its own
   keep-alive connection. Printed: RSS at rest, after the 30, and for each round its peak
   (RSS sum, per process, PSS sum) and its RSS ``--settle-s`` after the last answer, with
   the answers by status (200, or 503 + Retry-After when the body budget is spent);
2. **8 MiB bodies of 20,000 events** (the largest valid body, identity encoding): the
   same steps; these bodies are stored;
3. **the 10x burst** of ``bench.burst`` (issue "On Heroku for real", item 2).

``--probe DIR`` runs the services with ``bench/experiments`` on their PYTHONPATH and
``BENCH_MEM_PROBE=DIR/<scenario>`` (bench/experiments/sitecustomize.py): on SIGUSR2 the
workers write their RSS by kind of mapping, pymalloc's arenas, glibc's ``mallinfo2``, the
event loop's tasks and the write queue, at each new peak and after each load, and the
benchmark prints those reports. ``--probe-collect`` adds what ``gc.collect()`` and
``malloc_trim(0)`` would free, ``--probe-holders`` what holds lists of decoded rows and
live tracebacks, ``--tracemalloc DEPTH`` tracemalloc's top entries (from start-up, slow;
with ``--tracemalloc-late`` from the first load on).
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil  # type: ignore[import-untyped]

from bench.burst import parse_env, report, run_burst
from bench.gen import make_bodies
from bench.loadgen import prepare, run_load
from bench.measure import Sampler, postgres_group, service_tree, tree_rss
from bench.run import admin_server, describe_server
from bench.service import Service, migrate
from testkit.pg import create_database, drop_database

REPO = Path(__file__).resolve().parent.parent
MIB = 2**20
#: the service's default body cap (DRAIN_MAX_BODY_BYTES), bytes
BODY_CAP = 8 * MIB


def hostile_body(cap: int = BODY_CAP, frame_bytes: int = 60_000) -> bytes:
    """As many ``frame_bytes``-byte non-syslog frames as fit in ``cap`` bytes."""
    msg = b"x" * (frame_bytes - 1) + b"\n"
    frame = b"%d %s" % (len(msg), msg)
    return frame * (cap // len(frame))


def events_body(now: datetime, cap: int = BODY_CAP, frames: int = 20_000) -> bytes:
    """The largest valid body: ``frames`` events (the default frame bound) padded to fill
    ``cap`` bytes, each ``@[bench.large] {"n":N,"pad":"..."}`` with its own TIMESTAMP."""
    per_frame = cap // frames - 8  # MSG-LEN digits and SP
    parts = []
    for n in range(frames):
        ts = (now - timedelta(microseconds=n)).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")
        head = f'<134>1 {ts} host app web.{n % 8} - @[bench.large] {{"n":{n},"pad":"'.encode()
        pad = b"p" * max(1, per_frame - len(head) - 3)
        msg = head + pad + b'"}\n'
        parts.append(b"%d %s" % (len(msg), msg))
    return b"".join(parts)


async def post_once(
    port: int, body: bytes, frame_id: str, *, gzipped: bool = True, timeout_s: float = 60.0
) -> int:
    """One POST /logs on a keep-alive connection of its own (as Logplex keeps them: a drain
    that answers before reading the whole body, e.g. 503, still reads and drops the rest);
    the status, or -1 for no answer."""
    head = (
        "POST /logs HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: application/logplex-1\r\n"
        + ("Content-Encoding: gzip\r\n" if gzipped else "")
        + f"Content-Length: {len(body)}\r\nLogplex-Frame-Id: {frame_id}\r\n\r\n"
    ).encode("ascii")
    try:
        async with asyncio.timeout(timeout_s):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                writer.write(head + body)
                await writer.drain()
                answer = await reader.readuntil(b"\r\n\r\n")
                return int(answer.split(b" ", 2)[1])
            finally:
                writer.close()
    except (OSError, TimeoutError, ValueError, IndexError, asyncio.IncompleteReadError):
        return -1


def worker_pids(svc: Service) -> list[int]:
    """The uvicorn workers of the service (the process itself with one worker)."""
    tree = svc.tree()
    if svc.workers == 1:
        return [p.pid for p in tree[:1]]
    out = []
    for p in tree[1:]:
        try:
            if "spawn_main" in " ".join(p.cmdline()):
                out.append(p.pid)
        except psutil.Error:
            continue
    return out


class Prober:
    """Asks the workers for a memory report (SIGUSR2, bench/experiments/sitecustomize.py)."""

    def __init__(self, directory: Path | None, *, step_bytes: int = 6 * MIB) -> None:
        self.directory = directory
        self.step_bytes = step_bytes
        self.last_rss = 0
        self.signals = 0
        self._lock = threading.Lock()
        self.signalled_at = 0.0
        self.pids: list[int] = []

    def env(self, depth: int) -> dict[str, str]:
        if self.directory is None:
            return {}
        self.directory.mkdir(parents=True, exist_ok=True)
        env = {
            "PYTHONPATH": str(REPO / "bench" / "experiments"),
            "BENCH_MEM_PROBE": str(self.directory),
        }
        if depth:
            env["BENCH_TRACEMALLOC"] = str(depth)
        return env

    def start_tracing(self, svc: Service) -> None:
        """SIGUSR1 to every worker: tracemalloc starts now."""
        if self.directory is None:
            return
        for pid in worker_pids(svc):
            try:
                os.kill(pid, signal.SIGUSR1)
            except ProcessLookupError:
                continue

    def now(self, svc: Service) -> None:
        """Signal every worker now."""
        if self.directory is None:
            return
        self.signalled_at = time.time()
        self.pids = worker_pids(svc)
        for pid in self.pids:
            try:
                os.kill(pid, signal.SIGUSR2)
            except ProcessLookupError:
                continue
        self.signals += 1

    def at_peak(self, svc: Service, rss: int) -> None:
        """Probe when the tree's RSS passed the last probed figure by ``step_bytes``."""
        with self._lock:
            if self.directory is None or self.signals >= 40:
                return
            if rss >= max(self.last_rss, 1) + self.step_bytes:
                self.last_rss = rss
                self.now(svc)

    async def wait(self, timeout_s: float = 120.0) -> None:
        """Until every worker signalled last wrote a report after the signal (or time-out):
        a report with tracemalloc tracebacks takes a while."""
        if self.directory is None:
            return
        deadline = time.monotonic() + timeout_s
        for _ in range(100_000):  # bounded by the deadline
            done = {
                int(p.name.split("-")[1])
                for p in self.directory.glob("mem-*.txt")
                if p.stat().st_mtime >= self.signalled_at
            }
            if set(self.pids) <= done or time.monotonic() > deadline:
                return
            await asyncio.sleep(0.2)

    def newest(self, label: str) -> list[str]:
        """The newest report of each worker, headed with ``label``."""
        return self._show(label, largest=False)

    def largest(self, label: str) -> list[str]:
        """The first report of each worker in short, then its report of largest RSS."""
        return self._show(label, largest=True)

    def _show(self, label: str, *, largest: bool) -> list[str]:
        if self.directory is None:
            return []
        by_pid: dict[str, list[Path]] = {}
        for path in sorted(self.directory.glob("mem-*.txt"), key=lambda p: p.stat().st_mtime):
            by_pid.setdefault(path.name.split("-")[1], []).append(path)
        out = []
        for pid, paths in sorted(by_pid.items()):
            chosen = paths[-1]
            if largest:
                chosen = max(paths, key=_report_rss)
                first = paths[0].read_text().splitlines()
                out.append(f"  probe, worker {pid}, first report ({paths[0].name}):")
                out.extend("    " + line for line in first[:4])
            out.append(f"  probe {label}, worker {pid} ({chosen.name}):")
            out.extend("    " + line for line in chosen.read_text().splitlines())
        return out


def _report_rss(path: Path) -> int:
    """VmRSS (kB) in a probe report, 0 if absent."""
    for word_line in path.read_text().splitlines():
        if "VmRSS:" in word_line:
            return int(word_line.split("VmRSS:")[1].split()[0])
    return 0


async def large_bodies(
    admin_url: str,
    postmaster_pid: int,
    *,
    kind: str,
    workers: int,
    rounds: int,
    at_a_time: int,
    settle_s: float,
    env: dict[str, str],
    prober: Prober,
    trace_late: bool = False,
) -> list[str]:
    """Scenario 1 or 2 of the module docstring (``kind`` "hostile" or "events"); returns
    the lines to print."""
    mib = MIB
    if kind == "hostile":
        body = hostile_body()
        sent = gzip.compress(body, 9)
        lines = [
            f"- body: {len(body):,} bytes of {len(body) // 60_006} frames of 60,000 bytes, "
            f"{len(sent):,} bytes gzipped; {workers} worker(s)"
        ]
    else:
        body = events_body(datetime.now(UTC))
        sent = body
        lines = [f"- body: {len(body):,} bytes of 20,000 events, identity; {workers} worker(s)"]
    gzipped = kind == "hostile"
    dbname, db_url = await create_database(admin_url, prefix="drain_mem")
    log_dir = Path(os.environ.get("TMPDIR", "/tmp")) / f"drain-mem-{os.getpid()}"
    log_dir.mkdir(exist_ok=True)
    try:
        migrate(db_url)
        svc = Service(db_url, workers=workers, extra_env=env, log_path=log_dir / "serve.log")
        await svc.start(ready_timeout_s=180.0)  # tracemalloc from start-up is slow
        try:
            valid = prepare(make_bodies(8, now=datetime.now(UTC)), host="127.0.0.1", port=svc.port)
            await run_load(valid, port=svc.port, connections=4, duration_s=1.0, max_requests=40)
            await asyncio.sleep(settle_s)
            idle = tree_rss(svc.tree())
            lines.append(f"- at rest (after 40 valid batches): {idle / mib:.0f} MB")
            prefix = os.urandom(4).hex()
            statuses: dict[int, int] = {}
            for i in range(30):
                s = await post_once(svc.port, sent, f"{prefix}-s{i}", gzipped=gzipped)
                statuses[s] = statuses.get(s, 0) + 1
            await asyncio.sleep(settle_s)
            seq = tree_rss(svc.tree())
            lines.append(
                f"- after 30 bodies one after the other: {seq / mib:.0f} MB "
                f"({(seq - idle) / mib:+.0f} MB); answers {statuses}"
            )
            prober.now(svc)
            await prober.wait()
            lines.extend(prober.newest("after the 30"))
            if trace_late:
                prober.start_tracing(svc)
            worst_after = seq
            for r in range(rounds):
                sampler = Sampler(
                    service=service_tree(svc.pid),
                    postgres=postgres_group(postmaster_pid, dbname),
                    interval_s=0.05,
                    on_service_sample=lambda rss: prober.at_peak(svc, rss),
                )
                sampler.start()
                t0 = time.monotonic()
                answers = await asyncio.gather(
                    *(
                        post_once(svc.port, sent, f"{prefix}-r{r}-{k}", gzipped=gzipped)
                        for k in range(at_a_time)
                    )
                )
                took = time.monotonic() - t0
                fig = sampler.stop()
                await asyncio.sleep(settle_s)
                after = tree_rss(svc.tree())
                worst_after = max(worst_after, after)
                counts = {s: answers.count(s) for s in sorted(set(answers))}
                per = " + ".join(f"{x / mib:.0f}" for x in fig.service_peak_per_process)
                lines.append(
                    f"- round {r + 1}: {at_a_time} bodies at a time, answered in {took:.1f} s "
                    f"{counts}; peak {fig.service_peak_rss_bytes / mib:.0f} MB ({per}; PSS "
                    f"{fig.service_peak_pss_bytes / mib:.0f} MB), {settle_s:g} s after: "
                    f"{after / mib:.0f} MB ({(after - idle) / mib:+.0f} MB)"
                )
            prober.now(svc)
            await prober.wait()
            lines.extend(prober.newest("after the rounds"))
            lines.append(
                f"- worst figure after a load: {(worst_after - idle) / mib:+.0f} MB over rest"
            )
        finally:
            svc.stop()
    finally:
        await drop_database(admin_url, dbname)
    return lines


async def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench.memory", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL"))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3, help="rounds of bodies at a time")
    ap.add_argument("--at-a-time", type=int, default=100)
    ap.add_argument("--settle-s", type=float, default=2.0, help="wait before an 'after' figure")
    ap.add_argument(
        "--skip",
        action="append",
        default=[],
        choices=["hostile", "events", "burst"],
        help="leave a scenario out (repeatable)",
    )
    ap.add_argument("--burst-bound-mb", type=float, default=200.0)
    ap.add_argument("--probe", type=Path, default=None, metavar="DIR")
    ap.add_argument("--tracemalloc", type=int, default=0, metavar="DEPTH")
    ap.add_argument(
        "--tracemalloc-late",
        action="store_true",
        help="start tracemalloc in the workers after the first 30 bodies, or before the burst "
        "(with --probe)",
    )
    ap.add_argument(
        "--probe-holders",
        action="store_true",
        help="each probe also lists what holds lists of decoded rows (slow)",
    )
    ap.add_argument(
        "--probe-collect",
        action="store_true",
        help="each probe also runs gc.collect() and reports again (changes what follows)",
    )
    ap.add_argument("--service-env", action="append", default=[], metavar="NAME=VALUE")
    args = ap.parse_args(argv)

    base_env = parse_env(args.service_env)

    def probed(name: str) -> tuple[Prober, dict[str, str]]:
        prober = Prober(None if args.probe is None else args.probe / name)
        env = {**base_env, **prober.env(args.tracemalloc)}
        if args.probe is not None and args.probe_collect:
            env["BENCH_MEM_PROBE_COLLECT"] = "1"
        if args.probe is not None and args.probe_holders:
            env["BENCH_MEM_PROBE_HOLDERS"] = "1"
        if args.probe is not None and args.tracemalloc_late:
            env["BENCH_TRACEMALLOC_LATE"] = "1"
        return prober, env

    with admin_server(args.database_url) as (admin_url, kind):
        info = await describe_server(admin_url)
        pm_pid = int(info["postmaster_pid"])
        print(
            f"# drain memory - {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, "
            f"PostgreSQL {kind}: {info['version'].split(' on ')[0]}"
            + (f"; service env {base_env}" if base_env else "")
        )
        for kind, title in (
            ("hostile", "hostile gzip bodies"),
            ("events", "8 MiB bodies of 20,000 events"),
        ):
            if kind in args.skip:
                continue
            print(f"## {title}")
            prober, env = probed(kind)
            for line in await large_bodies(
                admin_url,
                pm_pid,
                kind=kind,
                workers=args.workers,
                rounds=args.rounds,
                at_a_time=args.at_a_time,
                settle_s=args.settle_s,
                env=env,
                prober=prober,
                trace_late=args.tracemalloc_late,
            ):
                print(line, flush=True)
        if "burst" not in args.skip:
            print("## 10x burst")
            prober, env = probed("burst")
            b = await run_burst(
                admin_url,
                pm_pid,
                workers=args.workers,
                env=env,
                on_sample=prober.at_peak,
                before_burst=prober.start_tracing if args.tracemalloc_late else None,
            )
            for line in report(b, factor=10.0, seconds=5.0, bound_mb=args.burst_bound_mb):
                print(line)
            print("\n".join(prober.largest("at the burst's peak")))
    return 0


if __name__ == "__main__":
    try:
        import uvloop
    except ImportError:
        sys.exit(asyncio.run(main()))
    sys.exit(uvloop.run(main()))
