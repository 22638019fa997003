"""bench.run's ceiling: every row the service writes for the bodies, COPYed into the same
tables of a real PostgreSQL (the figure issue 14's "≥ 0.85 of the ceiling" divides by)."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlsplit

import asyncpg

from bench.gen import CLIENT_HASH_KEY, DRAIN_TOKEN, ceiling_transactions, make_bodies
from bench.run import describe_server, phase_ceiling
from drain.inputs.logplex import decode_body
from drain.settings import Settings
from drain.store.tables import BATCH_COLUMNS, TABLES


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
    tail = (now, DRAIN_TOKEN, "ceil00000000")
    assert raw[: per_body[0]] == [tuple(r) + tail for r in first.events]
    assert len(BATCH_COLUMNS) == len(tail)
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
