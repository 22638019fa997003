"""bench.run's ceiling: every row the service writes for the bodies, COPYed into the same
tables of a real PostgreSQL (the figure issue 14's "≥ 0.85 of the ceiling" divides by)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from urllib.parse import urlsplit

import asyncpg

from bench.gen import (
    CLIENT_HASH_KEY,
    DRAIN_TOKEN,
    ceiling_transactions,
    decoded_rows,
    make_bodies,
)
from bench.run import describe_server, phase_ceiling
from drain.inputs.logplex import decode_body
from drain.records import PendingBatch
from drain.settings import Settings
from drain.store.database import create_pool, use_drain_codecs
from drain.store.tables import TABLES
from drain.store.writer import Writer


def test_transactions_hold_every_row_the_decoder_makes_with_the_batch_columns() -> None:
    now = datetime.now(UTC)
    bodies = make_bodies(3, now=now, seed=7)
    per_body = [len(b.events) for b in bodies]
    n = sum(per_body) * 2 + 17  # two rounds and part of a third body use
    transactions = ceiling_transactions(bodies, n, now=now, chunk=500)

    assert sum(t.events for t in transactions) == n
    assert all(t.events >= 500 for t in transactions[:-1])
    raw = [r for t in transactions for r in t.records["raw_events"]]
    router = [r for t in transactions for r in t.records.get("router_requests", [])]
    assert len(raw) == n
    width = {name: len(table.columns) for name, table in TABLES.items()}
    assert {len(r) for r in raw} == {width["raw_events"]}
    assert {len(r) for r in router} == {width["router_requests"]}

    defaults = Settings.defaults()
    first = decode_body(
        bodies[0].body,
        now=now,
        limits=defaults.decode_limits(),
        rules=defaults.line_rules(CLIENT_HASH_KEY),
        app=DRAIN_TOKEN,
    )
    # the first body use: its rows in body order, each followed by the batch columns
    tail = (now, DRAIN_TOKEN, "ceil00000000000000000000")
    assert raw[: per_body[0]] == [tuple(r) + tail for r in first.events]
    routers_per_use = len(first.rows.get("router_requests", []))
    assert routers_per_use > 0  # the bodies hold router lines, stored by the service
    assert router[:routers_per_use] == [tuple(r) + tail for r in first.rows["router_requests"]]
    # every body use has its own frame id, on the rows of every table
    frame_ids = {r[-1] for r in raw}
    assert len(frame_ids) == 7  # 3 + 3 body uses, then the cut one
    assert {r[-1] for r in router} <= frame_ids


async def test_phase_copies_every_table_and_checks_what_it_stored(migrated_url: str) -> None:
    now = datetime.now(UTC)
    bodies = make_bodies(2, now=now, seed=11)
    transactions = ceiling_transactions(bodies, 1500, now=now, chunk=600)
    info = await describe_server(migrated_url)
    dbname = urlsplit(migrated_url).path.lstrip("/")

    phase = await phase_ceiling(
        migrated_url, dbname, int(info["postmaster_pid"]), transactions, bpe=196.0
    )

    assert phase.check == "ok"
    assert phase.events == phase.stored == 1500
    conn = await asyncpg.connect(migrated_url)
    try:
        routers = await conn.fetchval("SELECT count(*) FROM router_requests")
        frames = await conn.fetchval("SELECT count(DISTINCT frame_id) FROM raw_events")
    finally:
        await conn.close()
    assert routers == sum(len(t.records.get("router_requests", [])) for t in transactions) > 0
    assert frames == len({r[-1] for t in transactions for r in t.records["raw_events"]})


async def test_its_records_are_what_drain_s_writer_stores_for_the_same_body(
    migrated_url: str,
) -> None:
    """One body written by drain.store.writer.Writer, as the service does, and the same
    body's ceiling records: the same rows in every table, frame id aside."""
    now = datetime.now(UTC).replace(microsecond=0)  # PostgreSQL keeps microseconds anyway
    body = make_bodies(1, now=now, seed=13)
    records = ceiling_transactions(body, len(body[0].events), now=now)[0].records
    pool = await create_pool(migrated_url)
    writer = Writer(pool, Settings.defaults().writer_config())
    await writer.start()
    try:
        result = await writer.submit(
            PendingBatch(DRAIN_TOKEN, "frame-1", now, decoded_rows(body, now=now)[0], [], 1)
        )
    finally:
        await writer.close()
        await pool.close()
    assert result.stored == {name: len(rows) for name, rows in records.items()} | {"quarantine": 0}
    conn = await asyncpg.connect(migrated_url)
    try:
        await use_drain_codecs(conn)
        for name, rows in records.items():
            columns = TABLES[name].columns
            jsonb = {
                r["column_name"]
                for r in await conn.fetch(
                    "SELECT column_name FROM information_schema.columns"
                    " WHERE table_name = $1 AND data_type = 'jsonb'",
                    name,
                )
            }
            stored = await conn.fetch(f"SELECT {', '.join(columns)} FROM {name}")

            def value(
                row: tuple[object, ...], columns: tuple[str, ...] = columns, jsonb: set[str] = jsonb
            ) -> tuple[object, ...]:
                """The row without its frame id, jsonb compared as values (PostgreSQL
                gives them back normalized)."""
                return tuple(
                    json.dumps(json.loads(v), sort_keys=True)
                    if c in jsonb and isinstance(v, str)
                    else v
                    for c, v in zip(columns[:-1], row[:-1], strict=True)
                )

            assert sorted(map(repr, map(value, map(tuple, stored)))) == sorted(
                map(repr, map(value, rows))
            ), name
    finally:
        await conn.close()
