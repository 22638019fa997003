"""OTLP events/s beside Logplex events/s: the same lines, the same drain, one run.

Usage (from the repository root)::

    .venv/bin/python -m bench.otlp --database-url postgresql://postgres@127.0.0.1:5432/test
    .venv/bin/python -m bench.otlp --quick          # 1 short round, embedded PostgreSQL

The bodies are bench.gen's Logplex batches (~100 KiB, ~85 % ``@[tag] {json}`` events, router
and plain lines), and the same lines as OTLP/HTTP log exports (bench.gen.make_otlp_body: one
log record per line, binary protobuf, one resource per dyno), which is what a Fir app's
telemetry drain sends. One fresh database (``drain migrate``) on the given superuser URL
(else a throw-away embedded PostgreSQL), emptied before each phase. Each round runs, in
alternating order so that drift on a shared machine hits both alike:

1. decode only, in this process (one core): drain.inputs.logplex.decode_body against
   drain.inputs.otlp.decode_logs on the same lines; events/s and µs per event;
2. ``drain serve`` (1 worker) on 127.0.0.1, closed loop over 8 keep-alive connections
   (bench.loadgen): Logplex ``POST /logs``, then OTLP ``POST /v1/logs``, each after a
   warm-up; events/s acknowledged, and the service's CPU µs per event. 8 connections keep
   one worker busy without the write queue's back-pressure: with 32 (bench.run's figure)
   some requests get 503 + Retry-After, and their share, which varies from phase to phase
   on a shared machine, decides the comparison more than the wire format does.

After each service phase the database must hold exactly the acknowledged events (an OTLP
request is told 200 only once its rows are committed; its ledger key is its body's digest,
so each request's body carries its own id: bench.loadgen.prepare_otlp).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from bench.gen import CLIENT_HASH_KEY, OTLP_SERVICE, Body, OtlpBody, make_bodies, make_otlp_body
from bench.loadgen import Prepared, Result, prepare, prepare_otlp, run_load
from bench.measure import Sampler, service_tree
from bench.run import admin_server, describe_server, git_commit, reset
from bench.service import Service, migrate
from testkit.pg import create_database, drop_database


@dataclass(slots=True)
class Figure:
    """One measured phase: events acknowledged (or decoded) over wall seconds, body bytes,
    the CPU seconds of the process that did the work, and the check of what was stored."""

    name: str
    events: int
    wall_s: float
    body_bytes: int
    cpu_s: float
    check: str = "ok"

    @property
    def events_per_s(self) -> float:
        return self.events / self.wall_s

    @property
    def us_per_event(self) -> float:
        return self.cpu_s / max(self.events, 1) * 1e6


def decode_phase(
    name: str, decode: Callable[[int], int], sizes: Sequence[int], *, max_s: float
) -> Figure:
    """Run ``decode(i)`` (decodes body ``i`` and returns its events) round-robin for
    ``max_s`` seconds, at least one pass, and measure this process's CPU time."""
    t0, cpu0 = time.monotonic(), time.process_time()
    events = nbytes = 0
    for i in range(1_000_000):  # bounded by max_s too
        events += decode(i % len(sizes))
        nbytes += sizes[i % len(sizes)]
        if i >= len(sizes) and time.monotonic() - t0 > max_s:
            break
    return Figure(name, events, time.monotonic() - t0, nbytes, time.process_time() - cpu0)


def check_decoders(bodies: Sequence[Body], otlp: Sequence[OtlpBody], now: datetime) -> None:
    """Both decoders make the generator's events of their bodies (same tags and payloads;
    the OTLP rows carry ``app`` = service.name)."""
    from drain.inputs.logplex import decode_body
    from drain.inputs.otlp import Encoding, decode_logs
    from drain.settings import Settings

    defaults = Settings.defaults()
    limits = defaults.decode_limits()
    rules = defaults.line_rules(CLIENT_HASH_KEY)
    for b, o in zip(bodies, otlp, strict=True):
        logplex = decode_body(b.body, now=now, limits=limits, rules=rules)
        otlp_batch = decode_logs(
            o.body, encoding=Encoding.PROTOBUF, now=now, limits=limits, rules=rules
        )
        want = sorted((e.event_time, e.tag, e.payload) for e in b.events)
        if sorted((e.event_time, e.tag, e.payload) for e in logplex.events) != want:
            raise RuntimeError("decode_body disagrees with bench.gen")
        if sorted((e.event_time, e.tag, e.payload) for e in otlp_batch.events) != want:
            raise RuntimeError("decode_logs disagrees with bench.gen on the same lines")
        if {e.app for e in otlp_batch.events} != {OTLP_SERVICE} or otlp_batch.quarantined:
            raise RuntimeError("the OTLP rows do not carry their service.name")


async def stored(db_url: str) -> tuple[int, int]:
    """(rows of raw_events, rows of received_batches)."""
    conn = await asyncpg.connect(db_url)
    try:
        events = await conn.fetchval("SELECT count(*) FROM raw_events")
        batches = await conn.fetchval("SELECT count(*) FROM received_batches")
        return int(events), int(batches)
    finally:
        await conn.close()


def verify(events: int, batches: int, results: Sequence[Result]) -> str:
    """The database holds the acknowledged events, plus at most those of the requests whose
    answer was lost (timed out: committed or not, once)."""
    acked = sum(r.frame_events[f] for r in results for f in r.acked_frame_ids)
    unknown = sum(r.frame_events[f] for r in results for f in r.unknown_frame_ids)
    n_acked = sum(r.acked for r in results)
    if not acked <= events <= acked + unknown:
        return f"MISMATCH raw_events {events}, acked {acked} (+{unknown} unknown)"
    if batches < n_acked:
        return f"MISMATCH received_batches {batches} < acked {n_acked}"
    return "ok"


async def service_phase(
    name: str,
    db_url: str,
    prepared_for: Callable[[int], list[Prepared]],
    *,
    warmup_s: float,
    full_s: float,
    connections: int,
    log_dir: Path,
) -> Figure:
    """``drain serve`` with one worker, warm-up then closed loop for ``full_s`` seconds."""
    await reset(db_url)
    svc = Service(db_url, workers=1, log_path=log_dir / f"{name.replace(' ', '-')}.log")
    await svc.start()
    try:
        prepared = prepared_for(svc.port)
        warm = await run_load(prepared, port=svc.port, connections=connections, duration_s=warmup_s)
        sampler = Sampler(service=service_tree(svc.pid), postgres=lambda: [])
        sampler.start()
        full = await run_load(prepared, port=svc.port, connections=connections, duration_s=full_s)
        figures = sampler.stop()
    finally:
        code = svc.stop()
    events, batches = await stored(db_url)
    check = verify(events, batches, [warm, full])
    if full.status_counts.keys() - {200}:
        check += f"; answers {full.status_counts}"
    if code not in (0, None):
        check += f"; serve exited {code}"
    return Figure(
        name,
        full.acked_events,
        full.duration_s,
        full.acked_body_bytes,
        figures.service_cpu_s,
        check,
    )


def _agg(values: Sequence[float], fmt: str) -> str:
    med = statistics.median(values)
    if len(values) == 1:
        return format(med, fmt)
    return f"{format(med, fmt)} ({format(min(values), fmt)}-{format(max(values), fmt)})"


def table(figures: dict[str, list[Figure]]) -> str:
    """Medians (min-max) over the rounds; OTLP / Logplex per round, then its median."""
    lines = [
        "| phase | events/s | body MB/s | CPU µs/event | stored = acked |",
        "|---|---|---|---|---|",
    ]
    for name, fs in figures.items():
        lines.append(
            f"| {name} | {_agg([f.events_per_s for f in fs], ',.0f')} "
            f"| {_agg([f.body_bytes / f.wall_s / 1e6 for f in fs], '.1f')} "
            f"| {_agg([f.us_per_event for f in fs], '.1f')} "
            f"| {' / '.join(sorted({f.check for f in fs}))} |"
        )
    for kind in ("decode only", "drain serve"):
        logplex, otlp = figures.get(f"{kind}, Logplex"), figures.get(f"{kind}, OTLP")
        if logplex and otlp:
            ratios = [o.events_per_s / x.events_per_s for x, o in zip(logplex, otlp, strict=True)]
            lines.append(f"\n{kind}: OTLP / Logplex events/s = {_agg(ratios, '.2f')} (per round)")
    return "\n".join(lines)


async def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.otlp", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="one short round (about a minute)")
    ap.add_argument("--rounds", type=int, default=None, help="rounds (default 3, --quick 1)")
    ap.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL"),
        help="superuser URL of the server (default: $BENCH_DATABASE_URL, else embedded)",
    )
    ap.add_argument("--connections", type=int, default=8, help="keep-alive connections")
    args = ap.parse_args(argv)
    rounds = args.rounds or (1 if args.quick else 3)
    warmup_s, full_s, decode_s = (1.0, 5.0, 2.0) if args.quick else (2.0, 12.0, 4.0)

    now = datetime.now(UTC)
    bodies = make_bodies(64, now=now, seed=20261201)
    otlp = [make_otlp_body(b) for b in bodies]
    check_decoders(bodies, otlp, now)

    from drain.inputs.logplex import decode_body
    from drain.inputs.otlp import Encoding, decode_logs
    from drain.settings import Settings

    defaults = Settings.defaults()
    limits = defaults.decode_limits()
    rules = defaults.line_rules(CLIENT_HASH_KEY)

    def decode_logplex(i: int) -> int:
        return len(decode_body(bodies[i].body, now=now, limits=limits, rules=rules).events)

    def decode_otlp(i: int) -> int:
        batch = decode_logs(
            otlp[i].body, encoding=Encoding.PROTOBUF, now=now, limits=limits, rules=rules
        )
        return len(batch.events)

    log_dir = Path(tempfile.mkdtemp(prefix="drain-bench-otlp-"))
    with admin_server(args.database_url) as (admin_url, kind):
        info = await describe_server(admin_url)
        dbname, db_url = await create_database(admin_url, prefix="drain_bench_otlp")
        print(f"# OTLP beside Logplex — {now:%Y-%m-%d %H:%M} UTC", flush=True)
        print(
            f"- machine: {os.cpu_count()} cores ({platform.processor() or platform.machine()}), "
            f"Python {platform.python_version()}, drain commit {git_commit()}"
        )
        print(
            f"- PostgreSQL: {kind}: {info['version'].split(' on ')[0]}, "
            f"synchronous_commit={info['synchronous_commit']}, fsync={info['fsync']}"
        )
        per_body = sum(len(b.events) for b in bodies) / len(bodies)
        print(
            f"- bodies: {len(bodies)} distinct; Logplex "
            f"{statistics.mean(len(b.body) for b in bodies) / 1024:.0f} KiB, OTLP protobuf "
            f"{statistics.mean(len(o.body) for o in otlp) / 1024:.0f} KiB, the same "
            f"{statistics.mean(o.records for o in otlp):.0f} lines and {per_body:.0f} events "
            f"each; rounds: {rounds}; service: 1 worker, {args.connections} connections, "
            f"warm-up {warmup_s:g} s, closed loop {full_s:g} s; logs in {log_dir}",
            flush=True,
        )
        figures: dict[str, list[Figure]] = {}
        try:
            migrate(db_url)
            logplex_sizes = [len(b.body) for b in bodies]
            otlp_sizes = [len(o.body) for o in otlp]
            for r in range(rounds):
                order = ["Logplex", "OTLP"] if r % 2 == 0 else ["OTLP", "Logplex"]
                for wire in order:
                    if wire == "Logplex":
                        f = decode_phase(
                            "decode only, Logplex", decode_logplex, logplex_sizes, max_s=decode_s
                        )
                    else:
                        f = decode_phase(
                            "decode only, OTLP", decode_otlp, otlp_sizes, max_s=decode_s
                        )
                    figures.setdefault(f.name, []).append(f)
                    print(f"  round {r + 1}: {f.name}: {f.events_per_s:,.0f} events/s", flush=True)
                for wire in order:

                    def prepared_for(port: int, wire: str = wire) -> list[Prepared]:
                        if wire == "Logplex":
                            return prepare(bodies, host="127.0.0.1", port=port)
                        return prepare_otlp(otlp, host="127.0.0.1", port=port)

                    f = await service_phase(
                        f"drain serve, {wire}",
                        db_url,
                        prepared_for,
                        warmup_s=warmup_s,
                        full_s=full_s,
                        connections=args.connections,
                        log_dir=log_dir,
                    )
                    figures.setdefault(f.name, []).append(f)
                    print(
                        f"  round {r + 1}: {f.name}: {f.events_per_s:,.0f} events/s "
                        f"({f.us_per_event:.1f} µs CPU/event), {f.check}",
                        flush=True,
                    )
        finally:
            await drop_database(admin_url, dbname)
        print()
        print(table(dict(sorted(figures.items()))))
    bad = [f for fs in figures.values() for f in fs if f.check != "ok"]
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
