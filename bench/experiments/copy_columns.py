"""What each column type costs asyncpg's COPY encoding, with asyncpg's timestamptz codec and
with drain's (drain.pgwire.timestamptz).

Usage (from the repository root)::

    .venv/bin/python -m bench.experiments.copy_columns [--rows 100000] [--database-url URL]

In a fresh database, for each column set (6 texts; one timestamptz, distinct per row; one
timestamptz, the same object in every row; one jsonb; the 12 columns of a ``raw_events``
row), COPYs ``--rows`` rows into an UNLOGGED table, 5000 rows per ``copy_records_to_table``,
best of 3, on a connection with asyncpg's codecs and on one with
:func:`drain.store.database.use_drain_codecs`. Prints this process's CPU (user + system)
per row: the client's share of a COPY, which is what the writer spends; and whether drain's
codec ran compiled (uncompiled, ``DRAIN_PURE_PYTHON=1``, it is about even with asyncpg's).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import asyncpg

from bench.run import admin_server
from drain import speedups
from drain.store.database import use_drain_codecs
from testkit.pg import create_database, drop_database

CHUNK = 5000
PAYLOAD = '{"uid":123,"item_category":"categoryA","price":321321,"n":12345}'


def _cases(n: int) -> dict[str, tuple[str, list[tuple[object, ...]]]]:
    now = datetime.now(UTC)
    times = [now + timedelta(microseconds=i) for i in range(n)]
    texts = ("production.pay", "host", "app", "web.1", "d.1234-5678", "frame-abc")
    raw_events = (
        "event_time timestamptz, received_at timestamptz, tag text, payload jsonb, "
        "facility smallint, severity smallint, hostname text, app_name text, proc_id text, "
        "drain_token text, frame_id text, app text"
    )
    return {
        "6 texts": ("a text, b text, c text, d text, e text, f text", [texts] * n),
        "1 timestamptz, distinct": ("t timestamptz", [(t,) for t in times]),
        "1 timestamptz, one object": ("t timestamptz", [(now,)] * n),
        "1 jsonb": ("j jsonb", [(PAYLOAD,)] * n),
        "raw_events row (12 columns)": (
            raw_events,
            [
                (t, now, "production.pay", PAYLOAD, 1, 6, "host", "app", "web.1", "d.1", "f", "a")
                for t in times
            ],
        ),
    }


async def _cpu_per_row(
    conn: asyncpg.Connection, table: str, columns: str, rows: list[tuple[object, ...]]
) -> float:
    names = [c.split()[0] for c in columns.split(",")]
    await conn.execute(f"CREATE UNLOGGED TABLE {table} ({columns})")
    best = float("inf")
    for _ in range(3):
        await conn.execute(f"TRUNCATE {table}")
        cpu = time.process_time()
        for i in range(0, len(rows), CHUNK):
            await conn.copy_records_to_table(table, records=rows[i : i + CHUNK], columns=names)
        best = min(best, time.process_time() - cpu)
    assert await conn.fetchval(f"SELECT count(*) FROM {table}") == len(rows)
    return best / len(rows) * 1e6


async def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench.experiments.copy_columns", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL"))
    args = ap.parse_args(argv)
    cases = _cases(args.rows)
    figures: dict[str, list[float]] = {name: [] for name in cases}
    with admin_server(args.database_url) as (admin_url, _kind):
        name, url = await create_database(admin_url, prefix="drain_copycols")
        try:
            for codec, setup in (("asyncpg", None), ("drain", use_drain_codecs)):
                conn = await asyncpg.connect(url)
                try:
                    if setup is not None:
                        await setup(conn)
                    for n, (case, (columns, rows)) in enumerate(cases.items()):
                        table = f"copy_{codec}_{n}"
                        figures[case].append(await _cpu_per_row(conn, table, columns, rows))
                finally:
                    await conn.close()
        finally:
            await drop_database(admin_url, name)
    module = importlib.import_module("drain.pgwire.timestamptz")
    print(f"{args.rows:,} rows, {CHUNK} per COPY, best of 3; client CPU µs per row")
    if speedups.is_compiled(module):
        print("drain's codec: compiled (mypyc)")
    else:
        print(
            f"WARNING: drain's codec ran as pure Python ({module.__file__}): these are not the "
            "compiled module's figures. Install with `pip install -e .` (bench/README.md)."
        )
    print("| columns | asyncpg's timestamptz codec | drain's |")
    print("|---|---|---|")
    for case, (ours_asyncpg, ours_drain) in figures.items():
        print(f"| {case} | {ours_asyncpg:.2f} | {ours_drain:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
