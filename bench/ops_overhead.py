"""What the operations layer costs per batch: metrics, the log line, and a /metrics scrape.

Usage (from the repository root)::

    .venv/bin/python -m bench.ops_overhead [--batches 20000]

For a typical Logplex batch ledger (100 frames: 90 events, 2 quarantined, 8 router lines),
times in this process, for prometheus-client's single-process mode and its multiprocess
mode (mmap files; run in a child process started with PROMETHEUS_MULTIPROC_DIR set, as
``drain serve --workers N`` does):

- ``record``: Metrics.record_decoded + record_written + the status counter + set_queue;
- ``telemetry``: all a batch costs the operations layer, ``Telemetry.record`` (the
  ``/health`` counters, the Prometheus metrics and the JSON batch line, structlog to
  /dev/null), what drain.web.ingest calls once per POST;
- ``scrape``: Metrics.render() after those batches.

Figures are printed, never asserted. No database.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence


def _measure(batches: int) -> str:
    from drain.logs import configure_logging
    from drain.records import Ledger, WriteResult
    from drain.settings import Settings
    from drain.web.health import Counters, LossMemory
    from drain.web.metrics import Metrics
    from drain.web.report import BatchReport, Telemetry

    metrics = Metrics.create()
    ledger = Ledger(
        body_bytes=100_000,
        frames=100,
        events=90,
        quarantined=2,
        not_events=8,
        quarantined_by_reason={"invalid_json": 2},
        not_events_by_kind={"untagged": 8},
    )
    result = WriteResult(duplicate=False, stored={"raw_events": 90, "quarantine": 2})
    app = "other"
    started = time.perf_counter()
    for _ in range(batches):
        metrics.record_decoded(ledger, app)
        metrics.record_written(ledger, result, app)
        metrics.requests.labels("200").inc()
        metrics.set_queue(0, 0)
    record_us = (time.perf_counter() - started) / batches * 1e6

    with open(os.devnull, "w") as devnull:
        configure_logging(stream=devnull)
        telemetry = Telemetry(Counters(), metrics, LossMemory(None), Settings.defaults())
        report = BatchReport("5b1c3f0e-7d1a-4f7e-9d55-0c1a2b3c4d5e", status=200)
        report.drain_token, report.frame_id, report.app = "d.fc6b856b", "frame", "app"
        report.ledger, report.result = ledger, result
        started = time.perf_counter()
        for _ in range(batches):
            telemetry.record(report)
        telemetry_us = (time.perf_counter() - started) / batches * 1e6

    started = time.perf_counter()
    body = metrics.render()
    scrape_ms = (time.perf_counter() - started) * 1e3
    mode = "multiprocess" if metrics.multiprocess else "single process"
    return (
        f"| {mode:<14} | {record_us:>9.1f} | {telemetry_us:>12.1f} | {scrape_ms:>9.2f} "
        f"| {len(body):>12,} |"
    )


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.ops_overhead", description=__doc__)
    ap.add_argument("--batches", type=int, default=20_000)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(_measure(args.batches))
        return 0
    print(f"{args.batches:,} batches of 100 frames\n")
    print("| mode           | record µs | telemetry µs | scrape ms | scrape bytes |")
    print("|----------------|-----------|--------------|-----------|--------------|")
    print(_measure(args.batches), flush=True)
    with tempfile.TemporaryDirectory(prefix="drain-bench-metrics-") as directory:
        env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": directory}
        child = [sys.executable, "-m", "bench.ops_overhead", "--child"]
        child += ["--batches", str(args.batches)]
        out = subprocess.run(child, env=env, capture_output=True, text=True, timeout=600)
        print(out.stdout.strip() or out.stderr.strip())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
