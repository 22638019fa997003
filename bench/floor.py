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

5. ``decode_body`` of every body (drain.inputs.logplex), the decode stage alone
   (bench.run's decode phase);
6. the COPY of every row the service writes for the bodies (bench.run's ceiling phase,
   over a connection with drain's codecs: drain.store.database.use_drain_codecs), 5000
   events per transaction: asyncpg's encoding and sending, client side;
7. ``drain.store.writer.Writer`` fed the decoded bodies (ledger claim, row building, COPY,
   COMMIT), without HTTP or decoding (bench.run's Writer phase);
8. the same, each submitter decoding its body first.

Each figure is CPU seconds (user + system) of the process tree that did the work, divided
by the events stored or posted. The floor of this architecture is (2) + (5) + (6): an
HTTP server of this stack that decodes and COPYs the rows and does nothing else; (4) is
the same stages run together in one process; what ``drain serve`` spends beyond (4) is its
own glue (admission, bounds, the body budget, telemetry, the log line); (8), decode and
Writer in this process with fresh rows per body, shows what running the stages together
costs beyond their sum. Printed, never asserted; bench/README.md (section "Round 3") has
the figures and what they say.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench.gen import Body, ceiling_transactions, make_bodies
from bench.loadgen import prepare, run_load
from bench.measure import Sampler, service_tree
from bench.run import (
    Phase,
    admin_server,
    body_bytes_per_event,
    describe_server,
    git_commit,
    phase_ceiling,
    phase_decode,
    phase_writer,
)
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


def _floor(phase: Phase) -> Floor:
    """A phase of bench.run measured on this process, as a :class:`Floor`."""
    return Floor(phase.name, phase.events, phase.figures.self_cpu_s, phase.wall_s)


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
            served: list[Floor] = []
            for name, app in (
                (f"drain serve, {workers}", None),
                (
                    f"bare ASGI app, uvicorn {workers} (read the body, answer 200)",
                    ("bench.floor_app:asgi", False),
                ),
                (
                    f"FastAPI route, uvicorn {workers} (stream the body, answer 200)",
                    ("bench.floor_app:fastapi_app", True),
                ),
                (
                    f"FastAPI route + decode_body + Writer, uvicorn {workers} (no glue)",
                    ("bench.floor_app:pipeline_app", True),
                ),
            ):
                served.append(
                    await http_phase(
                        name,
                        bodies,
                        db_url=db_url,
                        workers=w,
                        seconds=args.seconds,
                        log_dir=log_dir,
                        app=app,
                    )
                )
            serve, bare, fastapi, pipeline = served
            tune_gc()  # the in-process phases collect as drain's workers do
            decode = _floor(phase_decode(bodies, now=now, max_s=min(args.seconds, 5.0)))
            pm_pid = int((await describe_server(admin_url))["postmaster_pid"])
            copy = _floor(
                await phase_ceiling(
                    db_url,
                    dbname,
                    pm_pid,
                    ceiling_transactions(bodies, 300_000, now=now),
                    body_bytes_per_event(bodies),
                    drain_codecs=True,
                )
            )
            in_process: list[Floor] = []
            for decode_each in (False, True):
                phase = await phase_writer(
                    db_url,
                    dbname,
                    pm_pid,
                    bodies,
                    now=now,
                    submitters=32,
                    max_s=min(args.seconds, 8.0),
                    max_batches=1_000_000,
                    decode_each=decode_each,
                )
                in_process.append(_floor(phase))
            writer, both = in_process
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
