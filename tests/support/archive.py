"""Helpers for the archive tests: expired partitions filled in SQL, a local S3-compatible
server (moto's standalone server), and the checks that no row was lost or doubled."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta

import asyncpg
import pyarrow.fs as pafs

from drain.archive.archiver import Archiver, Observer
from drain.archive.columns import table_schema
from drain.archive.config import ArchiveConfig
from drain.archive.destination import Destination
from drain.archive.layout import Checksum
from drain.archive.parquet import read_back
from drain.store.lifecycle import MaintenanceReport, maintain
from drain.store.partitions import ensure_partitions, partition_name
from drain.store.tables import RAW_EVENTS
from tests.support.config import retention_policy

#: the retention the archive tests run with: days older than 10 (and 7 of acceptance) go
POLICY = retention_policy(ahead_days=1, retention_days=10, accept_past_s=7 * 86400)
#: apps the generated rows belong to: a DRAIN_APPS-like name, a drain token, no token, and
#: one whose directory name needs escaping
APPS = ("shop", "d.fc6b856b-3332-4546-93de-7d0ee272c3bd", "", "blog/été")
NOW = datetime.now(UTC).replace(microsecond=0)


def old_day(n: int) -> date:
    """A UTC day ``n`` days past retention (n = 0: 20 days ago)."""
    return (NOW - timedelta(days=20 + n)).date()


def config_for(url: str, **overrides: object) -> ArchiveConfig:
    """An archive configuration writing to ``url`` (small row groups, 1 MiB files)."""
    base = ArchiveConfig(
        url=url,
        file_max_bytes=1 << 20,
        endpoint_url=os.environ.get("AWS_ENDPOINT_URL"),
        region="us-east-1",
        row_group_rows=16_384,
    )
    return replace(base, **overrides)  # type: ignore[arg-type]


async def fill_day(
    conn: asyncpg.Connection, day: date, rows: int, *, apps: tuple[str, ...] = APPS, seed: int = 0
) -> None:
    """``rows`` raw_events rows in ``day``'s partition, spread over the day and ``apps``:
    ``production.pay`` events with item categories and prices (integers, decimals, a missing
    and a non-numeric one), others of other tags, NULL host names, JSON with quotes,
    backslashes, newlines (escaped) and non-ASCII text."""
    await ensure_partitions(conn, "raw_events", [day])
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    step_us = max(1, 86_400_000_000 // max(rows, 1))
    await conn.execute(
        """
        INSERT INTO raw_events (event_time, received_at, tag, payload, facility, severity,
                                hostname, app_name, proc_id, drain_token, frame_id, app)
        SELECT $1::timestamptz + ((g * $3::bigint) || ' microseconds')::interval,
               $1::timestamptz + interval '1 day',
               CASE WHEN g % 4 = 3 THEN 'production.access' ELSE 'production.pay' END,
               CASE
                 WHEN g % 97 = 0 THEN jsonb_build_object('uid', g, 'note', E'a "q" \\\\ é\n')
                 WHEN g % 89 = 0 THEN jsonb_build_object('uid', g, 'price', 'free',
                                                         'item_category', 'categoryA')
                 WHEN g % 83 = 0 THEN jsonb_build_object('uid', g, 'item_category', 'categoryB')
                 ELSE jsonb_build_object('uid', g, 'item_id', g % 1000,
                                         'item_category', 'category' || chr(65 + g % 5),
                                         'price', CASE WHEN g % 10 = 0 THEN (g % 997) + 0.25
                                                       ELSE g % 997 END)
               END,
               1, 6,
               CASE WHEN g % 7 = 0 THEN NULL ELSE 'host-' || (g % 3) END,
               'app', 'web.' || (g % 4), 'd.token', 'frame-' || ($4 + g / 500),
               ($2::text[])[1 + (g % array_length($2::text[], 1))]
          FROM generate_series(0, $5 - 1) AS g
        """,
        start,
        list(apps),
        step_us,
        seed,
        rows,
    )


async def partition_checksum(conn: asyncpg.Connection, relation: str) -> Checksum:
    """The key checksum of every row of ``relation``, computed by PostgreSQL."""
    schema = await table_schema(conn, RAW_EVENTS)
    total = Checksum()
    for r in await conn.fetch(schema.stats_query(relation)):
        total = total + Checksum.of_sums(r["rows"], int(r["sum_a"]), int(r["sum_b"]))
    return total


async def exists(conn: asyncpg.Connection, relation: str) -> bool:
    """True when the table ``relation`` exists (attached or not)."""
    return bool(await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", f'"{relation}"'))


async def archived_checksum(
    conn: asyncpg.Connection, destination: Destination, day: date
) -> Checksum | None:
    """The checksum of the verified generations' files of ``day``, read back from the
    destination (each checked against its record); None when none is verified."""
    schema = await table_schema(conn, RAW_EVENTS)
    files = await conn.fetch(
        """SELECT f.* FROM archive_files f JOIN archive_partitions p USING (table_name, day,
                  generation)
            WHERE f.table_name = 'raw_events' AND f.day = $1
              AND p.state IN ('verified', 'dropped')""",
        day,
    )
    if not files:
        verified = await conn.fetchval(
            """SELECT count(*) FROM archive_partitions WHERE day = $1
                AND state IN ('verified', 'dropped')""",
            day,
        )
        return Checksum() if verified else None
    total = Checksum()
    for f in files:
        stats = await asyncio.to_thread(
            read_back,
            destination,
            f["path"],
            schema,
            app=f["app"],
            day=day,
            size=f["bytes"],
            sha256=f["sha256"],
        )
        total = total + stats.checksum
    return total


async def assert_no_row_lost(
    conn: asyncpg.Connection, destination: Destination, expected: dict[date, Checksum]
) -> None:
    """Every row of every day is in PostgreSQL (its partition, attached or detached) or in
    a verified archive whose files read back to the same checksum."""
    for day, want in expected.items():
        name = partition_name("raw_events", day)
        if await exists(conn, name):
            assert await partition_checksum(conn, name) == want, name
        else:
            assert await archived_checksum(conn, destination, day) == want, name


async def assert_archived_once(
    conn: asyncpg.Connection,
    destination: Destination,
    expected: dict[date, Checksum],
    *,
    read_files: bool = True,
) -> None:
    """Every day is gone from PostgreSQL and archived exactly once: one dropped
    generation, its manifest (in the database and in the destination) listing each file
    once, no other file in the destination, and (``read_files``) the files read back hold
    exactly the rows."""
    import orjson

    listed: set[str] = set()
    for day, want in expected.items():
        assert not await exists(conn, partition_name("raw_events", day))
        rows = await conn.fetch(
            "SELECT state, manifest, manifest_path FROM archive_partitions WHERE day = $1", day
        )
        assert [r["state"] for r in rows] == ["dropped"]
        manifest = orjson.loads(rows[0]["manifest"])
        paths = [f["path"] for f in manifest["files"]]
        assert len(paths) == len(set(paths))
        assert orjson.loads(destination.get(rows[0]["manifest_path"])) == manifest
        assert manifest["rows"] == want.rows and manifest["checksum"]["md5_lanes"] == want.hex
        if read_files:
            assert await archived_checksum(conn, destination, day) == want
        listed.update(paths)
        listed.add(rows[0]["manifest_path"])
    recorded = {r["path"] for r in await conn.fetch("SELECT path FROM archive_files")}
    assert recorded == {p for p in listed if "/_manifests/" not in p}
    found = destination.walk("raw_events")
    assert sorted(found) == sorted(listed), "a file in the destination is no manifest's"


async def archive_now(
    pool: asyncpg.Pool, config: ArchiveConfig, observer: Observer | None = None
) -> MaintenanceReport:
    """One ``drain archive`` run in this process (waits, bounded, for a killed run's
    session lock to go)."""
    archiver = Archiver(pool, config, observer=observer)
    for _ in range(100):
        report = await maintain(pool, POLICY, guard=archiver, retire_only=True, now=NOW)
        if report.skipped is None:
            return report
        await asyncio.sleep(0.1)
    raise AssertionError("the maintenance lock was never free")


@dataclass(frozen=True)
class S3Server:
    """A moto standalone server on 127.0.0.1: its endpoint and a bucket made for the tests."""

    endpoint: str
    bucket: str

    def env(self) -> dict[str, str]:
        """The variables a drain process needs to use it."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": "us-east-1",
        }


@contextlib.contextmanager
def moto_server() -> Iterator[S3Server]:
    """Start moto's S3 server in this process on a free port (stopped at exit)."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        s3 = S3Server(f"http://{host}:{port}", "drain-archive")
        filesystem = pafs.S3FileSystem(
            access_key="testing",
            secret_key="testing",
            region="us-east-1",
            endpoint_override=s3.endpoint,
            scheme="http",
            allow_bucket_creation=True,
        )
        filesystem.create_dir(s3.bucket)
        yield s3
    finally:
        server.stop()
