"""The Parquet archive on a real PostgreSQL, a local directory and a local S3-compatible
server (moto): partitions past retention archived, verified, listed, restored exactly once,
released, read by DuckDB; failures kept and reported; corrupt files never trusted."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import asyncpg
import duckdb
import orjson
import pyarrow.parquet as pq
import pytest

from drain.archive.archiver import Archiver
from drain.archive.destination import open_destination
from drain.archive.layout import Checksum, escape_value, unescape_value
from drain.archive.restore import RestoreResult, release_day, restore_day
from drain.errors import RestoreRefused
from drain.rollups.runner import RunKind, load_rollups, run_window
from drain.settings import Settings
from drain.store.lifecycle import maintain
from drain.store.partitions import partition_name
from tests.support.app import drain
from tests.support.archive import (
    APPS,
    NOW,
    POLICY,
    S3Server,
    archive_now,
    assert_archived_once,
    config_for,
    fill_day,
    moto_server,
    old_day,
    partition_checksum,
)
from tests.support.served import clean_env, drain_command


@pytest.fixture
async def pool(migrated_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(migrated_url, min_size=1, max_size=4)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with moto_server() as server, pytest.MonkeyPatch.context() as env:
        for name, value in server.env().items():
            env.setenv(name, value)
        yield server


async def fill(pool: asyncpg.Pool, days: list[date], rows: int) -> dict[date, Checksum]:
    expected = {}
    async with pool.acquire() as conn:
        for n, day in enumerate(days):
            await fill_day(conn, day, rows, seed=n * 1_000_000)
            expected[day] = await partition_checksum(conn, partition_name("raw_events", day))
    return expected


def test_app_directories_escape_and_come_back() -> None:
    for app in (*APPS, "a=b%c", "x y", "é/ü"):
        escaped = escape_value(app)
        assert "/" not in escaped and "=" not in escaped
        assert unescape_value(escaped) == app
    assert escape_value("") == "__HIVE_DEFAULT_PARTITION__"
    assert escape_value("blog/été") == "blog%2F%C3%A9t%C3%A9"


def test_checksums_add_up_in_any_order() -> None:
    a = Checksum.of_digest(bytes(range(16)))
    b = Checksum.of_digest(bytes(range(16, 32)))
    assert a + b == b + a
    assert (a + a) != a and (a + a).rows == 2
    assert Checksum.parse(3, (a + b + a).hex) == a + b + a
    assert Checksum.of_sums(1, -1, -(2**64) - 1) == Checksum(1, 2**64 - 1, 2**64 - 1)


async def test_a_million_events_archived_verified_and_dropped_only_then(
    pool: asyncpg.Pool, tmp_path: Path
) -> None:
    """1,000,000 events over four days and four apps: each day ends as zstd Parquet in the
    Hive layout, one file per app (or more past the size), sorted by time, its manifest
    verified, and the partition gone; the days inside retention are untouched."""
    days = [old_day(n) for n in range(4)]
    async with pool.acquire() as conn:
        for n, day in enumerate(days):
            await fill_day(conn, day, 250_000, seed=n * 1_000_000)
        # what PostgreSQL holds, per day and app: rows, the sum of a payload field, times
        before = sorted(
            tuple(r)
            for r in await conn.fetch(
                """SELECT event_time::date AS day, app, count(*),
                          sum((payload->>'uid')::bigint), min(event_time), max(event_time)
                     FROM raw_events GROUP BY 1, 2"""
            )
        )
    kept_day = (NOW - timedelta(days=2)).date()
    async with pool.acquire() as conn:
        await fill_day(conn, kept_day, 100)
    config = config_for(str(tmp_path / "archive"), file_max_bytes=300_000, row_group_rows=32_768)
    steps: list[str] = []
    report = await archive_now(pool, config, observer=lambda step, _: steps.append(step))
    assert report.failed == [] and len(report.dropped) == 4
    # for each partition: everything verified before it was detached, detached before dropped
    assert steps.count("verified") == steps.count("done") == 4
    for _ in range(4):
        chunk = steps[: steps.index("done") + 1]
        assert chunk.index("read_back") < chunk.index("verified") < chunk.index("detached")
        steps = steps[len(chunk) :]
    destination = open_destination(config)
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM raw_events") == 100
        files = await conn.fetch("SELECT * FROM archive_files ORDER BY path")
        manifests = await conn.fetch("SELECT * FROM archive_partitions ORDER BY day")
    # the archiver read every file back against PostgreSQL's key checksum; here another
    # reader (DuckDB) finds in the files what PostgreSQL held
    glob = str(tmp_path / "archive" / "raw_events" / "*" / "*" / "*.parquet")
    db = duckdb.connect()
    db.execute("SET TimeZone = 'UTC'")
    after = sorted(
        (d, a, n, Decimal(s), lo.astimezone(UTC), hi.astimezone(UTC))
        for d, a, n, s, lo, hi in db.execute(
            f"""SELECT date, coalesce(app, ''), count(*), sum(CAST(payload->>'$.uid' AS BIGINT)),
                       min(event_time), max(event_time)
                  FROM read_parquet('{glob}', hive_partitioning = true) GROUP BY 1, 2"""
        ).fetchall()
    )
    assert after == [(d, a, n, Decimal(s), lo, hi) for d, a, n, s, lo, hi in before]
    assert [(m["state"], m["rows"]) for m in manifests] == [("dropped", 250_000)] * 4
    listed = [f["path"] for m in manifests for f in orjson.loads(m["manifest"])["files"]]
    assert sorted(listed) == [f["path"] for f in files]  # each file once, in one manifest
    on_disk = destination.walk("raw_events")
    assert sorted(on_disk) == sorted(listed + [m["manifest_path"] for m in manifests])
    assert sum(f["rows"] for f in files) == 1_000_000
    assert {f["app"] for f in files} == set(APPS)
    big = [f for f in files if f["app"] == "shop" and f["day"] == days[0]]
    assert len(big) >= 2, "a 300 kB limit splits an app's day"
    one = pq.ParquetFile(destination.root / files[0]["path"])  # type: ignore[attr-defined]
    assert one.metadata.row_group(0).column(0).compression == "ZSTD"
    assert one.schema_arrow.names[:4] == ["event_time", "received_at", "tag", "payload"]
    assert str(one.schema_arrow.field("payload").type) == "string"
    times = one.read(columns=["event_time"]).column(0).to_pylist()
    assert times == sorted(times)
    assert "app=blog%2F%C3%A9t%C3%A9" in {Path(f["path"]).parent.parent.name for f in files}


def of_raw_events(results: list[RestoreResult]) -> list[RestoreResult]:
    """The results of a restore or release for raw_events (the table these tests fill)."""
    return [r for r in results if r.table == "raw_events"]


async def test_restore_loads_a_day_exactly_once_and_release_drops_it(
    pool: asyncpg.Pool, tmp_path: Path
) -> None:
    day = old_day(0)
    expected = await fill(pool, [day], 4_000)
    config = config_for(str(tmp_path / "archive"))
    await archive_now(pool, config)
    name = partition_name("raw_events", day)

    def destinations(url: str) -> object:
        return open_destination(config_for(url))

    shop = await restore_day(pool, destinations, day, app="shop")  # type: ignore[arg-type]
    # only raw_events was filled: the other data tables have nothing archived that day
    assert {r.status for r in shop if r.table != "raw_events"} == {"nothing archived"}
    assert [(r.app, r.status) for r in of_raw_events(shop)] == [("shop", "restored")]
    everything = await restore_day(pool, destinations, day)  # type: ignore[arg-type]
    assert sorted((r.app, r.status) for r in of_raw_events(everything)) == sorted(
        [(a, "already restored" if a == "shop" else "restored") for a in APPS]
    )
    again = await restore_day(pool, destinations, day)  # type: ignore[arg-type]
    assert {r.status for r in of_raw_events(again)} == {"already restored"}
    async with pool.acquire() as conn:
        assert await partition_checksum(conn, name) == expected[day]  # every row, once
    # retention keeps a restored day
    report = await archive_now(pool, config)
    assert [n for n, _ in report.kept] == [name] and report.dropped == []
    with pytest.raises(RestoreRefused):
        await restore_day(pool, destinations, day, app="nobody")  # type: ignore[arg-type]
    released = await release_day(pool, day)
    assert {r.status for r in of_raw_events(released)} == {"released"}
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT to_regclass($1)", name) is None
        assert await conn.fetchval("SELECT count(*) FROM archive_restores") == 0
    # and it can come back again
    back = await restore_day(pool, destinations, day)  # type: ignore[arg-type]
    assert {r.status for r in of_raw_events(back)} == {"restored"}


async def test_restore_refuses_to_mix_with_rows_that_are_not_archived(
    pool: asyncpg.Pool, tmp_path: Path
) -> None:
    day = old_day(0)
    await fill(pool, [day], 500)
    config = config_for(str(tmp_path / "archive"))
    await archive_now(pool, config)
    async with pool.acquire() as conn:  # the day comes back with other rows (a late load)
        await fill_day(conn, day, 10, apps=("late",))
    with pytest.raises(RestoreRefused, match="not restored from the archive"):
        await restore_day(pool, lambda url: open_destination(config_for(url)), day)
    # those rows are archived as a second generation; then the day restores whole
    report = await archive_now(pool, config)
    assert report.dropped == [partition_name("raw_events", day)]
    async with pool.acquire() as conn:
        gens = await conn.fetch("SELECT generation, rows, state FROM archive_partitions")
    assert sorted((g["generation"], g["rows"], g["state"]) for g in gens) == [
        (1, 500, "dropped"),
        (2, 10, "dropped"),
    ]
    results = await restore_day(pool, lambda url: open_destination(config_for(url)), day)
    assert sum(r.rows for r in results) == 510


async def test_a_corrupt_or_partial_file_is_detected_not_trusted(
    pool: asyncpg.Pool, migrated_url: str, tmp_path: Path
) -> None:
    day = old_day(0)
    expected = await fill(pool, [day], 3_000)
    config = config_for(str(tmp_path / "archive"))
    root = tmp_path / "archive"
    # a file corrupted between its writing and its verification: the check fails, the
    # partition stays, the next run writes the files again
    archiver = Archiver(pool, config)
    corrupted: list[str] = []

    def corrupt_first(step: str, detail: str) -> None:
        if step == "file_recorded" and not corrupted:
            path = root / detail
            data = bytearray(path.read_bytes())
            data[len(data) // 2] ^= 0xFF
            path.write_bytes(bytes(data))
            corrupted.append(detail)

    archiver = Archiver(pool, config, observer=corrupt_first)
    report = await maintain(pool, POLICY, guard=archiver, retire_only=True, now=NOW)
    assert report.dropped == [] and "SHA-256 differs" in report.failed[0][1]
    async with pool.acquire() as conn:
        assert await partition_checksum(conn, partition_name("raw_events", day)) == expected[day]
        state = await conn.fetchrow(
            "SELECT state, failures, last_error_step FROM archive_partitions"
        )
        assert (state["state"], state["failures"], state["last_error_step"]) == (
            "writing",
            1,
            "verify",
        )
        assert await conn.fetchval("SELECT count(*) FROM archive_files") == 0
    assert not (root / corrupted[0]).exists()
    report = await archive_now(pool, config)
    assert report.failed == []
    async with pool.acquire() as conn:
        await assert_archived_once(conn, open_destination(config), expected)
        files = await conn.fetch("SELECT path FROM archive_files ORDER BY path")
    # after the drop: a cut-short file, then a flipped byte, are refused by verify and restore
    victim = root / files[0]["path"]
    original = victim.read_bytes()
    for damaged in (original[: len(original) - 100], original[:50] + b"\0" + original[51:]):
        victim.write_bytes(damaged)
        verify = await asyncio.to_thread(run_cli, ["archive", "verify"], migrated_url, root)
        assert verify.returncode == 1 and "FAILED" in verify.stdout, verify.stdout
        with pytest.raises(Exception, match="not the file archived"):
            await restore_day(pool, lambda url: open_destination(config_for(url)), day)
        async with pool.acquire() as conn:
            assert await conn.fetchval("SELECT count(*) FROM archive_restores") == 0
            assert await conn.fetchval("SELECT count(*) FROM raw_events") == 0
    victim.write_bytes(original)
    final = await asyncio.to_thread(run_cli, ["archive", "verify"], migrated_url, root)
    assert final.returncode == 0, final.stdout


def cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*drain_command(), *args],
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )


def run_cli(args: list[str], url: str, root: Path) -> subprocess.CompletedProcess[str]:
    return cli(
        args,
        clean_env(DATABASE_URL=url, DRAIN_ARCHIVE_URL=str(root), DRAIN_RETENTION_DAYS="10"),
    )


async def test_a_failed_archive_keeps_the_partition_warns_and_counts(
    pool: asyncpg.Pool, migrated_url: str, tmp_path: Path
) -> None:
    day = old_day(0)
    expected = await fill(pool, [day], 200)
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the archive's directory should be")
    config = config_for(str(blocker))
    report = await archive_now(pool, config)
    assert report.dropped == [] and report.failed[0][1].startswith("archive failed at write")
    async with pool.acquire() as conn:
        assert await partition_checksum(conn, partition_name("raw_events", day)) == expected[day]
    async with drain(migrated_url) as client:
        health = (await client.get("/health")).json()
        warning = [w for w in health["warnings"] if w["kind"] == "archive_failed"]
        assert warning and warning[0]["step"] == "write" and warning[0]["failures"] == 1
        assert str(blocker) not in str(warning)  # the class only: no path on /health
        metrics = (await client.get("/metrics")).text
        assert 'drain_archive_failures_total{step="write",table="raw_events"} 1.0' in metrics
    # fixed: archived, and the warning goes
    report = await archive_now(pool, config_for(str(tmp_path / "archive")))
    assert report.failed == [] and report.dropped == [partition_name("raw_events", day)]
    async with drain(migrated_url) as client:
        health = (await client.get("/health")).json()
        assert not [w for w in health["warnings"] if w["kind"] == "archive_failed"]


async def test_s3_archive_restore_and_list(
    pool: asyncpg.Pool, migrated_url: str, s3: S3Server
) -> None:
    days = [old_day(0), old_day(1)]
    expected = await fill(pool, days, 5_000)
    url = f"s3://{s3.bucket}/drain"
    config = config_for(url, endpoint_url=s3.endpoint)
    report = await archive_now(pool, config)
    assert report.failed == [] and len(report.dropped) == 2
    destination = open_destination(config)
    async with pool.acquire() as conn:
        await assert_archived_once(conn, destination, expected)
    env = clean_env(DATABASE_URL=migrated_url, DRAIN_ARCHIVE_URL=url, **s3.env())
    listed = await asyncio.to_thread(cli, ["archive", "list"], env)
    assert listed.returncode == 0, listed.stderr
    for day in days:
        line = f"raw_events       {day.isoformat()}  dropped     1     4        5,000"
        assert line in listed.stdout
    assert "10,000 rows" in listed.stdout
    restored = await asyncio.to_thread(cli, ["archive", "restore", days[0].isoformat()], env)
    assert restored.returncode == 0, restored.stderr
    async with pool.acquire() as conn:
        name = partition_name("raw_events", days[0])
        assert await partition_checksum(conn, name) == expected[days[0]]


async def test_duckdb_computes_payment_history_from_the_files_as_postgresql_did(
    pool: asyncpg.Pool, tmp_path: Path
) -> None:
    day = old_day(0)
    await fill(pool, [day], 20_000)
    spec = load_rollups()["payment_history"]
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    result = await run_window(
        pool,
        spec,
        kind=RunKind.BACKFILL,
        scheduled_for=start,
        window=(start, start + timedelta(days=1)),
    )
    assert result.error is None
    in_postgres = sorted(
        (r["bucket"], r["app"], r["category"], Decimal(r["revenue"]), r["events"])
        for r in await pool.fetch("SELECT * FROM payment_history")
    )
    config = config_for(str(tmp_path / "archive"))
    await archive_now(pool, config)
    assert await pool.fetchval("SELECT count(*) FROM raw_events") == 0
    glob = str(tmp_path / "archive" / "raw_events" / "*" / "*" / "*.parquet")
    db = duckdb.connect()
    db.execute("SET TimeZone = 'UTC'")
    rows = db.execute(
        f"""
        SELECT date_trunc('hour', event_time) AS bucket, coalesce(app, '') AS app,
               coalesce(payload->>'$.item_category', '(none)') AS category,
               coalesce(sum(CASE WHEN json_type(payload, '$.price')
                                      IN ('UBIGINT', 'BIGINT', 'DOUBLE')
                                 THEN CAST(payload->>'$.price' AS DECIMAL(38, 6)) END), 0)
                   AS revenue,
               count(*) AS events
          FROM read_parquet('{glob}', hive_partitioning = true)
         WHERE tag = 'production.pay' AND date = DATE '{day.isoformat()}'
         GROUP BY ALL
        """
    ).fetchall()
    from_files = sorted((b.astimezone(UTC), a, c, Decimal(r), e) for b, a, c, r, e in rows)
    assert len(from_files) > 24 * 4
    assert from_files == in_postgres


def test_archiving_defaults() -> None:
    embedded = Settings.defaults()
    config = embedded.archive_config()
    assert config is not None and config.url.endswith("drain/archive")
    assert config.file_max_bytes == 256 * 2**20
    deployed = Settings.defaults(database_url="postgresql://db/x")
    assert deployed.archive_config() is None  # a dyno's disk is not kept
    on = Settings.defaults(database_url="postgresql://db/x", drain_archive_url="s3://b/p")
    assert on.archive_config() is not None
    off = Settings.defaults(drain_archive=False)
    assert off.archive_config() is None
