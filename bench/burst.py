"""The memory figure: a 10x burst against ``drain serve`` must not grow RSS past a bound.

Usage (from the repository root)::

    .venv/bin/python -m bench.burst [--database-url URL] [--workers 2] [--factor 10]

Steps, on a fresh database on the target server (``--database-url``, else
``BENCH_DATABASE_URL``, else a temporary embedded PostgreSQL):

1. ``drain migrate``; ``drain serve`` with ``--workers`` uvicorn workers (default 2, what a
   standard-1X dyno runs) and the default write-queue bounds (or ``--queue-max-*``, or any
   ``--service-env NAME=VALUE``);
2. the peak rate: closed loop for a few seconds with 32 keep-alive connections;
3. the burst: an open-loop schedule at ``factor`` x that rate for ``seconds``, over
   ``factor`` x 32 connections (Logplex opens more connections when a drain falls behind),
   each POST with Logplex's 5 s time-out and its retries (twice, same frame id);
4. then: memory of the whole service tree (master, workers, multiprocessing's resource
   tracker) at rest, at the peak of the burst (per process too) and 2 s after it; answers
   by status, how many 503s carried Retry-After, and whether every acknowledged event is
   stored exactly once.

Memory is printed two ways: the sum of RSS, where every process counts the shared pages it
maps (libpython, the extension modules: ~21 MB per process here), and the sum of PSS,
where a shared page is split between the processes that map it, i.e. counted once for the
tree, as the dyno's memory cgroup counts it. The bound it checks, ``--bound-mb`` (default
200 MB: the 2-worker target on a 512 MB dyno), is on the peak PSS sum; the RSS sum is the
pessimistic figure beside it. :func:`run_burst` is also used by ``bench.memory``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench.gen import make_bodies
from bench.loadgen import Result, percentile, prepare, run_load
from bench.measure import Figures, Sampler, postgres_group, service_tree, tree_rss
from bench.run import _verify, admin_server, count_rows, describe_server
from bench.service import Service, migrate
from testkit.pg import create_database, drop_database


@dataclass(slots=True)
class BurstFigures:
    """What one burst did. Rates per second, sizes in bytes."""

    workers: int
    peak_rps: float
    peak_events_s: float
    rate_rps: float
    connections: int
    burst: Result
    fig: Figures
    idle_rss: int
    after_rss: int
    stored: int
    acked: int
    verdict: str
    exit_code: int | None


async def run_burst(
    admin_url: str,
    postmaster_pid: int,
    *,
    workers: int,
    factor: float = 10.0,
    seconds: float = 5.0,
    connections: int = 32,
    env: Mapping[str, str] | None = None,
    on_sample: Callable[[Service, int], None] | None = None,
    before_burst: Callable[[Service], None] | None = None,
) -> BurstFigures:
    """Run steps 1-4 of the module docstring on a database of its own (dropped after).

    ``on_sample(service, tree_rss_bytes)`` is called from the sampler's thread at every
    sample of the burst (``bench.memory --probe`` signals the workers at the peak);
    ``before_burst(service)`` once, between the peak and the burst.
    """
    now = datetime.now(UTC)
    bodies = make_bodies(64, now=now, seed=20261202)
    log_dir = Path(tempfile.mkdtemp(prefix="drain-burst-logs-"))
    dbname, db_url = await create_database(admin_url, prefix="drain_burst")
    try:
        migrate(db_url)
        svc = Service(db_url, workers=workers, extra_env=env, log_path=log_dir / "serve.log")
        await svc.start()
        try:
            await asyncio.sleep(1.0)
            idle = tree_rss(svc.tree())
            prepared = prepare(bodies, host="127.0.0.1", port=svc.port)
            peak = await run_load(
                prepared,
                port=svc.port,
                connections=connections,
                duration_s=4.0,
                max_requests=20_000,
            )
            peak_rps = peak.acked / peak.duration_s
            rate = factor * peak_rps
            conns = int(factor * connections)
            tick = None if on_sample is None else (lambda rss: on_sample(svc, rss))
            if before_burst is not None:
                before_burst(svc)
            sampler = Sampler(
                service=service_tree(svc.pid),
                postgres=postgres_group(postmaster_pid, dbname),
                interval_s=0.05,
                on_service_sample=tick,
            )
            sampler.start()
            burst = await run_load(
                prepared,
                port=svc.port,
                connections=conns,
                duration_s=seconds,
                max_requests=int(rate * seconds) + 1,
                rate_rps=rate,
                retries=2,
            )
            fig = sampler.stop()
            await asyncio.sleep(2.0)
            after = tree_rss(svc.tree())
        finally:
            rc = svc.stop()
        stored, quarantined, ledger = await count_rows(db_url)
        acked, verdict = _verify(stored, quarantined, ledger, [peak, burst])
    finally:
        await drop_database(admin_url, dbname)
    return BurstFigures(
        workers=workers,
        peak_rps=peak_rps,
        peak_events_s=peak.acked_events / peak.duration_s,
        rate_rps=rate,
        connections=conns,
        burst=burst,
        fig=fig,
        idle_rss=idle,
        after_rss=after,
        stored=stored,
        acked=acked,
        verdict=verdict,
        exit_code=rc,
    )


def report(b: BurstFigures, *, factor: float, seconds: float, bound_mb: float) -> list[str]:
    """The burst's lines, as printed by ``bench.burst`` and ``bench.memory``."""
    mib = 2**20
    burst, fig = b.burst, b.fig
    rss_mb = fig.service_peak_rss_bytes / mib
    pss_mb = fig.service_peak_pss_bytes / mib
    per = " + ".join(f"{r / mib:.0f}" for r in fig.service_peak_per_process)
    return [
        f"- {b.workers} worker(s); peak (closed loop): {b.peak_rps:.0f} req/s, "
        f"{b.peak_events_s:,.0f} events/s",
        f"- burst: {factor:g}x = {b.rate_rps:.0f} req/s offered for {seconds:g} s over "
        f"{b.connections} connections; {burst.requests_sent} batches, {burst.retries} retries",
        f"- answers: {dict(sorted(burst.status_counts.items()))}; 503 with Retry-After: "
        f"{burst.retry_after_503}; time-outs: {burst.timeouts}; connection errors: "
        f"{burst.conn_errors}; batches given up after retries: {burst.gave_up}",
        f"- acknowledged in the burst: {burst.acked} batches, {burst.acked_events:,} events "
        f"({burst.acked_events / burst.duration_s:,.0f} events/s); POST latency p50 "
        f"{percentile(burst.latencies_s, 50) * 1e3:.0f} ms, p99 "
        f"{percentile(burst.latencies_s, 99) * 1e3:.0f} ms, max "
        f"{percentile(burst.latencies_s, 100) * 1e3:.0f} ms",
        f"- service tree RSS sum: at rest {b.idle_rss / mib:.0f} MB, peak {rss_mb:.0f} MB "
        f"({per} per process at that sample), 2 s after {b.after_rss / mib:.0f} MB",
        f"- service tree PSS sum (the dyno's figure): peak {pss_mb:.0f} MB; bound "
        f"{bound_mb:.0f} MB: {'PASS' if pss_mb < bound_mb else 'FAIL'}",
        f"- stored: raw_events {b.stored:,}, acknowledged {b.acked:,}: {b.verdict}; serve "
        f"exit code {b.exit_code}",
    ]


def parse_env(pairs: Sequence[str]) -> dict[str, str]:
    """``NAME=VALUE`` arguments as a dict (argparse type errors for anything else)."""
    env = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise SystemExit(f"--service-env wants NAME=VALUE, not {pair!r}")
        env[name] = value
    return env


async def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.burst", description=__doc__.split("\n\n")[0])
    ap.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL"))
    ap.add_argument("--factor", type=float, default=10.0, help="burst rate / peak rate")
    ap.add_argument("--seconds", type=float, default=5.0, help="length of the burst")
    ap.add_argument("--connections", type=int, default=32, help="connections at peak")
    ap.add_argument("--bound-mb", type=float, default=200.0, help="bound on the peak PSS sum, MB")
    ap.add_argument("--workers", type=int, default=2, help="uvicorn workers (default 2)")
    ap.add_argument(
        "--queue-max-events",
        type=int,
        default=None,
        help="DRAIN_QUEUE_MAX_EVENTS for the service (default: the service's)",
    )
    ap.add_argument(
        "--queue-max-bytes",
        type=int,
        default=None,
        help="DRAIN_QUEUE_MAX_BYTES for the service (default: the service's)",
    )
    ap.add_argument(
        "--service-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="more environment for drain serve (repeatable)",
    )
    args = ap.parse_args(argv)

    env = parse_env(args.service_env)
    if args.queue_max_events is not None:
        env["DRAIN_QUEUE_MAX_EVENTS"] = str(args.queue_max_events)
    if args.queue_max_bytes is not None:
        env["DRAIN_QUEUE_MAX_BYTES"] = str(args.queue_max_bytes)
    with admin_server(args.database_url) as (admin_url, kind):
        info = await describe_server(admin_url)
        b = await run_burst(
            admin_url,
            int(info["postmaster_pid"]),
            workers=args.workers,
            factor=args.factor,
            seconds=args.seconds,
            connections=args.connections,
            env=env,
        )
    print(
        f"# drain burst - {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, "
        f"PostgreSQL {kind}: {info['version'].split(' on ')[0]}"
    )
    for line in report(b, factor=args.factor, seconds=args.seconds, bound_mb=args.bound_mb):
        print(line)
    ok = b.verdict.startswith("ok") and b.fig.service_peak_pss_bytes / 2**20 < args.bound_mb
    return 0 if ok else 1


if __name__ == "__main__":
    try:
        import uvloop
    except ImportError:
        sys.exit(asyncio.run(main()))
    sys.exit(uvloop.run(main()))
