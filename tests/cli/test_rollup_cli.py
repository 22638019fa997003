"""``drain rollup list|run|backfill`` and ``drain clock`` as a user runs them (subprocesses)."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta

import asyncpg

from drain.rollups.runner import load_rollups
from drain.store.migrate import migrate
from tests.support.served import clean_env, drain_command

DAY = datetime(2026, 11, 29, tzinfo=UTC)


def drain(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*drain_command(), *args],
        env=clean_env(DATABASE_URL=url),
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )


async def fill(url: str) -> None:
    await migrate(url)
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("SELECT drain_ensure_partition($1)", DAY.date())
        await conn.executemany(
            """INSERT INTO raw_events (event_time, received_at, tag, payload)
               VALUES ($1, now(), 'production.pay', $2::jsonb)""",
            [
                (DAY + timedelta(minutes=37 * i), f'{{"item_category":"c{i % 2}","price":{i}}}')
                for i in range(30)
            ],
        )
    finally:
        await conn.close()


async def test_backfill_list_and_run(database_url: str) -> None:
    await fill(database_url)
    backfill = drain(
        database_url,
        "rollup",
        "backfill",
        "payment_history",
        "--from",
        "2026-11-29",
        "--to",
        "2026-11-30",
    )
    assert backfill.returncode == 0, backfill.stderr
    assert "backfilled 2026-11-29 00:00 .. 2026-11-30 00:00 UTC in 1 windows" in backfill.stdout
    assert "0 failed" in backfill.stdout
    conn = await asyncpg.connect(database_url)
    try:
        assert await conn.fetchval("SELECT sum(events) FROM payment_history") == 30
        assert await conn.fetchval("SELECT sum(revenue) FROM payment_history") == sum(range(30))
    finally:
        await conn.close()

    run = drain(database_url, "rollup", "run", "payment_history", "--at", "2026-11-29T05:30Z")
    assert run.returncode == 0, run.stderr
    assert "window 2026-11-29 02:00 .. 2026-11-29 05:00 UTC" in run.stdout

    listing = drain(database_url, "rollup", "list")
    assert listing.returncode == 0, listing.stderr
    assert listing.stdout.splitlines()[0].split()[:3] == ["NAME", "SCHEDULE", "TARGET"]
    assert any(line.startswith("payment_history ") for line in listing.stdout.splitlines())

    future = drain(database_url, "rollup", "run", "payment_history", "--at", "2999-01-01T00:00Z")
    assert future.returncode != 0 and "is in the future" in future.stderr

    listing_after = drain(database_url, "rollup", "list")
    # manual runs and backfills count as completed windows too
    line = next(x for x in listing_after.stdout.splitlines() if x.startswith("payment_history "))
    assert "2026-11-30 00:00" in line and "never" not in line

    unknown = drain(database_url, "rollup", "run", "nope")
    assert unknown.returncode != 0 and "no rollup named 'nope'" in unknown.stderr


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


async def test_backfill_refuses_a_window_that_is_not_complete_yet(database_url: str) -> None:
    await migrate(database_url)
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    future = drain(
        database_url,
        "rollup",
        "backfill",
        "payment_history",
        "--from",
        _iso(hour - timedelta(days=1)),
        "--to",
        _iso(hour + timedelta(days=1)),
    )
    assert future.returncode != 0
    assert "--to" in future.stderr and "its window is not complete yet" in future.stderr
    # it says how far a backfill may go: the end of the last complete tick's window
    assert re.search(r"--to \d{4}-\d\d-\d\dT\d\d:00Z or earlier", future.stderr)
    conn = await asyncpg.connect(database_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM rollup_runs") == 0
    finally:
        await conn.close()

    # up to the start of this hour (payment_history ticks on the hour) is complete
    done = drain(
        database_url,
        "rollup",
        "backfill",
        "payment_history",
        "--from",
        _iso(hour - timedelta(hours=2)),
        "--to",
        _iso(hour),
    )
    assert done.returncode == 0, done.stderr
    listing = drain(database_url, "rollup", "list")
    line = next(x for x in listing.stdout.splitlines() if x.startswith("payment_history "))
    lag = re.search(r"\s(-?\d+\.\d)h\s", line)
    assert lag is not None and float(lag.group(1)) >= 0, line


async def test_clock_runs_due_ticks_and_stops_on_sigterm(database_url: str) -> None:
    await migrate(database_url)
    shipped = len(load_rollups())
    proc = await asyncio.create_subprocess_exec(
        *drain_command(),
        "clock",
        env=clean_env(DATABASE_URL=database_url),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        conn = await asyncpg.connect(database_url)
        try:
            deadline = time.monotonic() + 30
            ran = 0
            while time.monotonic() < deadline and ran < shipped:  # bounded start-up polling
                ran = await conn.fetchval("SELECT count(*) FROM rollup_runs WHERE error IS NULL")
                await asyncio.sleep(0.1)
        finally:
            await conn.close()
        assert ran == shipped == 7  # the latest tick of each shipped rollup
        proc.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(proc.communicate(), timeout=30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.communicate()
    assert proc.returncode == 0, err
    assert b"drain clock: stopped" in out
