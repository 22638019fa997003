"""The memory figure: a 10x burst against ``drain serve`` must not grow RSS past a bound.

Usage (from the repository root)::

    .venv/bin/python -m bench.burst [--database-url URL] [--factor 10] [--seconds 5]

Steps, on a fresh database on the target server (``--database-url``, else
``BENCH_DATABASE_URL``, else a temporary embedded PostgreSQL):

1. ``drain migrate``; ``drain serve`` with 1 worker and the default write-queue bounds
   (or ``DRAIN_QUEUE_MAX_BYTES`` / ``DRAIN_QUEUE_MAX_EVENTS`` from the environment);
2. the peak rate: closed loop for a few seconds with 32 keep-alive connections;
3. the burst: an open-loop schedule at ``factor`` x that rate for ``seconds``, over
   ``factor`` x 32 connections (Logplex opens more connections when a drain falls behind),
   each POST with Logplex's 5 s time-out and its retries (twice, same frame id);
4. then: peak RSS of the service tree during the burst, answers by status, how many 503s
   carried Retry-After, and whether every acknowledged event is stored exactly once.

The bound it checks is ``--rss-bound-mb`` (default 200 MB, the issue's target).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from bench.gen import make_bodies
from bench.loadgen import percentile, prepare, run_load
from bench.measure import Sampler, postgres_group, service_tree
from bench.run import _verify, admin_server, count_rows, describe_server
from bench.service import Service, migrate
from testkit.pg import create_database, drop_database


async def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.burst", description=__doc__.split("\n\n")[0])
    ap.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL"))
    ap.add_argument("--factor", type=float, default=10.0, help="burst rate / peak rate")
    ap.add_argument("--seconds", type=float, default=5.0, help="length of the burst")
    ap.add_argument("--connections", type=int, default=32, help="connections at peak")
    ap.add_argument("--rss-bound-mb", type=float, default=200.0)
    ap.add_argument("--workers", type=int, default=1, help="uvicorn workers")
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
    args = ap.parse_args(argv)

    now = datetime.now(UTC)
    bodies = make_bodies(64, now=now, seed=20261202)
    log_dir = Path(tempfile.mkdtemp(prefix="drain-burst-logs-"))
    with admin_server(args.database_url) as (admin_url, kind):
        info = await describe_server(admin_url)
        pm_pid = int(info["postmaster_pid"])
        dbname, db_url = await create_database(admin_url, prefix="drain_burst")
        try:
            migrate(db_url)
            env = {}
            if args.queue_max_events is not None:
                env["DRAIN_QUEUE_MAX_EVENTS"] = str(args.queue_max_events)
            if args.queue_max_bytes is not None:
                env["DRAIN_QUEUE_MAX_BYTES"] = str(args.queue_max_bytes)
            svc = Service(
                db_url, workers=args.workers, extra_env=env, log_path=log_dir / "serve.log"
            )
            await svc.start()
            try:
                prepared = prepare(bodies, host="127.0.0.1", port=svc.port)
                peak = await run_load(
                    prepared,
                    port=svc.port,
                    connections=args.connections,
                    duration_s=4.0,
                    max_requests=20_000,
                )
                peak_rps = peak.acked / peak.duration_s
                rate = args.factor * peak_rps
                conns = int(args.factor * args.connections)
                sampler = Sampler(
                    service=service_tree(svc.pid),
                    postgres=postgres_group(pm_pid, dbname),
                    interval_s=0.05,
                )
                sampler.start()
                burst = await run_load(
                    prepared,
                    port=svc.port,
                    connections=conns,
                    duration_s=args.seconds,
                    max_requests=int(rate * args.seconds) + 1,
                    rate_rps=rate,
                    retries=2,
                )
                fig = sampler.stop()
            finally:
                rc = svc.stop()
            stored, quarantined, ledger = await count_rows(db_url)
            acked, verdict = _verify(stored, quarantined, ledger, [peak, burst])
            rss_mb = fig.service_peak_rss_bytes / 2**20
            print(
                f"# drain burst - {now:%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, "
                f"PostgreSQL {kind}: {info['version'].split(' on ')[0]}"
            )
            print(
                f"- peak (closed loop, {args.connections} connections): {peak_rps:.0f} req/s, "
                f"{peak.acked_events / peak.duration_s:,.0f} events/s"
            )
            print(
                f"- burst: {args.factor:g}x = {rate:.0f} req/s offered for {args.seconds:g} s over "
                f"{conns} connections; {burst.requests_sent} batches, {burst.retries} retries"
            )
            print(
                f"- answers: {dict(sorted(burst.status_counts.items()))}; 503 with Retry-After: "
                f"{burst.retry_after_503}; time-outs: {burst.timeouts}; connection errors: "
                f"{burst.conn_errors}; batches given up after retries: {burst.gave_up}"
            )
            print(
                f"- acknowledged in the burst: {burst.acked} batches, {burst.acked_events:,} "
                "events "
                f"({burst.acked_events / burst.duration_s:,.0f} events/s); POST latency p50 "
                f"{percentile(burst.latencies_s, 50) * 1e3:.0f} ms, p99 "
                f"{percentile(burst.latencies_s, 99) * 1e3:.0f} ms, max "
                f"{percentile(burst.latencies_s, 100) * 1e3:.0f} ms"
            )
            print(
                f"- service peak RSS: {rss_mb:.0f} MB (tree RSS sum), "
                f"{fig.service_peak_pss_bytes / 2**20:.0f} MB (PSS), "
                f"{fig.service_peak_proc_rss_bytes / 2**20:.0f} MB "
                f"(largest process); bound {args.rss_bound_mb:.0f} MB: "
                f"{'PASS' if rss_mb < args.rss_bound_mb else 'FAIL'}"
            )
            print(
                f"- stored: raw_events {stored:,}, acknowledged {acked:,}: {verdict}; serve "
                f"exit code {rc}"
            )
            return 0 if verdict.startswith("ok") and rss_mb < args.rss_bound_mb else 1
        finally:
            await drop_database(admin_url, dbname)


if __name__ == "__main__":
    try:
        import uvloop
    except ImportError:
        sys.exit(asyncio.run(main()))
    sys.exit(uvloop.run(main()))
