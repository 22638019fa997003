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

- ``upstream_loss``: the losses the senders reported to the drain since it started, added
  up, one warning per app and ``source`` (drain.decode.loss): ``L10`` (Logplex's drain
  buffer overflowed), ``L12`` (log-shuttle's local buffer overflowed: its L12 line or
  Logplex-Drop-Count), ``L13``
  (log-shuttle gave up delivering: its L13 line or Logplex-Lost-Count); how many messages,
  since when, for which app (a DRAIN_APPS name, else "other"; never a token). The message
  says it is the sender's count, which the drain cannot check; for L13, when since the loss
  began the drain stored batches of that app after their sender had closed the connection
  (``unanswered_since``), or received again batches it had already stored
  (``retries_since``), it says the loss may not be real (the sender gave up on batches whose
  answer came too late, and they are stored). With several workers each worker writes what
  it saw to a small JSON file of its own in the metrics directory (written whole, then
  renamed), and every worker reads them all (:class:`LossMemory`); they are forgotten when
  the drain restarts. The ``drain_upstream_lost_messages_total`` metric keeps the counts.
- ``platform_error``: ``platform_events`` holds one of DRAIN_PLATFORM_WARN_CODES (R14, H12
  ...) in the last DRAIN_PLATFORM_WARN_WINDOW_S seconds, one warning per app and code: how
  many, and the last time (:func:`platform_warnings`).
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
import contextlib
import dataclasses
import glob
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson

from drain.archive.status import FailedArchive, archive_failures, failed_archives
from drain.decode.loss import SOURCE_L10, SOURCE_L12, SOURCE_L13, BatchLoss
from drain.decode.platform import CODES, code_label
from drain.records import Ledger, WriteResult
from drain.store.lifecycle import days_ahead
from drain.store.platform import RecentCode

__all__ = [
    "LOSS_FILE_PREFIX",
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
    "platform_warnings",
    "probe_database",
    "rollup_health",
]

#: each worker's losses and duplicates, in the metrics directory: ``<prefix><pid>.json``
LOSS_FILE_PREFIX = "drain-upstream-loss-"
#: duplicates remembered per app (the newest), for the L13 warning
_MAX_DUPLICATES = 1000


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
        not_events_by_kind: the not-events of the decoded bodies, by kind (``untagged``,
            ``excluded``, ``out_of_window``, ...).
        typed_lines_by_kind: frames of Heroku's own lines decoded into typed rows, by
            kind (``router``, ``runtime_metrics``, ``addon_metrics``, ``platform``).
        rows_stored_by_table: rows committed, by data table (raw_events and the typed
            tables); duplicates add nothing.
        platform_events_by_code: platform events committed, by Heroku error code
            (drain.decode.platform.code_label: a code, ``none`` or ``other``).
        msg_count_invalid: Logplex-Msg-Count was not a non-negative integer (ignored).
        too_many_frames: bodies refused (413) for holding more than DRAIN_MAX_FRAMES_PER_BODY.
        unanswered: batches committed after their sender had closed the connection.
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
    unanswered: int = 0
    batches_by_app: Counter[str] = field(default_factory=Counter)
    events_stored_by_app: Counter[str] = field(default_factory=Counter)
    not_events_by_kind: Counter[str] = field(default_factory=Counter)
    typed_lines_by_kind: Counter[str] = field(default_factory=Counter)
    rows_stored_by_table: Counter[str] = field(default_factory=Counter)
    platform_events_by_code: Counter[str] = field(default_factory=Counter)
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
        self.not_events_by_kind.update(ledger.not_events_by_kind)
        self.typed_lines_by_kind.update(ledger.typed_by_kind)
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
        for table, rows in result.stored.items():
            if rows and table != "quarantine":
                self.rows_stored_by_table[table] += rows
        for code, n in ledger.platform_codes.items():
            self.platform_events_by_code[code_label(code or None)] += n
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
            "unanswered": self.unanswered,
            "insecure_refused": self.insecure_refused,
            "body_budget_refused": self.body_budget_refused,
            "batches_by_app": dict(sorted(self.batches_by_app.items())),
            "events_stored_by_app": dict(sorted(self.events_stored_by_app.items())),
            "otlp_requests_by_signal": dict(sorted(self.otlp_requests_by_signal.items())),
            "otlp_not_stored_by_signal": dict(sorted(self.otlp_not_stored_by_signal.items())),
            "not_events_by_kind": dict(sorted(self.not_events_by_kind.items())),
            "typed_lines_by_kind": dict(sorted(self.typed_lines_by_kind.items())),
            "rows_stored_by_table": dict(sorted(self.rows_stored_by_table.items())),
            "platform_events_by_code": dict(sorted(self.platform_events_by_code.items())),
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


#: what each loss source is, in the warning (Heroku Dev Center, "Heroku Error Codes")
_LOSS_WORDS = {
    SOURCE_L10: (
        "Logplex",
        "dropped",
        "Error L10, drain buffer overflow: Logplex could not deliver them to this drain "
        "fast enough and dropped them",
    ),
    SOURCE_L12: (
        "log-shuttle",
        "dropped",
        "Error L12 / Logplex-Drop-Count, local buffer overflow: lines came faster than it "
        "could send them and it discarded some before sending",
    ),
    SOURCE_L13: (
        "log-shuttle",
        "lost",
        "Error L13 / Logplex-Lost-Count, local delivery error: it gave up on batches whose "
        "POST failed or timed out",
    ),
}


def loss_warning(
    app: str,
    source: str,
    lost: int,
    since: datetime | None,
    received_at: datetime,
    retries: int = 0,
    last_retry_at: str | None = None,
    reports: int = 1,
    unanswered: int = 0,
) -> dict[str, Any]:
    """The ``upstream_loss`` warning for /health of what one app's senders reported from
    one ``source`` (``L10``, ``L12``, ``L13``) since the drain started: ``lost`` messages in
    ``reports`` reports, the earliest since ``since`` (UTC or None), the last in the batch
    received at ``received_at``. ``retries`` counts the batches the drain had already stored
    that arrived again from this app since the loss began (L13 only), the last at
    ``last_retry_at`` (ISO text); ``unanswered`` the batches of this app the drain stored
    after their sender had closed the connection, since the loss began (L13 only).

    ``app`` is the batch's app label (a DRAIN_APPS name, else "other"): /health needs no
    credentials, so it never shows a sender's drain token.
    """
    sender, verb, why = _LOSS_WORDS.get(source, ("the sender", "lost", f"Error {source}"))
    since_text = since.astimezone(UTC).isoformat() if since is not None else None
    times = "" if reports == 1 else f" in {reports} reports"
    message = (
        f"{sender} reported {lost} messages {verb} before they reached this drain{times} (app "
        f"{app}{', since ' + since_text if since_text else ''}; {why}). This is the "
        "sender's count: the drain cannot check it"
    )
    if source == SOURCE_L13:
        message += (
            "; a batch the drain stored but answered too late is counted lost by the sender as well"
        )
        seen = []
        if unanswered:
            seen.append(
                f"{unanswered} batches of this app were stored after the sender had stopped "
                "waiting for the answer"
            )
        if retries:
            seen.append(
                f"{retries} batches this drain had already stored were sent again by this app "
                f"(retries, last at {last_retry_at})"
            )
        if seen:
            message += (
                f". Since the loss began, {' and '.join(seen)}: the loss may not be real; "
                "compare the sender's count with received_batches"
            )
    warning: dict[str, Any] = {
        "kind": "upstream_loss",
        "message": message,
        "app": app,
        "source": source,
        "lost": lost,
        "reports": reports,
        "since": since_text,
        "reported_at": received_at.astimezone(UTC).isoformat(),
    }
    if source == SOURCE_L13:
        warning["retries_since"] = retries
        warning["unanswered_since"] = unanswered
    return warning


class LossMemory:
    """The upstream losses this drain was told of, and the retries it saw, for every
    worker's /health (see the module docstring).

    Per app label and loss source it adds up the reports since the drain started (messages,
    reports, the earliest ``since``, when the last arrived); per app label it keeps the times
    of the latest duplicate batches (at most 1,000). With
    one worker it lives in this object; with several (``directory`` is the shared metrics
    directory, PROMETHEUS_MULTIPROC_DIR) each worker also writes its own part to
    ``<directory>/drain-upstream-loss-<pid>.json`` (written whole, then renamed, so a reader
    never sees half of it) and :meth:`warnings` reads every worker's part.
    """

    def __init__(self, directory: str | None) -> None:
        self._directory = directory
        self._losses: dict[str, dict[str, Any]] = {}
        self._duplicates: dict[str, list[str]] = {}
        self._unanswered: dict[str, list[str]] = {}

    def remember_loss(self, app: str, loss: BatchLoss, received_at: datetime) -> None:
        """Add the batch's loss by source (``loss.by_code``) to what app label ``app``'s
        senders reported since the drain started: messages, reports, the earliest
        ``since``, the latest report's time."""
        for source, lost in loss.by_code.items():
            since = min(
                (r.since for r in loss.reports if r.source == source and r.since is not None),
                default=None,
            )
            key = f"{app}/{source}"
            record = self._losses.get(key) or {
                "app": app,
                "source": source,
                "lost": 0,
                "reports": 0,
                "since": None,
                "reported_at": None,
            }
            record["lost"] += lost
            record["reports"] += 1
            if since is not None:
                text = since.astimezone(UTC).isoformat()
                record["since"] = _earliest(record["since"], text)
            record["reported_at"] = received_at.astimezone(UTC).isoformat()
            self._losses[key] = record
        self._save()

    def remember_duplicate(self, app: str, received_at: datetime) -> None:
        """Note that app label ``app`` sent a batch that was already stored (a retry)."""
        self._note(self._duplicates, app, received_at)

    def remember_unanswered(self, app: str, received_at: datetime) -> None:
        """Note that a batch of app label ``app`` was stored after its sender had closed the
        connection (so the sender counts it as failed)."""
        self._note(self._unanswered, app, received_at)

    def _note(self, times: dict[str, list[str]], app: str, received_at: datetime) -> None:
        seen = times.setdefault(app, [])
        seen.append(received_at.astimezone(UTC).isoformat())
        del seen[:-_MAX_DUPLICATES]
        self._save()

    def _save(self) -> None:
        if self._directory is None:
            return
        path = os.path.join(self._directory, f"{LOSS_FILE_PREFIX}{os.getpid()}.json")
        temporary = f"{path}.tmp"
        with open(temporary, "wb") as out:
            out.write(
                orjson.dumps(
                    {
                        "losses": self._losses,
                        "duplicates": self._duplicates,
                        "unanswered": self._unanswered,
                    }
                )
            )
        os.replace(temporary, path)

    def _parts(self) -> list[dict[str, Any]]:
        if self._directory is None:
            return [
                {
                    "losses": self._losses,
                    "duplicates": self._duplicates,
                    "unanswered": self._unanswered,
                }
            ]
        parts = []
        for path in sorted(glob.glob(os.path.join(self._directory, f"{LOSS_FILE_PREFIX}*.json"))):
            with contextlib.suppress(FileNotFoundError, orjson.JSONDecodeError, OSError):
                with open(path, "rb") as shared:
                    found = orjson.loads(shared.read())
                if isinstance(found, dict):
                    parts.append(found)
        return parts

    def warnings(self) -> list[dict[str, Any]]:
        """One ``upstream_loss`` warning per app and source: every worker's reports added
        up, ordered by app and source (see :func:`loss_warning`)."""
        losses: dict[str, dict[str, Any]] = {}
        duplicates: dict[str, list[str]] = {}
        unanswered: dict[str, list[str]] = {}
        for part in self._parts():
            for key, record in (part.get("losses") or {}).items():
                found = losses.get(key)
                if found is None:
                    losses[key] = dict(record)
                    continue
                found["lost"] += record["lost"]
                found["reports"] += record["reports"]
                found["since"] = _earliest(found["since"], record["since"])
                found["reported_at"] = max(found["reported_at"], record["reported_at"])
            for app, times in (part.get("duplicates") or {}).items():
                duplicates.setdefault(app, []).extend(times)
            for app, times in (part.get("unanswered") or {}).items():
                unanswered.setdefault(app, []).extend(times)
        out = []
        for key in sorted(losses):
            record = losses[key]
            since = datetime.fromisoformat(record["since"]) if record["since"] else None
            reported = datetime.fromisoformat(record["reported_at"])
            start = since if since is not None else reported
            retries = _since(duplicates.get(record["app"], []), start)
            late = _since(unanswered.get(record["app"], []), start)
            out.append(
                loss_warning(
                    record["app"],
                    record["source"],
                    record["lost"],
                    since,
                    reported,
                    len(retries),
                    retries[-1].isoformat() if retries else None,
                    reports=record["reports"],
                    unanswered=len(late),
                )
            )
        return out


def _since(times: list[str], start: datetime) -> list[datetime]:
    """The ISO ``times`` at or after ``start``, sorted."""
    return sorted(at for at in map(datetime.fromisoformat, times) if at >= start)


def _earliest(a: str | None, b: str | None) -> str | None:
    """The earlier of two ISO times (UTC), either may be None."""
    if a is None or b is None:
        return a or b
    return a if datetime.fromisoformat(a) <= datetime.fromisoformat(b) else b


def platform_warnings(found: list[RecentCode], window_s: float, label: Any) -> list[dict[str, Any]]:
    """The ``platform_error`` warnings of the recent codes of ``platform_events``, one per
    app and code; ``label`` turns a row's app into its /health label
    (drain.settings.Settings.app_label: never a token)."""
    merged: dict[tuple[str, str], tuple[int, datetime]] = {}
    for row in found:
        key = (label(row.app), row.code)
        count, last = merged.get(key, (0, row.last_at))
        merged[key] = (count + row.count, max(last, row.last_at))
    minutes = window_s / 60
    return [
        {
            "kind": "platform_error",
            "message": (
                f"Heroku reported Error {code} ({CODES.get(code, 'unknown code')}) {count} "
                f"times in the last {minutes:g} minutes for app {app} (last at "
                f"{last.astimezone(UTC).isoformat()}): see platform_events"
            ),
            "app": app,
            "code": code,
            "count": count,
            "last_at": last.astimezone(UTC).isoformat(),
            "window_s": window_s,
        }
        for (app, code), (count, last) in sorted(merged.items())
    ]


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
