"""How much of a COPY's client CPU is asyncpg's encoding of the rows: the most that COPY rows
pre-encoded elsewhere (by the decoder, say) could save the writer.

Usage (from the repository root)::

    .venv/bin/python -m bench.experiments.copy_encoding [--rows 200000] [--database-url URL]

On a fresh database (``drain migrate``), the ``raw_events`` rows of bench.run's ceiling, in
5000-row transactions over one connection, three ways, each after a TRUNCATE:

1. ``copy_records_to_table`` from the row tuples: what the writer does (encode + send);
2. ``copy_to_table`` of the same rows already in PostgreSQL's binary COPY format (the bytes
   that ``COPY ... TO STDOUT (FORMAT binary)`` gave for them, one payload per transaction,
   prepared before the clock starts): sending alone;
3. (1) again, to see the drift between the first and last measurement.

Prints the client's CPU (this process, user + system) and PostgreSQL's wall rate per row
for each. (1) - (2) is the encoding cost per row; a pre-encoder must build the same bytes
for less than that to pay.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime

import asyncpg

from bench.gen import RAW_EVENTS_COLUMNS, ceiling_rows, make_bodies
from bench.run import admin_server, ensure_partitions
from drain.store.migrate import migrate
from testkit.pg import create_database, drop_database

CHUNK = 5000


async def _timed(
    conn: asyncpg.Connection, chunks: Sequence[object], *, binary: bool
) -> tuple[float, float]:
    """(client CPU s, wall s) of COPYing every chunk, one transaction each."""
    await conn.execute("TRUNCATE raw_events")
    cpu0, t0 = time.process_time(), time.monotonic()
    for chunk in chunks:
        async with conn.transaction():
            if binary:
                assert isinstance(chunk, bytes)
                await conn.copy_to_table(
                    "raw_events",
                    source=io.BytesIO(chunk),
                    columns=RAW_EVENTS_COLUMNS,
                    format="binary",
                )
            else:
                assert isinstance(chunk, list)
                await conn.copy_records_to_table(
                    "raw_events", records=chunk, columns=RAW_EVENTS_COLUMNS
                )
    return time.process_time() - cpu0, time.monotonic() - t0


async def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench.experiments.copy_encoding", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL"))
    args = ap.parse_args(argv)

    now = datetime.now(UTC)
    bodies = make_bodies(16, now=now, seed=20261202)
    rows = ceiling_rows(bodies, args.rows, received_at=now)
    chunks = [rows[i : i + CHUNK] for i in range(0, len(rows), CHUNK)]
    with admin_server(args.database_url) as (admin_url, _kind):
        name, url = await create_database(admin_url, prefix="drain_copyenc")
        try:
            await migrate(url)
            conn = await asyncpg.connect(url)
            try:
                await ensure_partitions(conn, rows)
                encoded = []
                for chunk in chunks:  # the same rows as PostgreSQL's binary COPY bytes
                    await conn.execute("TRUNCATE raw_events")
                    await conn.copy_records_to_table(
                        "raw_events", records=chunk, columns=RAW_EVENTS_COLUMNS
                    )
                    out = io.BytesIO()
                    cols = ", ".join(RAW_EVENTS_COLUMNS)
                    await conn.copy_from_query(
                        f"SELECT {cols} FROM raw_events", output=out, format="binary"
                    )
                    encoded.append(out.getvalue())
                results = [
                    (
                        "copy_records_to_table (encode + send)",
                        await _timed(conn, chunks, binary=False),
                    ),
                    (
                        "copy_to_table, pre-encoded binary (send)",
                        await _timed(conn, encoded, binary=True),
                    ),
                    ("copy_records_to_table again", await _timed(conn, chunks, binary=False)),
                ]
                stored = await conn.fetchval("SELECT count(*) FROM raw_events")
            finally:
                await conn.close()
        finally:
            await drop_database(admin_url, name)
    n = len(rows)
    print(f"{n:,} raw_events rows, {CHUNK} per transaction, one connection; stored {stored:,}")
    print("| way | client CPU µs/row | rows/s |")
    print("|---|---|---|")
    for label, (cpu_s, wall_s) in results:
        print(f"| {label} | {cpu_s / n * 1e6:.2f} | {n / wall_s:,.0f} |")
    enc = (results[0][1][0] + results[2][1][0]) / 2 - results[1][1][0]
    print(f"\nasyncpg's encoding: {enc / n * 1e6:.2f} µs of client CPU per row")
    return 0 if stored == n else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
