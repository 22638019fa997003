"""Counters since start, the database probe, and the ``GET /health`` document.

``GET /health`` needs no credentials and reveals no secrets: no URL, no host name, no user
name, no body bytes; a failed probe reports only the exception's class name.

The document (JSON)::

    {"status": "ok" | "database_unreachable",
     "database": {"reachable": true, "latency_ms": 0.41, "error": null},
     "writer": {"queue_events": 0, "queue_bytes": 0, "last_commit_at": "2026-...Z", ...},
     "counters": {"started_at": "...", "requests_by_status": {"200": 12, "401": 1},
                  "batches": 12, "body_bytes": 8760, "frames": 120, "events_stored": 100,
                  "quarantined": 3, "quarantined_by_reason": {"invalid_json": 3},
                  "not_events": 17, "duplicates": 1, "msg_count_mismatches": 0,
                  "msg_count_invalid": 0, "otlp_requests_by_signal": {"logs": 3},
                  "otlp_not_stored_by_signal": {}},
     "rollups": [{"name": "payment_history", "last_window_end": "...", "lag_s": 312.0,
                  "last_run_at": "...", "last_error": null, "late_events_24h": 0}],
     "warnings": [{"kind": "upstream_loss", "message": "...", "lost": 1, "...": "..."}]}

``warnings`` is empty when all is well; a warning never changes the status. Each is a JSON
object with a ``kind`` and a human ``message``:

- ``upstream_loss``: the last loss Heroku reported to the drain (Logplex's ``Error L10``,
  log-shuttle's ``Error L13`` / ``Logplex-Lost-Count``, drain.decode.loss): how many
  messages, since when, for which app (a DRAIN_APPS name, else "other"; never a token).
  With several workers the last report is shared through a small JSON file in the metrics
  directory (written whole, then renamed),
  so every worker shows it (:class:`LossMemory`); it is forgotten when the drain restarts.
  The ``drain_upstream_lost_messages_total`` metric keeps the counts.
- ``partitions_ahead``: fewer than DRAIN_PARTITIONS_AHEAD_DAYS days after today have a
  partition (the clock's maintenance makes them; ``drain partitions maintain`` does it now).
- ``archive_failed``: the last attempt to archive a partition past retention failed
  (drain.archive): which table and day, at which step, the error's class (its message is in
  ``drain archive list`` and the clock's log), how many attempts failed. The partition is
  still in PostgreSQL; the next maintenance retries.

Answered with 200 when the database answers ``SELECT 1`` within the probe timeout, 503 when
it does not (so a load balancer or ``curl --fail`` sees the outage).
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson

from drain.archive.status import FailedArchive, archive_failures, failed_archives
from drain.decode.loss import BatchLoss
from drain.records import Ledger, WriteResult
from drain.store.lifecycle import days_ahead

__all__ = [
    "LAST_LOSS_FILE",
    "ArchiveHealth",
    "Counters",
    "DatabaseProbe",
    "LossMemory",
    "archive_health",
    "archive_warning",
    "health_document",
    "jsonable",
    "loss_warning",
    "partitions_ahead",
    "partitions_warning",
    "probe_database",
    "rollup_health",
]

#: the last upstream loss, shared by the workers, in the metrics directory
LAST_LOSS_FILE = "drain-last-upstream-loss.json"


@dataclass(slots=True)
class Counters:
    """What the web process saw since it started; one instance per app (``app.state``).

    Fields:
        requests_by_status: POST /logs and OTLP answers by HTTP status.
        batches: bodies decoded. body_bytes: their decoded size in bytes.
        frames / not_events: from each body's :class:`~drain.records.Ledger` (counted when
            decoded, even if the write then fails and Logplex retries); OTLP log records
            count as frames.
        events_stored / quarantined_by_reason: rows committed (duplicates add nothing).
        duplicates: batches whose (drain token, frame id) was already committed.
        msg_count_mismatches: Logplex-Msg-Count differed from the frames found.
        events_stored_by_app / batches_by_app: by app label (a DRAIN_APPS name, else
            "other": drain.settings.Settings.app_label).
        msg_count_invalid: Logplex-Msg-Count was not a non-negative integer (ignored).
        too_many_frames: bodies refused (413) for holding more than DRAIN_MAX_FRAMES_PER_BODY.
        insecure_refused: POSTs refused (503) for ``X-Forwarded-Proto: http``.
        body_budget_refused: POSTs refused (503) because the bodies already being read and
            decoded held the worker's DRAIN_BODY_BUDGET_BYTES share (drain.web.body).
        otlp_requests_by_signal: OTLP requests answered (any status), by signal (``logs``,
            ``metrics``, ``traces``); their log records are in ``frames`` and below.
        otlp_not_stored_by_signal: data points (``metrics``) and spans (``traces``) that
            OTLP requests carried, counted and not stored.
    """

    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    requests_by_status: Counter[int] = field(default_factory=Counter)
    batches: int = 0
    body_bytes: int = 0
    frames: int = 0
    events_stored: int = 0
    quarantined_by_reason: Counter[str] = field(default_factory=Counter)
    not_events: int = 0
    duplicates: int = 0
    msg_count_mismatches: int = 0
    msg_count_invalid: int = 0
    too_many_frames: int = 0
    insecure_refused: int = 0
    body_budget_refused: int = 0
    batches_by_app: Counter[str] = field(default_factory=Counter)
    events_stored_by_app: Counter[str] = field(default_factory=Counter)
    otlp_requests_by_signal: Counter[str] = field(default_factory=Counter)
    otlp_not_stored_by_signal: Counter[str] = field(default_factory=Counter)

    def record_otlp(self, signal: str, not_stored: int) -> None:
        """Count one OTLP request of ``signal`` and the items it carried that are not stored."""
        self.otlp_requests_by_signal[signal] += 1
        if not_stored:
            self.otlp_not_stored_by_signal[signal] += not_stored

    def record_decoded(self, ledger: Ledger, app: str) -> None:
        """Count one decoded body of ``app`` (a label) whether or not its write succeeds."""
        self.batches += 1
        self.batches_by_app[app] += 1
        self.body_bytes += ledger.body_bytes
        self.frames += ledger.frames
        self.not_events += ledger.not_events
        if ledger.msg_count_mismatch:
            self.msg_count_mismatches += 1

    def record_written(self, ledger: Ledger, result: WriteResult, app: str) -> None:
        """Count what the writer committed for one body of ``app`` (a label)."""
        if result.duplicate:
            self.duplicates += 1
            return
        self.events_stored += result.events_stored
        self.events_stored_by_app[app] += result.events_stored
        self.quarantined_by_reason.update(ledger.quarantined_by_reason)
        if result.rejected_by_database:
            self.quarantined_by_reason["rejected_by_database"] += result.rejected_by_database

    def as_dict(self) -> dict[str, Any]:
        """The counters as JSON-able values (status codes as string keys)."""
        return {
            "started_at": self.started_at.isoformat(),
            "requests_by_status": {str(k): v for k, v in sorted(self.requests_by_status.items())},
            "batches": self.batches,
            "body_bytes": self.body_bytes,
            "frames": self.frames,
            "events_stored": self.events_stored,
            "quarantined": sum(self.quarantined_by_reason.values()),
            "quarantined_by_reason": dict(sorted(self.quarantined_by_reason.items())),
            "not_events": self.not_events,
            "duplicates": self.duplicates,
            "msg_count_mismatches": self.msg_count_mismatches,
            "msg_count_invalid": self.msg_count_invalid,
            "too_many_frames": self.too_many_frames,
            "insecure_refused": self.insecure_refused,
            "body_budget_refused": self.body_budget_refused,
            "batches_by_app": dict(sorted(self.batches_by_app.items())),
            "events_stored_by_app": dict(sorted(self.events_stored_by_app.items())),
            "otlp_requests_by_signal": dict(sorted(self.otlp_requests_by_signal.items())),
            "otlp_not_stored_by_signal": dict(sorted(self.otlp_not_stored_by_signal.items())),
        }


@dataclass(frozen=True, slots=True)
class DatabaseProbe:
    """Result of one ``SELECT 1``: reachable, round trip in milliseconds, error class name."""

    reachable: bool
    latency_ms: float | None
    error: str | None


async def probe_database(pool: asyncpg.Pool, timeout_s: float) -> DatabaseProbe:
    """Run ``SELECT 1`` on a pooled connection, bounded by ``timeout_s`` seconds in total
    (waiting for a connection included; DRAIN_HEALTH_PROBE_TIMEOUT_S). Never raises for a
    database fault."""
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout_s), pool.acquire() as connection:
            await connection.fetchval("SELECT 1")
    except TimeoutError:
        return DatabaseProbe(False, None, f"no answer within {timeout_s:g} s")
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
        return DatabaseProbe(False, None, type(error).__name__)
    return DatabaseProbe(True, round((time.perf_counter() - started) * 1000, 3), None)


def jsonable(value: Any) -> Any:
    """Turn a stats object (dataclass, NamedTuple, datetime...) into JSON-able values."""
    if isinstance(value, datetime):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple) and hasattr(value, "_asdict"):
        return {k: jsonable(v) for k, v in value._asdict().items()}
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _redacted(writer: Any) -> Any:
    """Keep only the class (and SQLSTATE) of the writer's last error: a database message can
    quote row data, and /health is unauthenticated."""
    if isinstance(writer, dict) and isinstance(writer.get("last_error"), str):
        writer = {**writer, "last_error": writer["last_error"].partition(":")[0]}
    return writer


async def rollup_health(
    pool: asyncpg.Pool, names: list[str], timeout_s: float
) -> list[dict[str, Any]] | None:
    """Each rollup's lag (seconds its last completed window is behind now), last error class
    and late events in the last 24 h; None when ``rollup_runs`` cannot be read in time."""
    from drain.rollups.runner import rollup_status

    try:
        async with asyncio.timeout(timeout_s):
            status = await rollup_status(pool, names, datetime.now(UTC))
    except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
        return None
    return [
        {
            "name": s.rollup,
            "last_window_end": jsonable(s.last_window_end),
            "lag_s": None if s.lag_s is None else round(s.lag_s, 1),
            "last_run_at": jsonable(s.last_run_at),
            # the class only: a database message can quote data, and /health is public
            "last_error": None if s.last_error is None else s.last_error.partition(":")[0],
            "late_events_24h": s.late_events,
        }
        for s in status
    ]


def health_document(
    probe: DatabaseProbe,
    writer_stats: object,
    counters: Counters,
    rollups: list[dict[str, Any]] | None = None,
    warnings: list[dict[str, Any]] | None = None,
) -> tuple[int, dict[str, Any]]:
    """The /health answer: (HTTP status, JSON document); 503 when the database is unreachable."""
    document = {
        "status": "ok" if probe.reachable else "database_unreachable",
        "database": {
            "reachable": probe.reachable,
            "latency_ms": probe.latency_ms,
            "error": probe.error,
        },
        "writer": _redacted(jsonable(writer_stats)),
        "counters": counters.as_dict(),
        "rollups": rollups,
        # upstream loss, partitions not made ahead (see the module docstring)
        "warnings": warnings or [],
    }
    return (200 if probe.reachable else 503), document


def loss_warning(app: str, loss: BatchLoss, received_at: datetime) -> dict[str, Any]:
    """The ``upstream_loss`` warning for /health from one batch's :class:`BatchLoss`.

    ``app`` is the batch's app label (a DRAIN_APPS name, else "other"): /health needs no
    credentials, so it never shows a sender's drain token.
    """
    latest = loss.latest
    since = latest.since.isoformat() if latest is not None and latest.since else None
    source = latest.source if latest is not None else None
    return {
        "kind": "upstream_loss",
        "message": (
            f"Heroku reported {loss.lost} messages lost before they reached this drain "
            f"({source}, app {app}{', since ' + since if since else ''}): those events are "
            "gone; the drain is too slow or was unreachable"
        ),
        "app": app,
        "lost": loss.lost,
        "since": since,
        "source": source,
        "reported_at": received_at.astimezone(UTC).isoformat(),
    }


class LossMemory:
    """The last upstream loss warning this drain saw, for every worker's /health.

    With one worker it lives in this object; with several (``directory`` is the shared
    metrics directory, PROMETHEUS_MULTIPROC_DIR) it is a JSON file there, written whole
    and then renamed, so a reader never sees half of it.
    """

    def __init__(self, directory: str | None) -> None:
        self._directory = directory
        self._last: dict[str, Any] | None = None

    def remember(self, warning: dict[str, Any]) -> None:
        """Keep ``warning`` as the last upstream loss."""
        self._last = warning
        if self._directory is not None:
            path = os.path.join(self._directory, LAST_LOSS_FILE)
            temporary = f"{path}.{os.getpid()}"
            with open(temporary, "wb") as out:
                out.write(orjson.dumps(warning))
            os.replace(temporary, path)

    def last(self) -> dict[str, Any] | None:
        """The last upstream loss any worker saw, or None."""
        if self._directory is None:
            return self._last
        try:
            with open(os.path.join(self._directory, LAST_LOSS_FILE), "rb") as shared:
                found = orjson.loads(shared.read())
        except FileNotFoundError:
            return None
        except orjson.JSONDecodeError:  # cannot happen with os.replace; be safe
            return self._last
        return found if isinstance(found, dict) else None


async def partitions_ahead(pool: asyncpg.Pool, timeout_s: float) -> int | None:
    """Days after today (UTC) that have a partition; None when the database did not
    answer within ``timeout_s`` seconds."""
    try:
        async with asyncio.timeout(timeout_s), pool.acquire() as conn:
            return await days_ahead(conn, datetime.now(UTC).date())
    except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
        return None


def partitions_warning(ahead: int | None, wanted: int) -> dict[str, Any] | None:
    """The ``partitions_ahead`` warning when fewer than ``wanted`` days have a partition."""
    if ahead is None or ahead >= wanted:
        return None
    return {
        "kind": "partitions_ahead",
        "message": (
            f"only {ahead} of {wanted} days after today have a raw_events partition: is "
            "`drain clock` running? `drain partitions maintain` makes them now"
        ),
        "ahead_days": ahead,
        "wanted_days": wanted,
    }


@dataclass(frozen=True, slots=True)
class ArchiveHealth:
    """The archive's failures as the database records them (drain.archive.status).

    Fields:
        failed: generations whose last attempt failed (newest first, at most 10).
        failures: failed attempts ever recorded, by (table, step).
    """

    failed: list[FailedArchive]
    failures: dict[tuple[str, str], int]


async def archive_health(pool: asyncpg.Pool, timeout_s: float) -> ArchiveHealth | None:
    """The archive's failures; None when the database did not answer within ``timeout_s``
    seconds (or has no archive tables)."""
    try:
        async with asyncio.timeout(timeout_s), pool.acquire() as conn:
            return ArchiveHealth(await failed_archives(conn), await archive_failures(conn))
    except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
        return None


def archive_warning(failed: FailedArchive) -> dict[str, Any]:
    """The ``archive_failed`` warning of one generation (the error's class only: /health
    is public and a message can name a bucket or a path)."""
    error = failed.error.partition(":")[0]
    return {
        "kind": "archive_failed",
        "message": (
            f"archiving {failed.table} {failed.day.isoformat()} failed at {failed.step} "
            f"({error}; {failed.failures} failed attempts): the partition stays in PostgreSQL "
            "and the next maintenance retries; `drain archive list` shows the error"
        ),
        "table": failed.table,
        "day": failed.day.isoformat(),
        "step": failed.step,
        "error": error,
        "failures": failed.failures,
        "failed_at": failed.at.astimezone(UTC).isoformat(),
    }
