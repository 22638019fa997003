"""The group-commit writer against a real PostgreSQL: exactly once, failures, bounds."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest

from drain.errors import DatabaseUnavailable, QueueFull, WriterClosed
from drain.records import EventRow, PendingBatch, QuarantineReason, QuarantineRow, WriteResult
from drain.store.database import create_pool
from drain.store.faults import ErrorClass, classify_error
from drain.store.writer import Writer
from testkit.tcpproxy import TcpProxy
from tests.support.config import writer_config

NOW = datetime.now(UTC).replace(microsecond=0)
TOKEN = "d.2fa6bb7c-5a1b-4a0c-9f3e-6b1d2c3e4f50"


def event(batch: int, n: int, *, payload: str | None = None, when: datetime = NOW) -> EventRow:
    """One event whose payload names its batch and position (for counting rows per batch)."""
    body = payload if payload is not None else f'{{"batch": {batch}, "n": {n}}}'
    return EventRow(when, "production.pay", body, 1, 6, "host", "app", "web.1", "shop")


def batch(
    number: int,
    events: int = 3,
    *,
    frame_id: str | None = "auto",
    token: str | None = TOKEN,
    quarantined: list[QuarantineRow] | None = None,
) -> PendingBatch:
    rows = [event(number, n) for n in range(events)]
    return PendingBatch(
        drain_token=token,
        frame_id=f"frame-{number}" if frame_id == "auto" else frame_id,
        received_at=NOW,
        rows={"raw_events": list(rows)},
        quarantined=quarantined or [],
        size_bytes=sum(len(r.payload) for r in rows) + 64,
    )


async def rows_per_batch(url: str) -> dict[int, int]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT (payload->>'batch')::int AS b, count(*) AS c FROM raw_events GROUP BY 1"
        )
    finally:
        await conn.close()
    return {r["b"]: r["c"] for r in rows}


@pytest.fixture
async def pool(migrated_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(migrated_url, min_size=1, max_size=3)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
async def writer(pool: asyncpg.Pool) -> AsyncIterator[Writer]:
    writer = Writer(pool, writer_config(flush_max_delay_s=0.01, command_timeout_s=10))
    await writer.start()
    try:
        yield writer
    finally:
        await writer.close()


async def test_same_frame_id_twice_stores_once(writer: Writer, migrated_url: str) -> None:
    first = await writer.submit(batch(1))
    again = await writer.submit(batch(1))
    assert first == WriteResult(duplicate=False, stored={"raw_events": 3, "quarantine": 0})
    assert again == WriteResult(duplicate=True, stored={})
    assert await rows_per_batch(migrated_url) == {1: 3}
    assert writer.stats().duplicates == 1


async def test_same_frame_id_twice_in_one_group_first_wins(pool: asyncpg.Pool) -> None:
    # A long delay and a large size bound: both submissions are queued before the
    # flush task wakes up, so they are written in the same transaction.
    writer = Writer(pool, writer_config(flush_max_delay_s=0.2, flush_max_events=1000))
    await writer.start()
    try:
        one, two = await asyncio.gather(writer.submit(batch(7)), writer.submit(batch(7)))
        stats = writer.stats()
    finally:
        await writer.close()
    assert stats.commits == 1 and stats.last_flush_batches == 2
    assert one == WriteResult(duplicate=False, stored={"raw_events": 3, "quarantine": 0})
    assert two.duplicate and two.events_stored == 0
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM raw_events") == 3


async def _backends_waiting_on_a_lock(conn: asyncpg.Connection, want: int) -> int:
    """Poll (bounded: 10 s) until ``want`` backends of this database wait on a lock."""
    waiting = 0
    for _ in range(1000):
        waiting = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        if waiting >= want:
            break
        await asyncio.sleep(0.01)
    return int(waiting)


async def test_two_groups_in_flight_with_overlapping_frame_ids_store_once(
    pool: asyncpg.Pool, migrated_url: str
) -> None:
    """Group A (frames 1, 2) and group B (frames 1 again, 3) of one writer, both in flight.

    Another session holds frame 2's ledger key uncommitted, so A claims frame 1 and waits
    on frame 2; B then waits on A's frame 1. When the other session rolls back, A claims
    frame 2 and commits; B sees frame 1 taken (duplicate) and stores frame 3. No deadlock:
    each group claims its keys in sorted order.
    """
    writer = Writer(pool, writer_config(flush_max_events=20, flush_max_delay_s=0.01, flushers=2))
    holder = await asyncpg.connect(migrated_url)
    # pg_stat_activity is read once per transaction: watch from outside the holder's
    watcher = await asyncpg.connect(migrated_url)
    try:
        await writer.start()
        holding = holder.transaction()
        await holding.start()
        await holder.execute(
            "INSERT INTO received_batches (drain_token, frame_id, received_at, events, "
            "quarantined) VALUES ($1, 'frame-2', now(), 0, 0)",
            TOKEN,
        )
        group_a = [asyncio.ensure_future(writer.submit(batch(n, events=10))) for n in (1, 2)]
        assert await _backends_waiting_on_a_lock(watcher, 1) == 1  # A waits on frame 2
        group_b = [asyncio.ensure_future(writer.submit(batch(n, events=10))) for n in (1, 3)]
        assert await _backends_waiting_on_a_lock(watcher, 2) == 2  # B waits on A's frame 1
        await holding.rollback()
        a1, a2 = await asyncio.gather(*group_a)
        b1, b3 = await asyncio.gather(*group_b)
        stats = writer.stats()
    finally:
        await holder.close()
        await watcher.close()
        await writer.close()
    assert not a1.duplicate and not a2.duplicate and not b3.duplicate
    assert b1 == WriteResult(duplicate=True, stored={})
    assert stats.commits == 2 and stats.duplicates == 1
    assert await rows_per_batch(migrated_url) == {1: 10, 2: 10, 3: 10}


async def test_same_frame_id_under_two_tokens_is_two_batches(
    writer: Writer, migrated_url: str
) -> None:
    a = await writer.submit(batch(1, frame_id="same", token="d.one"))
    b = await writer.submit(batch(2, frame_id="same", token="d.two"))
    c = await writer.submit(batch(3, frame_id="same", token=None))
    d = await writer.submit(batch(4, frame_id="same", token=None))
    assert [a.duplicate, b.duplicate, c.duplicate, d.duplicate] == [False, False, False, True]
    assert await rows_per_batch(migrated_url) == {1: 3, 2: 3, 3: 3}


async def test_batches_without_frame_id_are_stored_each_time(
    writer: Writer, migrated_url: str
) -> None:
    for _ in range(3):
        result = await writer.submit(batch(5, frame_id=None))
        assert not result.duplicate
    assert await rows_per_batch(migrated_url) == {5: 9}


async def test_fifty_concurrent_submits_store_every_event_exactly_once(
    writer: Writer, migrated_url: str
) -> None:
    batches = [batch(i, events=20 + i) for i in range(50)]
    retried = [batch(i, events=20 + i) for i in range(0, 50, 5)]  # Logplex retries
    curl = [batch(100 + i, events=4, frame_id=None) for i in range(5)]
    results = await asyncio.gather(*(writer.submit(b) for b in batches + retried + curl))
    assert sum(1 for r in results if r.duplicate) == len(retried)
    expected = {i: 20 + i for i in range(50)} | {100 + i: 4 for i in range(5)}
    assert await rows_per_batch(migrated_url) == expected
    stats = writer.stats()
    assert stats.events_stored == sum(expected.values())
    assert stats.commits < len(results)  # grouped: fewer transactions than requests


async def test_two_writers_two_pools_same_retried_frames_exactly_once(
    migrated_url: str,
) -> None:
    """Two processes (a writer and its pool each) receive the same frames concurrently."""
    pools = [await create_pool(migrated_url, min_size=1, max_size=2) for _ in range(2)]
    writers = [Writer(p, writer_config(flush_max_delay_s=0.005)) for p in pools]
    try:
        for w in writers:
            await w.start()
        # Interleaved and in opposite orders, so the two writers' groups overlap.
        subs = []
        for i in range(40):
            subs.append(writers[0].submit(batch(i, events=10)))
            subs.append(writers[1].submit(batch(39 - i, events=10)))
        results = await asyncio.gather(*subs)
    finally:
        for w in writers:
            await w.close()
        for p in pools:
            await p.close()
    assert sum(1 for r in results if not r.duplicate) == 40
    assert sum(1 for r in results if r.duplicate) == 40
    assert await rows_per_batch(migrated_url) == {i: 10 for i in range(40)}


async def test_quarantine_rows_are_stored_with_the_batch(
    writer: Writer, pool: asyncpg.Pool
) -> None:
    bad = QuarantineRow(
        reason=QuarantineReason.INVALID_JSON,
        detail="JSON: unexpected end at column 9\x00",
        raw=b'<134>1 2026-12-01T00:00:00Z host app web.1 - @[t] {"a":',
        raw_bytes=57,
        frame_offset=0,
        event_time=NOW,
        tag="t",
        app="shop",
    )
    result = await writer.submit(batch(1, quarantined=[bad]))
    assert result == WriteResult(duplicate=False, stored={"raw_events": 3, "quarantine": 1})
    async with pool.acquire() as conn:
        row = await conn.fetchrow("SELECT * FROM quarantine")
        ledger = await conn.fetchrow("SELECT events, quarantined FROM received_batches")
    assert row is not None and ledger is not None
    assert row["reason"] == "invalid_json" and row["raw"] == bad.raw
    assert row["detail"] == "JSON: unexpected end at column 9\ufffd"  # NUL cannot be text
    assert (row["drain_token"], row["frame_id"], row["frame_offset"]) == (TOKEN, "frame-1", 0)
    assert (ledger["events"], ledger["quarantined"]) == (3, 1)


async def test_rows_refused_by_postgres_are_quarantined_others_stored(
    pool: asyncpg.Pool, migrated_url: str
) -> None:
    writer = Writer(pool, writer_config(flush_max_delay_s=0.2))
    await writer.start()
    mixed = batch(1, events=40)
    mixed.events[3] = event(1, 3, payload='{"batch": 1, "a": 1e400000}')  # numeric overflow
    mixed.events[17] = event(1, 17, payload='{"batch": 1, "s": "x\\u0000y"}')  # \u0000 in jsonb
    mixed.events[30] = EventRow(NOW, "t", '{"batch": 1}', 1, 6, "ho\x00st", "app", "web.1", "shop")
    try:
        results = await asyncio.gather(
            writer.submit(batch(0, events=5)),
            writer.submit(mixed),
            writer.submit(batch(2, events=5, frame_id=None)),
            writer.submit(batch(0, events=5)),  # duplicate inside the same group
        )
        stats = writer.stats()
    finally:
        await writer.close()
    assert stats.commits == 1
    assert results[1] == WriteResult(
        duplicate=False, stored={"raw_events": 37, "quarantine": 3}, rejected_by_database=3
    )
    assert results[0].events_stored == 5 and results[2].events_stored == 5
    assert results[3].duplicate
    assert await rows_per_batch(migrated_url) == {0: 5, 1: 37, 2: 5}
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT * FROM quarantine ORDER BY raw")
        ledger = await conn.fetchrow(
            "SELECT events, quarantined FROM received_batches WHERE frame_id = 'frame-1'"
        )
    assert {r["reason"] for r in rows} == {"rejected_by_database"}
    details = sorted(r["detail"][:5] for r in rows)
    assert details == ["22003", "22021", "22P05"], details
    assert {r["frame_id"] for r in rows} == {"frame-1"}
    assert any(b"1e400000" in r["raw"] for r in rows)
    assert ledger is not None and (ledger["events"], ledger["quarantined"]) == (37, 3)
    assert stats.rejected_by_database == 3


async def test_values_the_client_cannot_encode_are_quarantined(
    writer: Writer, migrated_url: str
) -> None:
    """A lone surrogate in a str cannot become UTF-8 (asyncpg raises before PostgreSQL)."""
    odd = batch(4, events=4)
    odd.events[1] = event(4, 1, payload='{"batch": 4, "s": "\ud800"}')
    result = await writer.submit(odd)
    assert result == WriteResult(
        duplicate=False, stored={"raw_events": 3, "quarantine": 1}, rejected_by_database=1
    )
    assert await rows_per_batch(migrated_url) == {4: 3}


async def test_queue_full_then_close_flushes_and_answers_waiters(pool: asyncpg.Pool) -> None:
    # Both batches are queued before a flush task runs, and submit() raises QueueFull
    # before it awaits anything: the queue holds 8 rows (written or not) when the third
    # arrives. close() then answers both waiters.
    config = writer_config(
        flush_max_delay_s=60, flush_max_events=10_000, queue_max_events=10, queue_max_bytes=10**6
    )
    writer = Writer(pool, config)
    await writer.start()
    waiting = [asyncio.create_task(writer.submit(batch(i, events=4))) for i in range(2)]
    await asyncio.sleep(0)  # let both tasks enqueue (a yield, not a wait for a flush)
    assert writer.stats().queue_events == 8
    with pytest.raises(QueueFull) as full:
        await writer.submit(batch(9, events=4))
    assert full.value.retry_after_s >= 1
    await writer.close(timeout_s=10)
    assert [t.result().events_stored for t in waiting] == [4, 4]
    assert writer.stats().queue_events == 0
    with pytest.raises(WriterClosed):
        await writer.submit(batch(10))


async def test_a_big_batch_is_accepted_into_an_empty_queue(pool: asyncpg.Pool) -> None:
    small = Writer(pool, writer_config(queue_max_events=5, flush_max_delay_s=0.001))
    await small.start()
    try:
        result = await small.submit(batch(1, events=50))
    finally:
        await small.close()
    assert result.events_stored == 50


async def test_a_lone_batch_commits_without_waiting_for_the_delay(pool: asyncpg.Pool) -> None:
    """No group being written: a batch is written at once, alone (adaptive group commit).
    The delay is 30 s; each answer comes well inside a 10 s bound."""
    writer = Writer(pool, writer_config(flush_max_delay_s=30, command_timeout_s=5))
    await writer.start()
    try:
        for i in range(3):
            result = await asyncio.wait_for(writer.submit(batch(i, events=1)), timeout=10)
            assert result == WriteResult(duplicate=False, stored={"raw_events": 1, "quarantine": 0})
            stats = writer.stats()
            assert (stats.commits, stats.last_flush_batches) == (i + 1, 1)
    finally:
        await writer.close()


async def _lock_raw_events(conn: asyncpg.Connection) -> asyncpg.transaction.Transaction:
    lock = conn.transaction()
    await lock.start()
    await conn.execute("LOCK TABLE raw_events IN ACCESS EXCLUSIVE MODE")
    return lock


async def test_batches_arriving_during_a_flush_wait_for_it_and_commit_as_one_group(
    pool: asyncpg.Pool, migrated_url: str
) -> None:
    """While a group is in flight (held inside its transaction by a lock on raw_events), the
    batches that arrive wait for it, and are then written together in one transaction by
    the flush task that wrote it: two commits for four requests, none waiting the 30 s
    delay. They arrive one by one, the idle second flush task running in between (loop
    yields), and it does not take them: else the first would be a group of its own."""
    writer = Writer(pool, writer_config(flush_max_delay_s=30, flushers=2, command_timeout_s=10))
    blocker = await asyncpg.connect(migrated_url)
    try:
        await writer.start()
        lock = await _lock_raw_events(blocker)
        first = asyncio.create_task(writer.submit(batch(0, events=5)))
        await wait_until_blocked_on_lock(blocker, blocker.get_server_pid())
        later = []
        for i in (1, 2, 3):
            later.append(asyncio.create_task(writer.submit(batch(i, events=5))))
            for _ in range(10):  # yields, not a wait for a flush
                await asyncio.sleep(0)
        assert writer.stats().queue_batches == 4 and writer.stats().commits == 0
        await lock.rollback()
        results = await asyncio.wait_for(asyncio.gather(first, *later), timeout=10)
        stats = writer.stats()
    finally:
        await blocker.close()
        await writer.close()
    assert [r.events_stored for r in results] == [5, 5, 5, 5]
    assert (stats.commits, stats.last_flush_batches, stats.last_flush_events) == (2, 3, 15)
    assert await rows_per_batch(migrated_url) == {0: 5, 1: 5, 2: 5, 3: 5}


async def test_a_full_group_waiting_behind_a_stuck_flush_is_written_alongside_it(
    pool: asyncpg.Pool, migrated_url: str
) -> None:
    """The second flush task still writes a group beside the one in flight once the waiting
    rows reach flush_max_events: here while the first group waits on a ledger key another
    session holds (30 s delay, so only the row count can have released it)."""
    config = writer_config(flush_max_events=20, flush_max_delay_s=30, flushers=2)
    writer = Writer(pool, config)
    holder = await asyncpg.connect(migrated_url)
    watcher = await asyncpg.connect(migrated_url)
    try:
        await writer.start()
        holding = holder.transaction()
        await holding.start()
        await holder.execute(
            "INSERT INTO received_batches (drain_token, frame_id, received_at, events, "
            "quarantined) VALUES ($1, 'frame-0', now(), 0, 0)",
            TOKEN,
        )
        stuck = asyncio.create_task(writer.submit(batch(0, events=5)))
        assert await _backends_waiting_on_a_lock(watcher, 1) == 1
        full = [asyncio.create_task(writer.submit(batch(i, events=10))) for i in (1, 2)]
        done = await asyncio.wait_for(asyncio.gather(*full), timeout=10)
        assert not stuck.done()
        assert writer.stats().commits == 1 and writer.stats().last_flush_batches == 2
        await holding.rollback()
        first = await asyncio.wait_for(stuck, timeout=10)
    finally:
        await holder.close()
        await watcher.close()
        await writer.close()
    assert [r.events_stored for r in done] == [10, 10] and first.events_stored == 5
    assert await rows_per_batch(migrated_url) == {0: 5, 1: 10, 2: 10}


async def test_the_delay_bounds_the_wait_behind_a_stuck_flush(
    pool: asyncpg.Pool, migrated_url: str
) -> None:
    """A small batch waits for the group in flight at most flush_max_delay_s; then the
    second flush task writes it although that group is still stuck."""
    writer = Writer(pool, writer_config(flush_max_delay_s=0.05, flushers=2))
    holder = await asyncpg.connect(migrated_url)
    watcher = await asyncpg.connect(migrated_url)
    try:
        await writer.start()
        holding = holder.transaction()
        await holding.start()
        await holder.execute(
            "INSERT INTO received_batches (drain_token, frame_id, received_at, events, "
            "quarantined) VALUES ($1, 'frame-0', now(), 0, 0)",
            TOKEN,
        )
        stuck = asyncio.create_task(writer.submit(batch(0)))
        assert await _backends_waiting_on_a_lock(watcher, 1) == 1
        small = await asyncio.wait_for(writer.submit(batch(1)), timeout=10)
        assert small.events_stored == 3 and not stuck.done()
        await holding.rollback()
        assert (await asyncio.wait_for(stuck, timeout=10)).events_stored == 3
    finally:
        await holder.close()
        await watcher.close()
        await writer.close()
    assert await rows_per_batch(migrated_url) == {0: 3, 1: 3}


async def test_close_writes_the_batches_waiting_behind_a_flush_without_the_delay(
    pool: asyncpg.Pool, migrated_url: str
) -> None:
    """close() does not keep batches held behind the group in flight (30 s delay): the
    second flush task takes them at once (its backend, too, then waits on the lock while
    the first group is still stuck), and close() returns once every request is answered."""
    writer = Writer(pool, writer_config(flush_max_delay_s=30, flushers=2, command_timeout_s=10))
    blocker = await asyncpg.connect(migrated_url)
    watcher = await asyncpg.connect(migrated_url)
    try:
        await writer.start()
        lock = await _lock_raw_events(blocker)
        tasks = [asyncio.create_task(writer.submit(batch(0, events=4)))]
        await wait_until_blocked_on_lock(blocker, blocker.get_server_pid())
        tasks += [asyncio.create_task(writer.submit(batch(i, events=4))) for i in (1, 2)]
        await asyncio.sleep(0)  # let them enqueue
        closing = asyncio.create_task(writer.close(timeout_s=20))
        assert await _backends_waiting_on_a_lock(watcher, 2) == 2
        await lock.rollback()
        await asyncio.wait_for(closing, timeout=10)
    finally:
        await blocker.close()
        await watcher.close()
        await writer.close()
    assert [t.result().events_stored for t in tasks] == [4, 4, 4]
    assert await rows_per_batch(migrated_url) == {0: 4, 1: 4, 2: 4}


async def wait_until_blocked_on_lock(conn: asyncpg.Connection, blocker_pid: int) -> None:
    """Return once some backend waits for a lock held by ``blocker_pid`` (bounded: 10 s)."""
    query = "SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))"
    for _ in range(1000):
        if await conn.fetchval(query, blocker_pid):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the writer never reached the locked table")


async def test_database_going_away_gives_unavailable_then_recovers(
    migrated_url: str,
) -> None:
    """Cut every connection while a group is inside its transaction, then restore.

    A direct connection locks raw_events, so the writer's group (ledger rows inserted,
    COPY waiting for the lock) is caught mid-transaction when the proxy cuts it.
    """
    proxy = TcpProxy(migrated_url)
    await proxy.start()
    pool = await create_pool(proxy.url, min_size=1, max_size=2)
    writer = Writer(pool, writer_config(flush_max_delay_s=0.005, command_timeout_s=3))
    blocker = await asyncpg.connect(migrated_url)
    acknowledged: dict[int, WriteResult] = {}
    try:
        await writer.start()
        acknowledged[0] = await writer.submit(batch(0))

        lock = blocker.transaction()
        await lock.start()
        await blocker.execute("LOCK TABLE raw_events IN ACCESS EXCLUSIVE MODE")
        in_flight = {
            i: asyncio.create_task(writer.submit(batch(i, events=50))) for i in range(1, 11)
        }
        await wait_until_blocked_on_lock(blocker, blocker.get_server_pid())
        queued = {i: asyncio.create_task(writer.submit(batch(i, events=50))) for i in range(11, 21)}
        proxy.cut()
        tasks = in_flight | queued
        done, _ = await asyncio.wait(tasks.values(), timeout=30)
        assert len(done) == len(tasks)  # every request answered, none hangs
        for task in in_flight.values():
            assert isinstance(task.exception(), DatabaseUnavailable), repr(task.exception())
        failed = list(in_flight)
        for i, task in queued.items():
            exc = task.exception()
            if exc is None:
                acknowledged[i] = task.result()
            else:
                assert isinstance(exc, DatabaseUnavailable), repr(exc)
                failed.append(i)

        # While cut: a new submission fails fast with DatabaseUnavailable.
        with pytest.raises(DatabaseUnavailable):
            await asyncio.wait_for(writer.submit(batch(99)), timeout=20)
        failed.append(99)
        assert writer.stats().db_errors >= 1
        await lock.rollback()  # the cut backend now finds its client gone and rolls back

        # Restore: Logplex retries every failed batch with the same frame id.
        proxy.restore()
        for i in failed:
            acknowledged[i] = await writer.submit(batch(i, events=3 if i == 99 else 50))
    finally:
        await blocker.close()
        await writer.close()
        await pool.close()
        await proxy.close()
    assert set(acknowledged) == {*range(21), 99}
    assert not any(r.duplicate for r in acknowledged.values())
    expected = {0: 3, 99: 3} | {i: 50 for i in range(1, 21)}
    assert await rows_per_batch(migrated_url) == expected


async def test_retry_of_a_committed_batch_whose_answer_was_lost_is_a_duplicate(
    writer: Writer, migrated_url: str
) -> None:
    """COMMIT succeeded but the 2xx never reached Logplex: its retry adds nothing."""
    await writer.submit(batch(3, events=8))
    retry = await writer.submit(batch(3, events=8))
    assert retry.duplicate
    assert await rows_per_batch(migrated_url) == {3: 8}


async def test_submit_before_start_and_after_close(pool: asyncpg.Pool) -> None:
    writer = Writer(pool, writer_config())
    with pytest.raises(WriterClosed):
        await writer.submit(batch(1))
    await writer.start()
    await writer.close()
    await writer.close()  # idempotent
    with pytest.raises(WriterClosed):
        await writer.submit(batch(1))


async def test_unmigrated_database_fails_the_request_with_the_error(database_url: str) -> None:
    pool = await create_pool(database_url, min_size=1, max_size=1)
    try:
        writer = Writer(pool, writer_config())
        with pytest.raises(asyncpg.UndefinedTableError):
            await writer.start()
    finally:
        await pool.close()


def test_config_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="flush_max_events must be > 0"):
        writer_config(flush_max_events=0)
    with pytest.raises(ValueError, match="flush_max_delay_s must be >= 0"):
        writer_config(flush_max_delay_s=-1)


def test_classify_error() -> None:
    assert classify_error(ConnectionResetError()) is ErrorClass.UNAVAILABLE
    assert classify_error(TimeoutError()) is ErrorClass.UNAVAILABLE
    assert classify_error(asyncpg.AdminShutdownError("x")) is ErrorClass.UNAVAILABLE
    assert classify_error(asyncpg.CannotConnectNowError("x")) is ErrorClass.UNAVAILABLE
    assert classify_error(asyncpg.TooManyConnectionsError("x")) is ErrorClass.UNAVAILABLE
    # seen in bench/reliability.py while PostgreSQL shut down under load: 503, not 500
    internal = asyncpg.InternalClientError("cannot switch to state 15; another operation (2)")
    assert classify_error(internal) is ErrorClass.UNAVAILABLE
    assert classify_error(asyncpg.DeadlockDetectedError("x")) is ErrorClass.RETRY
    assert classify_error(asyncpg.SerializationError("x")) is ErrorClass.RETRY
    assert classify_error(asyncpg.NumericValueOutOfRangeError("x")) is ErrorClass.DATA
    assert classify_error(asyncpg.ProgramLimitExceededError("x")) is ErrorClass.DATA
    assert classify_error(asyncpg.UndefinedTableError("x")) is ErrorClass.UNEXPECTED
    assert classify_error(ValueError("bug")) is ErrorClass.UNEXPECTED


async def test_check_room_refuses_before_submit_when_the_queue_is_full(
    pool: asyncpg.Pool,
) -> None:
    """check_room (before decoding) refuses once the queue is at its bounds; an empty
    queue always has room, like submit."""
    writer = Writer(pool, writer_config(queue_max_events=5, queue_max_bytes=10_000))
    writer.check_room(10**9)  # empty queue: room for anything
    blocker = await pool.acquire()
    locked = blocker.transaction()
    await locked.start()
    await blocker.execute("LOCK TABLE raw_events IN ACCESS EXCLUSIVE MODE")
    await writer.start()
    try:
        first = asyncio.ensure_future(writer.submit(batch(1, events=5)))
        for _ in range(100_000):  # bounded: until the first batch is queued
            if writer.stats().queue_batches:
                break
            await asyncio.sleep(0)
        with pytest.raises(QueueFull) as full:
            writer.check_room(0)  # at queue_max_events rows
        assert full.value.retry_after_s >= 1
        await locked.rollback()
        assert not (await first).duplicate
        writer.check_room(10**9)  # empty again
    finally:
        await pool.release(blocker)
        await writer.close()


async def test_row_limit_follows_the_measured_commit_rate(pool: asyncpg.Pool) -> None:
    """The queue bound in seconds: rows allowed = commit rate x queue_max_wait_s, measured
    only across COMMITs between which the writer stayed busy; never below one group per
    flush task, never above queue_max_events."""
    cfg = writer_config(
        queue_max_events=100_000, queue_max_wait_s=0.5, flush_max_events=1000, flushers=2
    )
    writer = Writer(pool, cfg)
    assert writer.row_limit() == 100_000  # no rate measured yet
    writer._note_throughput(5000, now=10.0)  # first COMMIT: no interval yet
    writer._note_throughput(5000, now=11.0)  # idle in between: not a capacity sample
    assert writer.row_limit() == 100_000
    writer._busy_since_last_commit = True
    writer._note_throughput(20_000, now=11.5)  # 40,000 rows/s while busy
    assert writer.row_limit() == 20_000
    writer._busy_since_last_commit = True
    writer._note_throughput(100, now=12.5)  # a slow spell: 100 rows/s pulls the EWMA down
    assert writer.row_limit() == int((0.8 * 40_000 + 0.2 * 100) * 0.5)
    for step in range(50):
        writer._busy_since_last_commit = True
        writer._note_throughput(1, now=13.0 + step)
    assert writer.row_limit() == 2 * 1000  # floor: a full group per flush task


async def test_row_days_are_utc_days_whatever_the_offset() -> None:
    from datetime import date, timedelta, timezone

    from drain.store.writer import _days, _Item

    tokyo = timezone(timedelta(hours=9))
    rows = [
        event(1, 0, when=datetime(2026, 12, 1, 23, 59, tzinfo=UTC)),
        event(1, 1, when=datetime(2026, 12, 2, 3, 0, tzinfo=tokyo)),  # 2026-12-01 18:00 UTC
        event(1, 2, when=datetime(2026, 12, 1, 8, 0, tzinfo=tokyo)),  # 2026-11-30 23:00 UTC
    ]
    pending = PendingBatch(TOKEN, "f", NOW, {"raw_events": list(rows)}, [], 100)
    item = _Item(pending, asyncio.get_running_loop().create_future(), 0.0, 3, TOKEN, "f")
    assert _days([item]) == {"raw_events": {date(2026, 12, 1), date(2026, 11, 30)}}
