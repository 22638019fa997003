"""Load an archived day back into PostgreSQL, exactly once, and drop it again when done.

``drain archive restore DATE [--table T] [--app A]`` (:func:`restore_day`), per table:

1. it holds the maintenance lock (drain.store.lifecycle.MAINTENANCE_LOCK_KEY), so no
   maintenance archives or drops the day meanwhile;
2. every generation of the day must be ``dropped`` (an unfinished archive run is finished
   by ``drain archive`` first: until then the rows are still in PostgreSQL);
3. the day's partition is made if missing; it may already hold rows only of apps restored
   before (any other row would be mixed with archived ones, and could not be told apart
   when the day is released: :class:`~drain.errors.RestoreRefused`);
4. for each app not yet restored, in ONE transaction: a row in ``archive_restores`` (the
   restores' ledger: ``INSERT ... ON CONFLICT DO NOTHING``, as ``received_batches`` is for
   batches), the app's files read back and checked (size, SHA-256, Parquet page
   checksums, rows and key checksum against the manifest: a corrupt or partial file is
   refused, never loaded), their rows COPYed into a staging table and inserted into the
   partition with each column cast to its type, and the partition's rows of that app
   checksummed in PostgreSQL against the manifest. Any difference rolls it all back.

So a restore run twice loads once, and a restore killed half-way loaded nothing of the app
it was at. The exactly-once ledger of batches (received_batches) is not involved: the
rows restored are the rows archived, each once; their batches' ledger rows may have been
pruned since, which matters only for a batch Logplex would retry, and no retry reaches a
day this old (it is outside the acceptance window). While a day has restores, retention
keeps its partition.

``drain archive release DATE [--table T]`` (:func:`release_day`): checks that the partition
holds exactly the restored rows (count and key checksum per app), then in one transaction
(``lock_timeout`` 5 s) drops the partition and deletes its restore rows.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import asyncpg
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from drain.archive.columns import TableSchema, quote_ident, schema_of
from drain.archive.destination import Destination
from drain.archive.layout import Checksum
from drain.archive.parquet import measure_file
from drain.errors import ArchiveMismatch, RestoreRefused
from drain.store.database import Conn
from drain.store.lifecycle import MAINTENANCE_LOCK_KEY
from drain.store.partitions import ensure_partitions, partition_name
from drain.store.tables import TABLES, DataTable

__all__ = ["LOCK_WAIT_S", "RestoreResult", "manifest_of", "release_day", "restore_day"]

#: how long a restore or release waits for a running maintenance, seconds
LOCK_WAIT_S = 120


@dataclass(frozen=True, slots=True)
class RestoreResult:
    """What a restore or release did for one (table, app).

    Fields:
        table, day, app: what. rows: rows loaded (or dropped). status: ``restored``,
        ``already restored``, ``released``, ``nothing archived``, ``nothing restored``.
    """

    table: str
    day: date
    app: str | None
    rows: int
    status: str


@contextlib.asynccontextmanager
async def _maintenance_lock(pool: asyncpg.Pool) -> Any:
    async with pool.acquire() as conn:
        await conn.execute(f"SET lock_timeout = {LOCK_WAIT_S * 1000}")
        await conn.execute("SELECT pg_advisory_lock($1)", MAINTENANCE_LOCK_KEY)
        try:
            await conn.execute("RESET lock_timeout")
            yield conn
        finally:
            if not conn.is_closed():
                await conn.execute("SELECT pg_advisory_unlock($1)", MAINTENANCE_LOCK_KEY)


async def restore_day(
    pool: asyncpg.Pool,
    destination: Callable[[str], Destination],
    day: date,
    *,
    tables: Mapping[str, DataTable] | None = None,
    app: str | None = None,
    spool_dir: str | None = None,
) -> list[RestoreResult]:
    """Restore ``day`` (see the module docstring).

    Args:
        pool: a pool on DATABASE_URL.
        destination: the destination a generation was written to, from its recorded URL.
        day: the UTC day.
        tables: the tables to restore (default: every registered data table).
        app: only this app's rows.

    Raises:
        RestoreRefused: an archive run of the day is unfinished, the partition holds rows
            that are not restored ones, or ``app`` has no rows in the archive.
        ArchiveMismatch: a file is missing, corrupt or not what the manifest says (nothing
            of that app is loaded).
    """
    chosen = dict(TABLES if tables is None else tables)
    results: list[RestoreResult] = []
    async with _maintenance_lock(pool) as conn:
        for table in chosen.values():
            results.extend(await _restore_table(conn, destination, table, day, app, spool_dir))
    if app is not None and all(r.status == "nothing archived" for r in results):
        raise RestoreRefused(f"no rows of app {app!r} are archived for {day.isoformat()}")
    return results


async def _generations(conn: Conn, table: str, day: date) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            """SELECT * FROM archive_partitions WHERE table_name = $1 AND day = $2
                ORDER BY generation""",
            table,
            day,
        )
    )


async def _held_rows(conn: Conn, partition: str, app_column: str) -> dict[str, int]:
    exists = await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", quote_ident(partition))
    if not exists:
        return {}
    rows = await conn.fetch(
        f"SELECT {quote_ident(app_column)} AS app, count(*) AS n"
        f" FROM {quote_ident(partition)} GROUP BY 1"
    )
    return {r["app"]: int(r["n"]) for r in rows}


async def _restore_table(
    conn: Conn,
    destination: Callable[[str], Destination],
    table: DataTable,
    day: date,
    app: str | None,
    spool_dir: str | None,
) -> list[RestoreResult]:
    generations = await _generations(conn, table.name, day)
    if not generations:
        return [RestoreResult(table.name, day, app, 0, "nothing archived")]
    unfinished = [g for g in generations if g["state"] != "dropped"]
    if unfinished:
        raise RestoreRefused(
            f"{table.name} {day.isoformat()}: an archive run is unfinished (generation "
            f"{unfinished[0]['generation']} is {unfinished[0]['state']}; its rows are still "
            "in PostgreSQL): run `drain archive` first"
        )
    files = await conn.fetch(
        """SELECT * FROM archive_files WHERE table_name = $1 AND day = $2
            ORDER BY generation, path""",
        table.name,
        day,
    )
    apps = sorted({f["app"] for f in files})
    if app is not None:
        if app not in apps:
            return [RestoreResult(table.name, day, app, 0, "nothing archived")]
        apps = [app]
    partition = partition_name(table.name, day)
    app_column = table.row_columns[table.app_index]
    held = await _held_rows(conn, partition, app_column)
    restored = {
        r["app"]
        for r in await conn.fetch(
            "SELECT app FROM archive_restores WHERE table_name = $1 AND day = $2",
            table.name,
            day,
        )
    }
    if restored and not held:
        # a partition dropped by hand after a restore: those restore rows are stale
        await conn.execute(
            "DELETE FROM archive_restores WHERE table_name = $1 AND day = $2", table.name, day
        )
        restored = set()
    foreign = {a: n for a, n in held.items() if a not in restored}
    if foreign:
        raise RestoreRefused(
            f"{partition} holds {sum(foreign.values())} rows (apps {sorted(foreign)}) that "
            "are not restored from the archive: restoring would mix them with archived rows"
        )
    await ensure_partitions(conn, table.name, [day])
    results = []
    by_generation = {g["generation"]: g for g in generations}
    for each in apps:
        if each in restored:
            results.append(RestoreResult(table.name, day, each, 0, "already restored"))
            continue
        mine = [f for f in files if f["app"] == each]
        rows = await _restore_app(
            conn, destination, table, day, each, mine, by_generation, partition, spool_dir
        )
        status = "restored" if rows is not None else "already restored"
        results.append(RestoreResult(table.name, day, each, rows or 0, status))
    return results


async def _restore_app(
    conn: Conn,
    destination: Callable[[str], Destination],
    table: DataTable,
    day: date,
    app: str,
    files: list[asyncpg.Record],
    generations: Mapping[int, asyncpg.Record],
    partition: str,
    spool_dir: str | None,
) -> int | None:
    """Load one app's files in one transaction; None when another restore got there first."""
    expected = sum((Checksum.parse(f["rows"], f["checksum"]) for f in files), Checksum())
    last: TableSchema | None = None
    async with conn.transaction():
        inserted = await conn.fetchval(
            """INSERT INTO archive_restores (table_name, day, app, rows, checksum)
               VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING 1""",
            table.name,
            day,
            app,
            expected.rows,
            expected.hex,
        )
        if inserted is None:
            return None
        for number, record in enumerate(files):
            gen = generations[record["generation"]]
            manifest = manifest_of(gen)
            schema = schema_of(
                table.name, manifest["columns"], manifest["time_column"], manifest["app_column"]
            )
            last = schema
            await _load_file(
                conn,
                destination(gen["destination"]),
                schema,
                record,
                day,
                partition,
                f"drain_restore_{number}",
                spool_dir,
            )
        if last is not None:
            found = await conn.fetch(
                last.stats_query(partition, f"WHERE {quote_ident(last.app_column)} = $1"), app
            )
            got = (
                Checksum.of_sums(found[0]["rows"], int(found[0]["sum_a"]), int(found[0]["sum_b"]))
                if found
                else Checksum()
            )
            if got != expected:
                raise ArchiveMismatch(
                    partition,
                    f"app {app!r}: restored {got.rows} rows (checksum {got.hex}), the "
                    f"manifest says {expected.rows} ({expected.hex})",
                )
    return expected.rows


def manifest_of(generation: asyncpg.Record) -> dict[str, Any]:
    """The manifest a verified generation (an archive_partitions row) recorded."""
    value = generation["manifest"]
    found = orjson.loads(value) if isinstance(value, str) else value
    assert isinstance(found, dict)
    return found


async def _load_file(
    conn: Conn,
    destination: Destination,
    schema: TableSchema,
    record: asyncpg.Record,
    day: date,
    partition: str,
    stage: str,
    spool_dir: str | None,
) -> None:
    """Check one file against its record, then COPY its rows into the partition."""
    with contextlib.ExitStack() as stack:
        fetched = await asyncio.to_thread(
            stack.enter_context, destination.fetch(record["path"], spool_dir)
        )
        if fetched.size != record["bytes"] or fetched.sha256 != record["sha256"]:
            raise ArchiveMismatch(
                record["path"],
                f"{fetched.size} bytes, SHA-256 {fetched.sha256[:12]}...: not the file "
                f"archived ({record['bytes']} bytes, {str(record['sha256'])[:12]}...)",
            )
        checksum, *_ = await asyncio.to_thread(
            measure_file, fetched.path, record["path"], schema, record["app"], day
        )
        if checksum != Checksum.parse(record["rows"], record["checksum"]):
            raise ArchiveMismatch(record["path"], "its rows are not the rows archived")
        columns = ", ".join(f"{quote_ident(c.name)} {c.stage_type}" for c in schema.columns)
        await conn.execute(f"CREATE TEMP TABLE {stage} ({columns}) ON COMMIT DROP")
        parquet = pq.ParquetFile(fetched.path)
        batches = parquet.iter_batches(batch_size=50_000)
        while (batch := await asyncio.to_thread(next, batches, None)) is not None:
            await conn.copy_records_to_table(stage, records=_records(batch), columns=schema.names)
        names = ", ".join(quote_ident(c.name) for c in schema.columns)
        casts = ", ".join(
            quote_ident(c.name)
            if c.stage_type == c.pg_type
            else f"{quote_ident(c.name)}::{c.pg_type}"
            for c in schema.columns
        )
        await conn.execute(
            f"INSERT INTO {quote_ident(partition)} ({names}) SELECT {casts} FROM {stage}"
        )


def _records(batch: pa.RecordBatch) -> Iterator[tuple[Any, ...]]:
    return zip(*(column.to_pylist() for column in batch.columns), strict=True)


async def release_day(
    pool: asyncpg.Pool, day: date, *, tables: Mapping[str, DataTable] | None = None
) -> list[RestoreResult]:
    """Drop a restored day again (see the module docstring).

    Raises:
        RestoreRefused: the partition holds rows that are not the restored ones.
    """
    chosen = dict(TABLES if tables is None else tables)
    results = []
    async with _maintenance_lock(pool) as conn:
        for name, table in chosen.items():
            restores = await conn.fetch(
                """SELECT app, rows, checksum FROM archive_restores
                    WHERE table_name = $1 AND day = $2""",
                name,
                day,
            )
            if not restores:
                results.append(RestoreResult(name, day, None, 0, "nothing restored"))
                continue
            partition = partition_name(name, day)
            app_column = table.row_columns[table.app_index]
            held = await _held_rows(conn, partition, app_column)
            expected = {r["app"]: Checksum.parse(r["rows"], r["checksum"]) for r in restores}
            if held:
                await _check_release(conn, table, partition, expected)
            total = sum(c.rows for c in expected.values())
            async with conn.transaction():
                await conn.execute("SET LOCAL lock_timeout = 5000")
                if held:
                    count = await conn.fetchval(f"SELECT count(*) FROM {quote_ident(partition)}")
                    if count != total:
                        raise RestoreRefused(
                            f"{partition} holds {count} rows, {total} were restored: not dropped"
                        )
                    await conn.execute(f"DROP TABLE {quote_ident(partition)}")
                await conn.execute(
                    "DELETE FROM archive_restores WHERE table_name = $1 AND day = $2", name, day
                )
            results.extend(
                RestoreResult(name, day, a, c.rows, "released") for a, c in sorted(expected.items())
            )
    return results


async def _check_release(
    conn: Conn, table: DataTable, partition: str, expected: Mapping[str, Checksum]
) -> None:
    from drain.archive.columns import table_schema

    schema = await table_schema(conn, table)
    found = {
        r["app"]: Checksum.of_sums(r["rows"], int(r["sum_a"]), int(r["sum_b"]))
        for r in await conn.fetch(schema.stats_query(partition))
    }
    if found != dict(expected):
        extra = sorted(set(found) - set(expected))
        raise RestoreRefused(
            f"{partition} does not hold exactly the restored rows"
            + (f" (apps {extra} were not restored)" if extra else " (rows changed)")
            + ": not dropped; delete or archive the others first"
        )
