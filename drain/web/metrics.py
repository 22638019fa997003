"""Prometheus metrics of the web service (prometheus-client), correct with several workers.

:class:`Metrics` holds every metric object of one app; :func:`drain.web.app.create_app` builds
one, and ``GET /metrics`` answers :meth:`Metrics.render` (text format 0.0.4).

Why the objects live in an instance and not in module globals: tests build many apps in
one process, and each must count from zero without "Duplicated timeseries" errors. So in
a single process each :class:`Metrics` registers its objects in its OWN
``CollectorRegistry`` (never the global ``REGISTRY``).

Several uvicorn workers (``drain serve --workers N``) are separate processes, and any of
them may answer a scrape. prometheus-client's multiprocess mode covers that: ``drain
serve`` creates a fresh private directory, exports it as ``PROMETHEUS_MULTIPROC_DIR``
before uvicorn spawns the workers, and removes it at exit
(:func:`multiprocess_directory`). Its constraints shape this module:

- the mode is chosen when ``prometheus_client`` is first imported (its value class is
  picked from the environment then), so the variable must be set before the workers
  start; :meth:`Metrics.create` refuses a half-configured process;
- every process writes its values to mmap files in the directory, and a scrape merges
  them (``MultiProcessCollector`` in a registry built for that scrape); metric objects
  are then created with ``registry=None``: registering them would serve only the
  answering worker's values;
- counters and histograms of exited workers stay in the sum (totals never go back);
  gauges use ``livesum`` / ``livemostrecent``, which only count live processes: a worker
  marks itself dead when its lifespan ends, and every scrape also marks the files of
  workers that vanished without a shutdown (killed; uvicorn restarts them);
- custom collectors and ``Info``/``Enum`` do not work across processes, so gauges are set
  from the code paths that change them.

The ``/health`` Counters (drain.web.health) stay per process, as they always were.

Metric names (all prefixed ``drain_``):

========================================  =========  =========================================
name                                      type       labels / meaning
========================================  =========  =========================================
drain_requests_total                      counter    ``status``: POST /logs and OTLP answers
drain_otlp_requests_total                 counter    ``signal`` (logs, metrics, traces),
                                                     ``status``: OTLP/HTTP answers
drain_batches_received_total              counter    ``app``: bodies decoded
drain_body_bytes_received_total           counter    their bytes, after gzip decoding
drain_frames_received_total               counter    syslog frames (and OTLP log records) in
                                                     those bodies
drain_otlp_not_stored_total               counter    ``signal``: data points (metrics) and
                                                     spans (traces) counted, not stored
drain_events_received_total               counter    frames decoded as ``@[tag] {json}`` events
drain_events_stored_total                 counter    ``app``: events committed (duplicates add
                                                     nothing)
drain_quarantined_lines_total             counter    ``reason``: lines committed to quarantine
drain_not_event_lines_total               counter    ``kind``: untagged, malformed_line,
                                                     logplex_error, excluded, out_of_window
drain_typed_lines_total                   counter    ``kind``: Heroku's own lines decoded into
                                                     typed rows (router, runtime_metrics,
                                                     addon_metrics, platform)
drain_rows_stored_total                   counter    ``table``: rows committed per data table
                                                     (raw_events, router_requests,
                                                     platform_metrics, platform_events)
drain_platform_events_total               counter    ``code``: platform events committed, by
                                                     Heroku error code (H10 ... L15, none,
                                                     other)
drain_duplicate_batches_total             counter    batches whose frame id was committed before
drain_unanswered_batches_total            counter    batches committed after their sender had
                                                     closed the connection (it counts them as
                                                     failed)
drain_msg_count_mismatches_total          counter    Logplex-Msg-Count differed from the frames
drain_commit_rows                         histogram  rows per COPY transaction (group commit)
drain_commit_duration_seconds             histogram  seconds per group write, ensure to COMMIT
drain_write_queue_events                  gauge      rows queued for the writer (sum of workers)
drain_write_queue_bytes                   gauge      bytes queued for the writer (sum of workers)
drain_database_errors_total               counter    ``class``: writer errors by class
                                                     (unavailable, retry, data, ...)
drain_partitions_ahead_days               gauge      days after today that have a partition
drain_upstream_lost_messages_total        counter    ``drain_token``, ``source`` (L10, L12,
                                                     L13): lines the senders reported lost
                                                     before the drain (drain.decode.loss)
drain_connections_open                    gauge      connections open (sum of workers)
drain_connections_closed_total            counter    ``reason``: connections closed before a
                                                     request was answered (connection_cap,
                                                     idle_evicted, head_timeout,
                                                     head_too_large: drain.web.connections)
drain_archive_failures_total              counter    ``table``, ``step`` (plan, write, verify,
                                                     drop): archive attempts that failed, as
                                                     the database records them (drain.archive)
========================================  =========  =========================================

Label values are bounded, whatever the senders put in their tokens or service names:
``app`` is a name DRAIN_APPS gives or ``other``; ``drain_token`` is a token DRAIN_TOKENS or
DRAIN_APPS lists, ``""`` for none, or ``other`` (drain.settings.Settings.app_label and
token_label). The other labels take values from drain's own enumerations (``signal`` from
drain.inputs.otlp.Signal).
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from drain.decode.loss import BatchLoss
from drain.decode.platform import code_label
from drain.records import QUARANTINE, Ledger, WriteResult

__all__ = ["CONTENT_TYPE", "MULTIPROC_ENV", "Metrics", "multiprocess_directory"]

#: the environment variable prometheus-client reads for multiprocess mode
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: Content-Type of GET /metrics: the classic text format, which every Prometheus reads
#: (drain's metric names need none of format 1.0.0's escaping)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: rows per group commit (DRAIN_FLUSH_MAX_EVENTS defaults to 5000)
COMMIT_ROWS_BUCKETS = (1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000)
#: seconds per group write
COMMIT_SECONDS_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

_LIVE_FILE = re.compile(r"^gauge_live\w+?_(\d+)\.db$")


class _ArchiveFailures(Collector):
    """``drain_archive_failures_total`` from the counts the database keeps (every worker
    reads the same numbers, so the answering worker's copy is the whole truth)."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str], int] = {}

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(
            "drain_archive_failures",
            "Archive attempts that failed, by table and step (drain.archive).",
            labels=["table", "step"],
        )
        for (table, step), count in sorted(self.counts.items()):
            family.add_metric([table, step], count)
        yield family


def _multiprocess_active() -> bool:
    """True when this process's prometheus-client writes to PROMETHEUS_MULTIPROC_DIR."""
    return bool(getattr(values.ValueClass, "_multiprocess", False))


class Metrics:
    """Every metric object of one app, and the scrape.

    Build with :meth:`create`. The ``record_*`` methods take the drain's own records
    (ledger, write result, loss) so that the web layer stays one line per step.
    """

    def __init__(self, registry: CollectorRegistry | None, directory: str | None) -> None:
        """Create the metric objects in ``registry`` (None: multiprocess mode, values go to
        the mmap files in ``directory``). Prefer :meth:`create`."""
        self._registry = registry
        self._directory = directory
        r = registry
        self.requests = Counter(
            "drain_requests", "POST /logs and OTLP answers by HTTP status.", ["status"], registry=r
        )
        self.otlp_requests = Counter(
            "drain_otlp_requests",
            "OTLP/HTTP answers by signal (logs, metrics, traces) and HTTP status.",
            ["signal", "status"],
            registry=r,
        )
        self.otlp_not_stored = Counter(
            "drain_otlp_not_stored",
            "Data points (metrics) and spans (traces) received over OTLP, counted, not stored.",
            ["signal"],
            registry=r,
        )
        self.batches = Counter(
            "drain_batches_received", "Bodies decoded, by app.", ["app"], registry=r
        )
        self.body_bytes = Counter(
            "drain_body_bytes_received", "Bytes of decoded bodies (after gzip).", registry=r
        )
        self.frames = Counter(
            "drain_frames_received", "Syslog frames (and OTLP log records) received.", registry=r
        )
        self.events_received = Counter(
            "drain_events_received", "Frames decoded as @[tag] {json} events.", registry=r
        )
        self.events_stored = Counter(
            "drain_events_stored", "Events committed to raw_events, by app.", ["app"], registry=r
        )
        self.quarantined = Counter(
            "drain_quarantined_lines",
            "Lines committed to the quarantine table, by reason.",
            ["reason"],
            registry=r,
        )
        self.not_events = Counter(
            "drain_not_event_lines", "Lines that are not events, by kind.", ["kind"], registry=r
        )
        self.typed_lines = Counter(
            "drain_typed_lines",
            "Heroku's own lines decoded into rows of the typed tables, by kind.",
            ["kind"],
            registry=r,
        )
        self.rows_stored = Counter(
            "drain_rows_stored",
            "Rows committed, by data table (duplicates add nothing).",
            ["table"],
            registry=r,
        )
        self.platform_events = Counter(
            "drain_platform_events",
            "Platform events committed to platform_events, by Heroku error code.",
            ["code"],
            registry=r,
        )
        self.duplicates = Counter(
            "drain_duplicate_batches",
            "Batches skipped because their (drain token, frame id) was already committed.",
            registry=r,
        )
        self.unanswered = Counter(
            "drain_unanswered_batches",
            "Batches committed after their sender had closed the connection (it counts them "
            "as failed; log-shuttle reports them lost, L13).",
            registry=r,
        )
        self.msg_count_mismatches = Counter(
            "drain_msg_count_mismatches",
            "Batches whose Logplex-Msg-Count differed from the frames found.",
            registry=r,
        )
        self.commit_rows = Histogram(
            "drain_commit_rows",
            "Rows (events and quarantine rows) per group-commit transaction.",
            buckets=COMMIT_ROWS_BUCKETS,
            registry=r,
        )
        self.commit_seconds = Histogram(
            "drain_commit_duration_seconds",
            "Seconds to write one group: partitions, ledger, COPY, COMMIT.",
            buckets=COMMIT_SECONDS_BUCKETS,
            registry=r,
        )
        self.queue_events = Gauge(
            "drain_write_queue_events",
            "Rows queued for the writer.",
            multiprocess_mode="livesum",
            registry=r,
        )
        self.queue_bytes = Gauge(
            "drain_write_queue_bytes",
            "Bytes queued for the writer.",
            multiprocess_mode="livesum",
            registry=r,
        )
        self.db_errors = Counter(
            "drain_database_errors",
            "Errors of the writer's database work, by class (drain.store.writer.ErrorClass).",
            ["class"],
            registry=r,
        )
        self.partitions_ahead = Gauge(
            "drain_partitions_ahead_days",
            "Days after today (UTC) that already have a raw_events partition.",
            multiprocess_mode="livemostrecent",
            registry=r,
        )
        self.upstream_lost = Counter(
            "drain_upstream_lost_messages",
            "Messages the senders reported lost before they reached the drain (L10, L12, L13).",
            ["drain_token", "source"],
            registry=r,
        )
        self._archive_failures = _ArchiveFailures()
        if r is not None:
            r.register(self._archive_failures)

        self.connections_open = Gauge(
            "drain_connections_open",
            "HTTP connections open.",
            multiprocess_mode="livesum",
            registry=r,
        )
        self.connections_closed = Counter(
            "drain_connections_closed",
            "HTTP connections closed before a request was answered, by reason "
            "(drain.web.connections).",
            ["reason"],
            registry=r,
        )

    @classmethod
    def create(cls) -> Metrics:
        """The metrics of one app: multiprocess when PROMETHEUS_MULTIPROC_DIR is set.

        Raises:
            RuntimeError: the variable is set but prometheus-client was imported before it
                was (or the reverse), so the processes would not agree.
        """
        directory = os.environ.get(MULTIPROC_ENV) or None
        if (directory is not None) != _multiprocess_active():
            raise RuntimeError(
                f"{MULTIPROC_ENV} must be set before prometheus_client is imported "
                "(drain serve does it before uvicorn starts its workers)"
            )
        if directory is not None:
            return cls(None, directory)
        return cls(CollectorRegistry(auto_describe=True), None)

    @property
    def multiprocess(self) -> bool:
        """True when values are shared through PROMETHEUS_MULTIPROC_DIR."""
        return self._directory is not None

    @property
    def directory(self) -> str | None:
        """The directory shared by the workers (PROMETHEUS_MULTIPROC_DIR), or None."""
        return self._directory

    # ----------------------------------------------------------------- recording

    def record_decoded(self, ledger: Ledger, app: str) -> None:
        """Count one decoded body of ``app`` (a bounded label: Settings.app_label), even if
        its write then fails and Logplex retries."""
        self.batches.labels(app).inc()
        self.body_bytes.inc(ledger.body_bytes)
        self.frames.inc(ledger.frames)
        self.events_received.inc(ledger.events)
        for kind, n in ledger.not_events_by_kind.items():
            self.not_events.labels(kind).inc(n)
        for kind, n in ledger.typed_by_kind.items():
            self.typed_lines.labels(kind).inc(n)
        if ledger.msg_count_mismatch:
            self.msg_count_mismatches.inc()

    def record_written(self, ledger: Ledger, result: WriteResult, app: str) -> None:
        """Count what the writer committed for one body of ``app`` (a bounded label)."""
        if result.duplicate:
            self.duplicates.inc()
            return
        self.events_stored.labels(app).inc(result.events_stored)
        for table, n in result.stored.items():
            if n and table != QUARANTINE:
                self.rows_stored.labels(table).inc(n)
        for code, n in ledger.platform_codes.items():
            self.platform_events.labels(code_label(code or None)).inc(n)
        for reason, n in ledger.quarantined_by_reason.items():
            self.quarantined.labels(reason).inc(n)
        if result.rejected_by_database:
            self.quarantined.labels("rejected_by_database").inc(result.rejected_by_database)

    def record_otlp(self, signal: str, status: int, not_stored: int) -> None:
        """Count one OTLP answer of ``signal`` (logs, metrics, traces) with HTTP ``status``,
        and the data points or spans it carried that are not stored."""
        self.otlp_requests.labels(signal, str(status)).inc()
        if not_stored:
            self.otlp_not_stored.labels(signal).inc(not_stored)

    def record_loss(self, token: str, loss: BatchLoss) -> None:
        """Count a batch's upstream loss by source (``loss.by_code``): Logplex's L10 lines,
        log-shuttle's drops as ``L12`` (its L12 lines or Logplex-Drop-Count, one loss) and
        its delivery failures as ``L13`` (its L13 lines or Logplex-Lost-Count). ``token``
        is a bounded label (Settings.token_label)."""
        for source, lost in loss.by_code.items():
            self.upstream_lost.labels(token, source).inc(lost)

    def flushed(self, rows: int, batches: int, duration_s: float) -> None:
        """Writer observer: one group committed (drain.store.writer.WriterObserver)."""
        self.commit_rows.observe(rows)
        self.commit_seconds.observe(duration_s)

    def database_error(self, error_class: str) -> None:
        """Writer observer: one database error of ``error_class`` (ErrorClass value)."""
        self.db_errors.labels(error_class).inc()

    def set_archive_failures(self, counts: dict[tuple[str, str], int]) -> None:
        """The archive's failed attempts by (table, step), read from the database."""
        self._archive_failures.counts = dict(counts)

    def set_queue(self, events: int, size_bytes: int) -> None:
        """This process's write-queue depth, rows and bytes."""
        self.queue_events.set(events)
        self.queue_bytes.set(size_bytes)

    def connection_closed(self, reason: str) -> None:
        """Connection guard observer: one connection closed early, for ``reason``
        (drain.web.connections.REASONS)."""
        self.connections_closed.labels(reason).inc()

    def set_connections_open(self, count: int) -> None:
        """Connection guard observer: this process's open connections."""
        self.connections_open.set(count)

    # ----------------------------------------------------------------- scrape

    def render(self) -> bytes:
        """The Prometheus text exposition of every worker's values (or this process's)."""
        if self._directory is None:
            assert self._registry is not None
            return generate_latest(self._registry)
        mark_dead_workers(self._directory)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=self._directory)  # type: ignore[no-untyped-call]
        registry.register(self._archive_failures)
        return generate_latest(registry)

    def process_exiting(self) -> None:
        """Drop this process's live gauges from the merged view (lifespan shutdown)."""
        if self._directory is not None:
            multiprocess.mark_process_dead(os.getpid(), self._directory)  # type: ignore[no-untyped-call]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def mark_dead_workers(directory: str) -> list[int]:
    """Remove the live-gauge files of processes that no longer exist; return their pids."""
    dead = set()
    for path in glob.glob(os.path.join(directory, "gauge_live*_*.db")):
        match = _LIVE_FILE.match(os.path.basename(path))
        if match is not None and not _alive(int(match.group(1))):
            dead.add(int(match.group(1)))
    for pid in sorted(dead):
        multiprocess.mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]
    return sorted(dead)


@contextlib.contextmanager
def multiprocess_directory(workers: int) -> Iterator[str | None]:
    """For ``drain serve``: with more than one worker, a fresh private directory exported as
    PROMETHEUS_MULTIPROC_DIR for the workers (and removed at exit); with one, nothing
    (the worker runs in this process and keeps its own registry).

    Yields the directory, or None.
    """
    if workers <= 1:
        yield None
        return
    directory = tempfile.mkdtemp(prefix="drain-metrics-")
    previous = os.environ.get(MULTIPROC_ENV)
    os.environ[MULTIPROC_ENV] = directory
    try:
        yield directory
    finally:
        if previous is None:
            os.environ.pop(MULTIPROC_ENV, None)
        else:
            os.environ[MULTIPROC_ENV] = previous
        shutil.rmtree(Path(directory), ignore_errors=True)
