"""Where drain's CPU per event goes, against floors measured in the same run.

Usage (from the repository root)::

    .venv/bin/python -m bench.floor [--database-url URL] [--workers 2] [--seconds 10]

The same generated bodies as bench.run (~100 KiB Logplex bodies of events and router
lines), posted by the same load generator (closed loop, 32 connections), to:

1. ``drain serve`` (``--workers``), the figure of bench.run;
2. a bare ASGI app under the same uvicorn (httptools protocol, uvloop, as many workers)
   that reads each body and answers 200 (bench/floor_app.py): what receiving the bytes
   costs in this stack before any of drain's code runs;
3. the same with a FastAPI route that reads the body as a stream, as drain does;
4. that route decoding the body and writing its rows with drain's Writer, waiting for the
   COMMIT (bench/floor_app.py ``pipeline_app``): drain's stages without its glue;

and, on this process (its garbage collector tuned as drain's workers are:
drain.web.worker.tune_gc), one core each:

5. ``decode_body`` of every body (drain.inputs.logplex), the decode stage alone;
6. the COPY of every row the service writes for the bodies (bench.gen.ceiling_transactions)
   over a pool connection of drain.store.database.create_pool (drain's codecs), 5000
   events per transaction: asyncpg's encoding and sending, client side;
7. ``drain.store.writer.Writer`` fed the decoded bodies (ledger claim, row building, COPY,
   COMMIT), without HTTP or decoding;
8. the same, each submitter decoding its body first.

Each figure is CPU seconds (user + system) of the process tree that did the work, divided
by the events stored or posted. The floor of this architecture is (2) + (5) + (6): an
HTTP server of this stack that decodes and COPYs the rows and does nothing else; (4) is
the same stages run together in one process; what ``drain serve`` spends beyond (4) is its
own glue (admission, bounds, the body budget, telemetry, the log line); (8), decode and
Writer in this process with fresh rows per body, shows what running the stages together
costs beyond their sum. Printed, never asserted; bench/README.md ("Floors") has the
figures and what they say.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench.gen import (
    CLIENT_HASH_KEY,
    DRAIN_TOKEN,
    Body,
    ceiling_transactions,
    decoded_rows,
    make_bodies,
)
from bench.loadgen import prepare, run_load
from bench.measure import Sampler, service_tree
from bench.run import admin_server, git_commit
from bench.service import Service, migrate
from drain.web.worker import tune_gc
from testkit.pg import create_database, drop_database


@dataclass(frozen=True, slots=True)
class Floor:
    """One measured component: ``cpu_s`` CPU seconds for ``events`` events in ``wall_s``."""

    name: str
    events: int
    cpu_s: float
    wall_s: float

    @property
    def us_per_event(self) -> float:
        return self.cpu_s / self.events * 1e6 if self.events else float("nan")

    @property
    def events_per_s(self) -> float:
        return self.events / self.wall_s if self.wall_s else float("nan")


def _uvicorn(app: str, port: int, workers: int, *, factory: bool = False) -> list[str]:
    """The command of a bare app under the uvicorn ``drain serve`` runs on."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        app,
        *(["--factory"] if factory else []),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--http",
        "httptools",
        "--loop",
        "uvloop",
        "--no-access-log",
        "--no-server-header",
        "--log-level",
        "warning",
    ]


async def http_phase(
    name: str,
    bodies: list[Body],
    *,
    db_url: str,
    workers: int,
    seconds: float,
    log_dir: Path,
    app: tuple[str, bool] | None = None,
) -> Floor:
    """Post the bodies to ``drain serve`` (``app`` None) or to a bare uvicorn app
    (``(app, factory)``) for ``seconds`` after a 2 s warm-up; the service tree's CPU."""
    svc = Service(
        db_url, workers=workers, log_path=log_dir / f"{name.split()[0]}-{uuid.uuid4().hex}.log"
    )
    if app is not None:
        svc.command = _uvicorn(app[0], svc.port, workers, factory=app[1])
    await svc.start()
    try:
        prepared = prepare(bodies, host="127.0.0.1", port=svc.port)
        await run_load(prepared, port=svc.port, connections=32, duration_s=2.0, max_requests=20_000)
        sampler = Sampler(service=service_tree(svc.pid), postgres=lambda: [])
        sampler.start()
        res = await run_load(
            prepared, port=svc.port, connections=32, duration_s=seconds, max_requests=200_000
        )
        fig = sampler.stop()
    finally:
        svc.stop()
    if set(res.status_counts) != {200}:
        raise RuntimeError(f"{name}: answers {res.status_counts}")
    return Floor(name, res.acked_events, fig.service_cpu_s, res.duration_s)


def decode_phase(bodies: list[Body], *, now: datetime, seconds: float) -> Floor:
    """decode_body of the bodies, round-robin, for ``seconds`` on this process."""
    from drain.inputs.logplex import decode_body
    from drain.settings import Settings

    defaults = Settings.defaults()
    limits, rules = defaults.decode_limits(), defaults.line_rules(CLIENT_HASH_KEY)
    events = 0
    cpu0, t0 = time.process_time(), time.monotonic()
    for i in range(10_000_000):  # bounded by the time too
        if time.monotonic() - t0 > seconds:
            break
        b = bodies[i % len(bodies)]
        events += len(decode_body(b.body, now=now, limits=limits, rules=rules).events)
    return Floor(
        "decode only (decode_body)", events, time.process_time() - cpu0, time.monotonic() - t0
    )


async def copy_phase(db_url: str, bodies: list[Body], *, now: datetime, events: int) -> Floor:
    """The COPY of every row of ``events`` events (bench.gen.ceiling_transactions) over a
    connection of drain's pool; this process's CPU."""
    from drain.store.database import create_pool
    from drain.store.tables import TABLES

    transactions = ceiling_transactions(bodies, events, now=now)
    pool = await create_pool(db_url, min_size=1, max_size=1)
    try:
        async with pool.acquire() as conn:
            for name in TABLES:
                days = {TABLES[name].day(r) for t in transactions for r in t.records.get(name, ())}
                for d in sorted(days):
                    await conn.execute("SELECT drain_ensure_partition($1, $2)", name, d)
            cpu0, t0 = time.process_time(), time.monotonic()
            for t in transactions:
                async with conn.transaction():
                    for name, records in t.records.items():
                        await conn.copy_records_to_table(
                            name, records=records, columns=TABLES[name].columns
                        )
            cpu, wall = time.process_time() - cpu0, time.monotonic() - t0
            await conn.execute("TRUNCATE raw_events, router_requests")
    finally:
        await pool.close()
    return Floor("COPY only (asyncpg, drain's codecs)", events, cpu, wall)


async def writer_phase(
    db_url: str, bodies: list[Body], *, now: datetime, seconds: float, decode_each: bool = False
) -> Floor:
    """drain.store.writer.Writer fed the decoded bodies by 32 submitters; this process's CPU.
    With ``decode_each`` every submitter decodes its body first (fresh rows each time, as
    in the service), else the rows of one decode per body are submitted again and again."""
    from drain.inputs.logplex import decode_body
    from drain.records import PendingBatch
    from drain.settings import Settings
    from drain.store.database import create_pool
    from drain.store.writer import Writer

    defaults = Settings.defaults()
    limits, rules = defaults.decode_limits(), defaults.line_rules(CLIENT_HASH_KEY)
    decoded = decoded_rows(bodies, now=now)
    pool = await create_pool(db_url)
    writer = Writer(pool, defaults.writer_config())
    await writer.start()
    counter = iter(range(1_000_000))
    prefix = uuid.uuid4().hex[:8]
    stored = 0

    async def submitter(deadline: float) -> None:
        nonlocal stored
        for k in counter:
            if time.monotonic() > deadline:
                return
            if decode_each:
                body = bodies[k % len(bodies)].body
                rows = decode_body(body, now=now, limits=limits, rules=rules, app=DRAIN_TOKEN).rows
            else:
                rows = decoded[k % len(decoded)]
            batch = PendingBatch(DRAIN_TOKEN, f"{prefix}{k:016d}", now, rows, [], 0)
            res = await writer.submit(batch)
            stored += res.events_stored

    try:
        cpu0, t0 = time.process_time(), time.monotonic()
        await asyncio.gather(*(submitter(t0 + seconds) for _ in range(32)))
        cpu, wall = time.process_time() - cpu0, time.monotonic() - t0
    finally:
        await writer.close()
        await pool.close()
    name = (
        "decode_body + Writer, one process, no HTTP"
        if decode_each
        else "Writer only (claim, rows, COPY, COMMIT)"
    )
    return Floor(name, stored, cpu, wall)


async def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.floor", description=__doc__.split("\n\n")[0])
    ap.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL"))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=10.0)
    args = ap.parse_args(argv)

    now = datetime.now(UTC)
    bodies = make_bodies(64, now=now, seed=20261201)
    log_dir = Path(tempfile.mkdtemp(prefix="drain-bench-floor-"))
    w = args.workers
    with admin_server(args.database_url) as (admin_url, kind):
        dbname, db_url = await create_database(admin_url, prefix="drain_floor")
        try:
            migrate(db_url)
            print(
                f"# drain's CPU per event against its floors — {now:%Y-%m-%d %H:%M} UTC, "
                f"{os.cpu_count()} cores, drain commit {git_commit()}, PostgreSQL {kind}; "
                f"{len(bodies)} bodies of {sum(b.frames for b in bodies) / len(bodies):.0f} "
                f"frames and {sum(len(b.events) for b in bodies) / len(bodies):.0f} events",
                flush=True,
            )
            workers = f"{w} worker{'s' if w > 1 else ''}"
            serve = await http_phase(
                f"drain serve, {workers}",
                bodies,
                db_url=db_url,
                workers=w,
                seconds=args.seconds,
                log_dir=log_dir,
            )
            bare = await http_phase(
                f"bare ASGI app, uvicorn {workers} (read the body, answer 200)",
                bodies,
                db_url=db_url,
                workers=w,
                seconds=args.seconds,
                log_dir=log_dir,
                app=("bench.floor_app:asgi", False),
            )
            fastapi = await http_phase(
                f"FastAPI route, uvicorn {workers} (stream the body, answer 200)",
                bodies,
                db_url=db_url,
                workers=w,
                seconds=args.seconds,
                log_dir=log_dir,
                app=("bench.floor_app:fastapi_app", True),
            )
            pipeline = await http_phase(
                f"FastAPI route + decode_body + Writer, uvicorn {workers} (no glue)",
                bodies,
                db_url=db_url,
                workers=w,
                seconds=args.seconds,
                log_dir=log_dir,
                app=("bench.floor_app:pipeline_app", True),
            )
            tune_gc()  # the in-process phases collect as drain's workers do
            decode = decode_phase(bodies, now=now, seconds=min(args.seconds, 5.0))
            copy = await copy_phase(db_url, bodies, now=now, events=300_000)
            writer = await writer_phase(db_url, bodies, now=now, seconds=min(args.seconds, 8.0))
            both = await writer_phase(
                db_url, bodies, now=now, seconds=min(args.seconds, 8.0), decode_each=True
            )
        finally:
            await drop_database(admin_url, dbname)
    rows = [serve, bare, fastapi, pipeline, decode, copy, writer, both]
    print("\n| component | events | events/s | CPU µs/event | / drain serve |")
    print("|---|---|---|---|---|")
    for f in rows:
        print(
            f"| {f.name} | {f.events:,} | {f.events_per_s:,.0f} | {f.us_per_event:.2f} "
            f"| {f.us_per_event / serve.us_per_event:.2f} |"
        )
    floor = bare.us_per_event + decode.us_per_event + copy.us_per_event
    print(
        f"\n- floor of this stack (bare HTTP + decode + COPY): {floor:.2f} µs/event, "
        f"{floor / serve.us_per_event:.2f} of drain serve's {serve.us_per_event:.2f}"
    )
    print(
        f"- drain serve beyond the floor: {serve.us_per_event - floor:.2f} µs/event "
        f"(FastAPI's route over the bare app: "
        f"{fastapi.us_per_event - bare.us_per_event:.2f}; the Writer over its COPY: "
        f"{writer.us_per_event - copy.us_per_event:.2f})"
    )
    print(
        f"- drain serve beyond the same stages run together without glue: "
        f"{serve.us_per_event - pipeline.us_per_event:.2f} µs/event"
    )
    print(f"- service logs in {log_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
