"""`drain archive` killed with SIGKILL right after each of its steps, then run again: no row
is lost at any moment (each is in its partition or in a verified archive), and after the
rerun every partition is archived exactly once (one manifest, each file listed once, no
stray file in the destination)."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import asyncpg
import pytest

from drain.archive.archiver import STEPS
from drain.archive.destination import open_destination
from drain.archive.layout import Checksum
from drain.store.partitions import partition_name
from tests.support.archive import (
    S3Server,
    archive_now,
    assert_archived_once,
    assert_no_row_lost,
    config_for,
    fill_day,
    moto_server,
    old_day,
    partition_checksum,
)
from tests.support.served import clean_env

ROOT = Path(__file__).parent.parent.parent
DAYS = [old_day(0)]


@pytest.fixture
async def pool(migrated_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(migrated_url, min_size=1, max_size=4)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture(scope="module")
def s3() -> object:
    with moto_server() as server:
        yield server


async def filled(pool: asyncpg.Pool) -> dict[date, Checksum]:
    expected = {}
    async with pool.acquire() as conn:
        for n, day in enumerate(DAYS):
            await fill_day(conn, day, 2_000, seed=n * 10_000)
            expected[day] = await partition_checksum(conn, partition_name("raw_events", day))
    return expected


def kill_at(step: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tests.support.archive_kill", step],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )


async def crash_and_rerun(
    pool: asyncpg.Pool, url: str, database_url: str, step: str, extra_env: dict[str, str]
) -> None:
    expected = await filled(pool)
    env = clean_env(
        DATABASE_URL=database_url,
        DRAIN_ARCHIVE_URL=url,
        DRAIN_RETENTION_DAYS="10",
        DRAIN_ACCEPT_PAST_S=str(7 * 86400),
        **extra_env,
    )
    done = kill_at(step, env)
    assert done.returncode == -signal.SIGKILL, (done.stdout, done.stderr)
    assert f"killed after {step}" in done.stdout
    config = config_for(url, endpoint_url=extra_env.get("AWS_ENDPOINT_URL"))
    destination = open_destination(config)
    async with pool.acquire() as conn:
        await assert_no_row_lost(conn, destination, expected)
    report = await archive_now(pool, config)
    assert report.failed == [], report.failed
    async with pool.acquire() as conn:
        await assert_archived_once(conn, destination, expected)
        # a second rerun finds nothing to do
    again = await archive_now(pool, config)
    assert (again.dropped, again.failed) == ([], [])


@pytest.mark.parametrize("step", STEPS)
async def test_killed_after_each_step_a_rerun_loses_nothing_and_doubles_nothing(
    pool: asyncpg.Pool, migrated_url: str, tmp_path: Path, step: str
) -> None:
    await crash_and_rerun(pool, str(tmp_path / "archive"), migrated_url, step, {})


@pytest.mark.parametrize("step", ["row_group_written", "file_closed", "manifest_written"])
async def test_killed_on_s3_a_rerun_loses_nothing_and_doubles_nothing(
    pool: asyncpg.Pool, migrated_url: str, s3: S3Server, step: str, request: pytest.FixtureRequest
) -> None:
    url = f"s3://{s3.bucket}/{request.node.callspec.id}"
    with pytest.MonkeyPatch.context() as env:
        for name, value in s3.env().items():
            env.setenv(name, value)
        await crash_and_rerun(pool, url, migrated_url, step, s3.env())
