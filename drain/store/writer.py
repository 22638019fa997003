"""The group-commit writer: from :class:`~drain.records.PendingBatch` to committed rows.

Each POST's decoded batch is handed to :meth:`Writer.submit`, which queues it and waits.
Adaptive group commit: a batch that finds no group being written is written at once; the
batches that arrive while a group is being written wait for it, and the flush task that
wrote it then takes them all (up to ``flush_max_events`` rows) and writes them in ONE
transaction::

    1. ensure the daily partitions of the group's days      (own short transaction)
    2. BEGIN
       INSERT INTO received_batches ... ON CONFLICT DO NOTHING RETURNING key
                                  -> batches whose key did not come back are duplicates
       COPY raw_events (binary)   <- rows of the non-duplicate batches, for every data
       COPY ...                      table of drain.store.tables, in its order
       COPY quarantine (binary)   <- their quarantine rows
       COMMIT
    3. answer every request with its WriteResult

So a lone batch waits for its own COMMIT only, and under load a group holds what arrived
while the previous one was being written: the groups grow with the load and with the time
a group takes. While a group is in flight, the batches waiting for it are taken by another
flush task (a second group in flight) as soon as they reach ``flush_max_events`` rows or
the oldest of them has waited ``flush_max_delay_s``.

A request is answered only after its rows are committed. The ledger row
(drain_token, frame_id) is written in the same transaction as the rows, so Logplex's
retry of a POST whose answer was lost (same Logplex-Frame-Id) adds nothing: exactly once.

``flushers`` flush tasks (default 2) run side by side, each on its own pool connection, so
that under load a full group (or one that has waited ``flush_max_delay_s``) is claimed and
COPYed while the previous one commits (and while the event loop decodes). Two groups in
flight never both store a (drain_token, frame_id): the second group's INSERT into
received_batches waits on the first one's uncommitted key (the primary key), then ``ON
CONFLICT DO NOTHING`` answers it as a duplicate (or claims it, if the first rolled back).
Each group claims its keys in sorted order, so two groups cannot wait on each other (no
deadlock); a deadlock from elsewhere is retried (``RETRY``).

Failures are sorted by who is to blame (:func:`drain.store.faults.classify_error`): a
transient fault answers every request of the group with DatabaseUnavailable (web: 503;
Logplex retries, the ledger deduplicates), a deadlock or a missing partition retries the
group, a data error redoes it with one savepoint per batch and bisects the refused rows
into quarantine (REJECTED_BY_DATABASE), anything else is logged and raised.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import logging
import operator
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Protocol

import asyncpg

from drain.errors import DatabaseUnavailable, QueueFull, WriterClosed
from drain.records import QUARANTINE, RAW_EVENTS, PendingBatch, Row, WriteResult
from drain.store.database import Conn
from drain.store.faults import ErrorClass, classify_error, describe
from drain.store.partitions import PartitionCache
from drain.store.tables import (
    QUARANTINE_COLUMNS,
    TABLES,
    DataTable,
    no_nul,
    quarantine_record,
    rejected_record,
)

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

__all__ = ["Writer", "WriterConfig", "WriterObserver", "WriterStats"]

log = logging.getLogger(__name__)

_CLAIM_SQL = """
INSERT INTO received_batches (drain_token, frame_id, received_at, events, quarantined)
SELECT t, f, r, e, q
FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::int[], $5::int[]) AS u(t, f, r, e, q)
ORDER BY t, f
ON CONFLICT DO NOTHING
RETURNING drain_token, frame_id
"""

_UPDATE_LEDGER_SQL = """
UPDATE received_batches SET events = $3, quarantined = $4
WHERE drain_token = $1 AND frame_id = $2
"""


@dataclass(frozen=True, slots=True)
class WriterConfig:
    """Tuning of the :class:`Writer`. Counts are rows (events plus quarantine rows).

    Built by :meth:`drain.settings.Settings.writer_config`, which holds the defaults of every
    field that is a setting (DRAIN_FLUSH_*, DRAIN_QUEUE_*, DRAIN_WRITER_FLUSHERS, ...).

    Fields:
        flush_max_events: most rows in one group (a bigger batch is a group of its own).
            While a group is being written, the batches waiting for it are written by
            another flush task as soon as they reach this many rows.
        flush_max_delay_s: while a group is being written, the longest the oldest batch
            waiting for it waits (seconds) before another flush task writes the waiting
            batches alongside it. A batch that finds no group being written does not wait.
            0: no waiting at all; every free flush task writes what is queued.
        queue_max_events: past this many queued rows, submit() raises QueueFull.
        queue_max_bytes: past this many queued bytes (PendingBatch.size_bytes), QueueFull.
            A batch is always accepted into an empty queue, however big.
        queue_max_wait_s: also QueueFull past this many seconds of work queued: queued rows
            over the measured commit rate (rows per second of wall time while the writer
            was kept busy; see :meth:`Writer.row_limit`). Logplex gives a POST 5 s, and
            the queue is only part of a POST's time under overload (the body must also be
            read and decoded on a busy event loop): a bound in seconds answers 503 in time
            whatever the machine's speed.
        partitions_ahead_days: partitions are kept for today and this many days ahead.
        command_timeout_s: bound on one attempt to write a group (acquire a connection,
            ensure partitions, the transaction, COMMIT), seconds. Past it the group's
            requests get DatabaseUnavailable.
        max_retries: retries of a group after a deadlock/serialization failure or a
            missing partition.
        max_quarantine_raw_bytes: raw bytes kept for an event PostgreSQL refused.
        flushers: flush tasks, i.e. groups in flight at once (each holds a pool connection
            while it writes). 2: a full group (or one that waited ``flush_max_delay_s``)
            is COPYed while the previous one commits. 1: one group at a time.

    Raises:
        ValueError: a bound or timeout is not positive, or a delay/count is negative.
    """

    flush_max_events: int
    flush_max_delay_s: float
    queue_max_events: int
    queue_max_bytes: int
    queue_max_wait_s: float
    partitions_ahead_days: int
    command_timeout_s: float
    max_quarantine_raw_bytes: int
    flushers: int
    max_retries: int = 3

    def __post_init__(self) -> None:
        positive = {
            "flush_max_events": self.flush_max_events,
            "queue_max_events": self.queue_max_events,
            "queue_max_bytes": self.queue_max_bytes,
            "queue_max_wait_s": self.queue_max_wait_s,
            "command_timeout_s": self.command_timeout_s,
            "max_quarantine_raw_bytes": self.max_quarantine_raw_bytes,
            "flushers": self.flushers,
        }
        for name, value in positive.items():
            if not value > 0:
                raise ValueError(f"WriterConfig.{name} must be > 0, got {value!r}")
        for name, value in {
            "flush_max_delay_s": self.flush_max_delay_s,
            "partitions_ahead_days": self.partitions_ahead_days,
            "max_retries": self.max_retries,
        }.items():
            if not value >= 0:
                raise ValueError(f"WriterConfig.{name} must be >= 0, got {value!r}")


@dataclass(frozen=True, slots=True)
class WriterStats:
    """A snapshot of the writer's counters since start. Times are UTC, durations seconds.

    ``queue_events``/``queue_bytes`` include the group being written.
    """

    queue_events: int
    queue_bytes: int
    queue_batches: int
    last_commit_at: datetime | None
    commits: int
    batches_committed: int
    events_stored: int
    quarantined_stored: int
    rejected_by_database: int
    duplicates: int
    db_errors: int
    last_error: str | None
    last_error_at: datetime | None
    last_flush_batches: int
    last_flush_events: int
    last_flush_duration_s: float | None


class WriterObserver(Protocol):
    """Told of each committed group and each database error (drain.web.metrics.Metrics)."""

    def flushed(self, rows: int, batches: int, duration_s: float) -> None:
        """One group of ``batches`` batches, ``rows`` rows, written in ``duration_s`` s."""

    def database_error(self, error_class: str) -> None:
        """One database error, by :class:`ErrorClass` value."""


def _days(group: Sequence[_Item]) -> dict[str, set[date]]:
    """The UTC days (partitions) of the group's rows, by data table."""
    days: dict[str, set[date]] = {}
    for item in group:
        for name, rows in item.batch.rows.items():
            if rows:
                days.setdefault(name, set()).update(TABLES[name].days(rows))
    return days


@dataclass(slots=True, eq=False)
class _Item:
    """One queued batch and the future its request awaits."""

    batch: PendingBatch
    future: asyncio.Future[WriteResult]
    enqueued_at: float
    rows: int
    token: str
    frame_id: str | None


@dataclass(slots=True)
class _Counters:
    commits: int = 0
    batches_committed: int = 0
    events_stored: int = 0
    quarantined_stored: int = 0
    rejected_by_database: int = 0
    duplicates: int = 0
    db_errors: int = 0
    last_commit_at: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    last_flush_batches: int = 0
    last_flush_events: int = 0
    last_flush_duration_s: float | None = None
    recent_rows_per_s: float = field(default=0.0)


class _GroupFailed(Exception):
    """Internal: the group could not be written; ``answer`` goes to every request."""

    def __init__(self, answer: BaseException) -> None:
        super().__init__(str(answer))
        self.answer = answer


class Writer:
    """Group-commit writer over an asyncpg pool. See the module docstring.

    Usage::

        writer = Writer(pool, settings.writer_config())
        await writer.start()
        result = await writer.submit(batch)   # after COMMIT
        await writer.close()

    The writer holds at most ``config.flushers`` pool connections at a time (one per flush
    task).
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        config: WriterConfig,
        observer: WriterObserver | None = None,
    ) -> None:
        self._pool = pool
        self._config = config
        self._observer = observer
        self._partitions = PartitionCache()
        self._queue: collections.deque[_Item] = collections.deque()
        self._waiting_rows = 0
        self._queue_rows = 0
        self._queue_bytes = 0
        self._queue_batches = 0
        self._wake = asyncio.Event()
        self._closing = False
        self._tasks: list[asyncio.Task[None]] = []
        self._in_flight = 0
        #: rows committed per second of wall time while the writer stayed busy (EWMA)
        self._throughput = 0.0
        self._last_commit_mono: float | None = None
        self._busy_since_last_commit = False
        self._counters = _Counters()

    @property
    def config(self) -> WriterConfig:
        """The configuration given to the constructor."""
        return self._config

    @property
    def partitions(self) -> PartitionCache:
        """This writer's cache of days known to have a partition."""
        return self._partitions

    async def start(self) -> None:
        """Load the partition cache, create partitions ahead, start the flush task.

        A database that cannot be reached now is logged and recorded in ``stats()``
        (requests will get DatabaseUnavailable until it is back); partitions are also
        created on demand.

        Raises:
            RuntimeError: already started. asyncpg.PostgresError: other database errors,
                e.g. UndefinedFunctionError when the migrations were not applied.
        """
        if self._tasks:
            raise RuntimeError("Writer.start() called twice")
        try:
            async with asyncio.timeout(self._config.command_timeout_s):
                async with self._pool.acquire() as conn:
                    await self._partitions.load(conn, TABLES)
                    await self._partitions.ensure(conn, self._days_ahead())
        except Exception as exc:
            if classify_error(exc) is not ErrorClass.UNAVAILABLE:
                raise
            self._note_error(exc)
            log.warning("writer start: database unavailable (%s); continuing", describe(exc))
        self._tasks = [
            asyncio.create_task(self._run(), name=f"drain-writer-flush-{n}")
            for n in range(self._config.flushers)
        ]

    def check_room(self, size_bytes: int = 0, incoming_rows: int = 0) -> None:
        """Raise QueueFull when a batch of about ``size_bytes`` bytes would surely be
        refused: the queue (plus ``incoming_rows``, the caller's estimate of the rows of
        batches being read and decoded, which will be queued next) is already at
        :meth:`row_limit`, or the batch would pass ``queue_max_bytes``. A cheap check
        before the body is read and decoded (so that a 503 under overload costs no
        decode); :meth:`submit` makes the exact check.

        Raises:
            QueueFull: with the Retry-After to answer.
        """
        if self._queue_batches and (
            self._queue_rows + incoming_rows >= self.row_limit()
            or self._queue_bytes + size_bytes > self._config.queue_max_bytes
        ):
            raise QueueFull(self._retry_after_s())

    def row_limit(self) -> int:
        """Queued rows allowed now: ``queue_max_events``, or fewer when the measured commit
        rate says they are more than ``queue_max_wait_s`` seconds of work (never fewer
        than one full group per flush task)."""
        cfg = self._config
        if self._throughput <= 0:
            return cfg.queue_max_events
        by_time = int(self._throughput * cfg.queue_max_wait_s)
        return min(cfg.queue_max_events, max(by_time, cfg.flush_max_events * cfg.flushers))

    async def submit(self, batch: PendingBatch) -> WriteResult:
        """Queue ``batch`` and return its :class:`WriteResult` once its rows are committed.

        Raises:
            QueueFull: the queue is past ``queue_max_events``/``queue_max_bytes`` or
                ``queue_max_wait_s`` of work (raised at once, nothing queued).
            WriterClosed: close() has begun, or start() was not called.
            DatabaseUnavailable: transient failure; retry with the same frame id.
            Exception: any unexpected error while writing this batch's group (logged).
        """
        if self._closing or not self._tasks:
            raise WriterClosed("the writer is closed" if self._closing else "writer not started")
        rows = batch.row_count
        if self._queue_batches and (
            self._queue_rows + rows > self.row_limit()
            or self._queue_bytes + batch.size_bytes > self._config.queue_max_bytes
        ):
            raise QueueFull(self._retry_after_s())
        loop = asyncio.get_running_loop()
        item = _Item(
            batch=batch,
            future=loop.create_future(),
            enqueued_at=loop.time(),
            rows=rows,
            token=no_nul(batch.drain_token) or "",
            frame_id=no_nul(batch.frame_id),
        )
        self._queue.append(item)
        self._waiting_rows += rows
        self._queue_rows += rows
        self._queue_bytes += batch.size_bytes
        self._queue_batches += 1
        self._wake.set()
        return await item.future

    async def close(self, timeout_s: float = 20.0) -> None:
        """Stop taking batches, flush everything queued, answer every waiter, stop.

        Bounded by ``timeout_s`` seconds; requests still waiting then get WriterClosed
        (or DatabaseUnavailable for a group whose COMMIT was in flight). Idempotent.
        The last second of ``timeout_s`` is for the cancelled flush to unwind: cancelling a
        query on a database that does not answer can hang in asyncpg until the pool is
        terminated, which the caller does next (drain.web.app's lifespan).
        """
        self._closing = True
        self._wake.set()
        tasks = {task for task in self._tasks if not task.done()}
        if tasks:
            flush_s = max(timeout_s - 1.0, timeout_s / 2)
            _done, pending = await asyncio.wait(tasks, timeout=flush_s)
            if pending:
                log.warning("writer close: flush did not finish in %.1f s; stopping it", flush_s)
                for task in pending:
                    task.cancel()
                await asyncio.wait(pending, timeout=timeout_s - flush_s)
        self._fail_waiting(WriterClosed("the writer closed before this batch was written"))

    def stats(self) -> WriterStats:
        """A snapshot of queue depth and counters (see :class:`WriterStats`)."""
        c = self._counters
        return WriterStats(
            queue_events=self._queue_rows,
            queue_bytes=self._queue_bytes,
            queue_batches=self._queue_batches,
            last_commit_at=c.last_commit_at,
            commits=c.commits,
            batches_committed=c.batches_committed,
            events_stored=c.events_stored,
            quarantined_stored=c.quarantined_stored,
            rejected_by_database=c.rejected_by_database,
            duplicates=c.duplicates,
            db_errors=c.db_errors,
            last_error=c.last_error,
            last_error_at=c.last_error_at,
            last_flush_batches=c.last_flush_batches,
            last_flush_events=c.last_flush_events,
            last_flush_duration_s=c.last_flush_duration_s,
        )

    # -- the flush task --------------------------------------------------------------

    def _hold_s(self, now: float) -> float:
        """Seconds the queued batches should still wait before a flush task takes them
        (loop time ``now``); 0 or less: take them now. Adaptive group commit: they wait
        only while another group is being written, and only until that group is done (its
        flush task then takes them), ``flush_max_events`` rows are queued, or the oldest
        has waited ``flush_max_delay_s``; when closing, not at all."""
        cfg = self._config
        if self._closing or not self._in_flight or self._waiting_rows >= cfg.flush_max_events:
            return 0.0
        return self._queue[0].enqueued_at + cfg.flush_max_delay_s - now

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        group: list[_Item] = []
        try:
            while True:
                if not self._queue:
                    if self._closing:
                        return
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                hold = self._hold_s(loop.time())
                if hold > 0:
                    # woken by a submit (re-check the rows), by the end of the group in
                    # flight, or by close(); else the delay is up
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(hold):
                            await self._wake.wait()
                    continue
                group = self._take_group()
                self._in_flight += 1
                try:
                    await self._flush(group)
                finally:
                    self._in_flight -= 1
                    self._wake.set()  # a flush task holding batches for this group
                group = []
        except asyncio.CancelledError:
            self._answer_failed(
                group, DatabaseUnavailable("writer stopped before the COMMIT was confirmed")
            )
            raise
        except BaseException as exc:
            # A bug in the writer itself: never leave a request waiting forever.
            log.exception("writer flush task failed; closing the writer")
            self._closing = True
            self._answer_failed(group, exc)
            self._fail_waiting(WriterClosed(f"writer failed: {describe(exc)}"))
            raise

    def _take_group(self) -> list[_Item]:
        group: list[_Item] = []
        rows = 0
        limit = self._config.flush_max_events
        while self._queue and (not group or rows + self._queue[0].rows <= limit):
            item = self._queue.popleft()
            rows += item.rows
            self._waiting_rows -= item.rows
            group.append(item)
        return group

    def _release(self, group: Sequence[_Item]) -> None:
        for item in group:
            self._queue_rows -= item.rows
            self._queue_bytes -= item.batch.size_bytes
            self._queue_batches -= 1

    def _fail_waiting(self, exc: BaseException) -> None:
        waiting = list(self._queue)
        self._queue.clear()
        self._waiting_rows = 0
        self._answer_failed(waiting, exc)

    def _answer_failed(self, group: Sequence[_Item], exc: BaseException) -> None:
        self._release(group)
        for item in group:
            if not item.future.done():
                item.future.set_exception(exc)

    def _note_error(self, exc: BaseException) -> None:
        self._counters.db_errors += 1
        self._counters.last_error = describe(exc)
        self._counters.last_error_at = datetime.now(UTC)
        if self._observer is not None:
            self._observer.database_error(classify_error(exc).value)

    def _note_throughput(self, rows: int, now: float) -> None:
        """Update the commit rate with a COMMIT of ``rows`` at ``now`` (loop time): only
        when the writer was busy all the time since the previous COMMIT (rows queued or
        another group in flight), so that the rate measures what the writer can do, not
        what the clients sent."""
        last = self._last_commit_mono
        if last is not None and self._busy_since_last_commit and now > last:
            sample = rows / (now - last)
            rate = self._throughput
            self._throughput = sample if rate <= 0 else 0.8 * rate + 0.2 * sample
        self._last_commit_mono = now
        self._busy_since_last_commit = bool(self._queue) or self._in_flight > 1

    def _retry_after_s(self) -> float:
        rate = self._throughput or self._counters.recent_rows_per_s
        if rate <= 0:
            return 1.0
        return max(1.0, min(30.0, self._queue_rows / rate))

    def _days_ahead(self) -> dict[str, list[date]]:
        today = datetime.now(UTC).date()
        ahead = [today + timedelta(days=n) for n in range(self._config.partitions_ahead_days + 1)]
        return {name: ahead for name in TABLES}

    async def _flush(self, group: list[_Item]) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            results = await self._write_with_retries(group)
        except _GroupFailed as failed:
            self._answer_failed(group, failed.answer)
            return
        finished = loop.time()
        elapsed = finished - started
        c = self._counters
        c.commits += 1
        c.last_commit_at = datetime.now(UTC)
        c.last_flush_batches = len(group)
        c.last_flush_events = sum(item.rows for item in group)
        c.last_flush_duration_s = elapsed
        if elapsed > 0:
            c.recent_rows_per_s = c.last_flush_events / elapsed
        self._note_throughput(c.last_flush_events, finished)
        if self._observer is not None:
            self._observer.flushed(c.last_flush_events, len(group), elapsed)
        self._release(group)
        for item, result in zip(group, results, strict=True):
            if result.duplicate:
                c.duplicates += 1
            else:
                c.batches_committed += 1
            c.events_stored += result.events_stored
            c.quarantined_stored += result.quarantined
            c.rejected_by_database += result.rejected_by_database
            if not item.future.done():
                item.future.set_result(result)

    async def _write_with_retries(self, group: list[_Item]) -> list[WriteResult]:
        """Write ``group``; raise _GroupFailed with the answer for its requests."""
        isolate = False
        retries = 0
        # the last error, described: the exception itself would hold its traceback, whose
        # frames hold this one (and the group's rows) in a cycle the GC frees only later
        last = "?"
        # Bounded: each pass either returns, raises, switches to isolation (once), or
        # uses one of max_retries retries.
        for _ in range(self._config.max_retries + 2):
            try:
                async with asyncio.timeout(self._config.command_timeout_s):
                    return await self._write_group(group, isolate=isolate)
            except Exception as exc:
                last = describe(exc)
                kind = classify_error(exc)
                if kind is ErrorClass.DATA and not isolate:
                    log.info("data error in a group of %d batches; isolating", len(group))
                    isolate = True
                    continue
                if kind in (ErrorClass.RETRY, ErrorClass.MISSING_PARTITION):
                    if retries < self._config.max_retries:
                        retries += 1
                        if kind is ErrorClass.MISSING_PARTITION:
                            self._partitions.forget()
                        self._note_error(exc)
                        log.info("retrying group after %s", describe(exc))
                        continue
                    self._note_error(exc)
                    raise _GroupFailed(
                        DatabaseUnavailable(f"gave up after {retries} retries: {describe(exc)}")
                    ) from exc
                self._note_error(exc)
                if kind is ErrorClass.UNAVAILABLE:
                    log.warning("database unavailable: %s", describe(exc))
                    raise _GroupFailed(DatabaseUnavailable(describe(exc))) from exc
                log.exception("unexpected error writing a group of %d batches", len(group))
                raise _GroupFailed(exc) from exc
        raise _GroupFailed(DatabaseUnavailable(f"gave up: {last}"))

    async def _write_group(self, group: list[_Item], *, isolate: bool) -> list[WriteResult]:
        conn = await self._pool.acquire()
        try:
            days = _days(group)
            for name, ahead in self._days_ahead().items():
                days.setdefault(name, set()).update(ahead)
            await self._partitions.ensure(conn, days)
            async with conn.transaction():
                duplicate = await self._claim(conn, group)
                if isolate:
                    return await self._copy_isolated(conn, group, duplicate)
                return await self._copy_group(conn, group, duplicate)
        except BaseException as exc:
            # A server-reported error leaves the connection usable; anything else
            # (lost connection, timeout/cancel mid-statement) may not: drop it.
            if not isinstance(exc, asyncpg.PostgresError):
                # InterfaceError: the pool already took back a connection that closed.
                with contextlib.suppress(asyncpg.InterfaceError):
                    conn.terminate()
            raise
        finally:
            await self._give_back(conn)

    async def _give_back(self, conn: PoolConnectionProxy[asyncpg.Record]) -> None:
        """Return ``conn`` to the pool; if that fails, drop it. Never raises a release error:
        the group's outcome (committed, or the exception being raised) is already decided,
        and a failed reset must not turn a COMMIT into an error or hide the real one."""
        try:
            await self._pool.release(conn, timeout=self._config.command_timeout_s)
        except (
            asyncpg.PostgresError,
            asyncpg.InterfaceError,
            asyncpg.InternalClientError,
            OSError,
            TimeoutError,
        ) as exc:
            log.warning("dropped a connection that could not be reset: %s", describe(exc))
            with contextlib.suppress(asyncpg.InterfaceError):
                conn.terminate()

    async def _claim(self, conn: Conn, group: list[_Item]) -> list[bool]:
        """Insert the group's ledger keys; return, per batch, whether it is a duplicate."""
        duplicate = [False] * len(group)
        first: dict[tuple[str, str], int] = {}
        for i, item in enumerate(group):
            if item.frame_id is None:
                continue
            key = (item.token, item.frame_id)
            if key in first:
                duplicate[i] = True  # the same key twice in one group: the first wins
            else:
                first[key] = i
        if not first:
            return duplicate
        keys = sorted(first)
        items = [group[first[k]] for k in keys]
        rows = await conn.fetch(
            _CLAIM_SQL,
            [k[0] for k in keys],
            [k[1] for k in keys],
            [it.batch.received_at for it in items],
            [len(it.batch.events) for it in items],
            [len(it.batch.quarantined) for it in items],
        )
        claimed = {(r["drain_token"], r["frame_id"]) for r in rows}
        for key, i in first.items():
            if key not in claimed:
                duplicate[i] = True
        return duplicate

    @staticmethod
    def _tail(item: _Item) -> Row:
        """The batch columns appended to each of its rows (drain.store.tables)."""
        return (item.batch.received_at, item.batch.drain_token and item.token, item.frame_id)

    @staticmethod
    def _quarantine_records(item: _Item) -> list[Row]:
        b = item.batch
        token = b.drain_token and item.token
        return [quarantine_record(q, b.received_at, token, item.frame_id) for q in b.quarantined]

    async def _copy_group(
        self, conn: Conn, group: list[_Item], duplicate: list[bool]
    ) -> list[WriteResult]:
        records: dict[str, list[Row]] = {name: [] for name in TABLES}
        quarantine: list[Row] = []
        results: list[WriteResult] = []
        for item, dup in zip(group, duplicate, strict=True):
            if dup:
                results.append(WriteResult(duplicate=True, stored={}))
                continue
            tail = self._tail(item)
            stored = {RAW_EVENTS: 0}
            for name, rows in item.batch.rows.items():
                records[name].extend(map(operator.add, rows, itertools.repeat(tail)))
                stored[name] = len(rows)
            quarantine.extend(self._quarantine_records(item))
            stored[QUARANTINE] = len(item.batch.quarantined)
            results.append(WriteResult(duplicate=False, stored=stored))
        for name, table in TABLES.items():
            if records[name]:
                await conn.copy_records_to_table(name, records=records[name], columns=table.columns)
        if quarantine:
            await conn.copy_records_to_table(
                QUARANTINE, records=quarantine, columns=QUARANTINE_COLUMNS
            )
        return results

    async def _copy_isolated(
        self, conn: Conn, group: list[_Item], duplicate: list[bool]
    ) -> list[WriteResult]:
        """Like _copy_group, but one savepoint per batch and table; bisect what fails."""
        results: list[WriteResult] = []
        quarantine: list[Row] = []
        for item, dup in zip(group, duplicate, strict=True):
            if dup:
                results.append(WriteResult(duplicate=True, stored={}))
                continue
            b = item.batch
            tail = self._tail(item)
            token = b.drain_token and item.token
            stored = {RAW_EVENTS: 0}
            refused = 0
            quarantine.extend(self._quarantine_records(item))
            for name, rows in b.rows.items():
                table = TABLES[name]
                rejected = await self._copy_bisect(conn, table, [row + tail for row in rows])
                quarantine.extend(
                    rejected_record(
                        table,
                        record,
                        why,
                        b.received_at,
                        token,
                        item.frame_id,
                        self._config.max_quarantine_raw_bytes,
                    )
                    for record, why in rejected
                )
                stored[name] = len(rows) - len(rejected)
                refused += len(rejected)
            stored[QUARANTINE] = len(b.quarantined) + refused
            if refused and item.frame_id is not None:
                await conn.execute(
                    _UPDATE_LEDGER_SQL,
                    item.token,
                    item.frame_id,
                    stored.get(RAW_EVENTS, 0),
                    stored[QUARANTINE],
                )
            results.append(
                WriteResult(duplicate=False, stored=stored, rejected_by_database=refused)
            )
        if quarantine:
            await conn.copy_records_to_table(
                QUARANTINE, records=quarantine, columns=QUARANTINE_COLUMNS
            )
        return results

    async def _copy_bisect(
        self, conn: Conn, table: DataTable, records: list[Row]
    ) -> list[tuple[Row, str]]:
        """COPY ``records`` into ``table`` under savepoints, halving any chunk PostgreSQL
        refuses.

        Returns the refused single rows with the server's message. At most
        2 * len(records) COPYs (a binary tree over the rows).
        """
        rejected: list[tuple[Row, str]] = []
        stack = [records] if records else []
        for _ in range(2 * len(records) + 1):
            if not stack:
                break
            chunk = stack.pop()
            try:
                async with conn.transaction():
                    await conn.copy_records_to_table(
                        table.name, records=chunk, columns=table.columns
                    )
            except Exception as exc:
                if classify_error(exc) is not ErrorClass.DATA:
                    raise
                if len(chunk) == 1:
                    rejected.append((chunk[0], describe(exc)))
                else:
                    mid = len(chunk) // 2
                    stack.append(chunk[mid:])
                    stack.append(chunk[:mid])
        return rejected
