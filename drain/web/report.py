"""One report per POST /logs or OTLP request, and the one place that turns it into telemetry.

The handlers (drain.web.ingest for Logplex, drain.web.otlp for OTLP) fill a
:class:`BatchReport` as the request goes: who posted, the decoded body's ledger, the
writer's result, the upstream loss, the answer.
:meth:`Telemetry.record` then emits everything the batch says, once: its log line
(drain.logs), the ``/health`` counters (drain.web.health) and the Prometheus metrics
(drain.web.metrics). No other code counts a batch, so the three always agree (as Vector's
internal events do: one struct emits its log line and its counter).

The log line (``logger: drain.batch``, info for 2xx, warning otherwise) never holds body
bytes, a credential or DATABASE_URL; header values are cut to 200 characters.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from drain.decode.loss import BatchLoss
from drain.logs import batch_logger
from drain.records import Ledger, WriteResult
from drain.settings import Settings
from drain.web.health import Counters, LossMemory
from drain.web.metrics import Metrics

__all__ = ["BatchReport", "Refusal", "Telemetry"]

#: longest header value copied into a log line, characters
_MAX_LOGGED_HEADER = 200


def _short(value: str | None) -> str | None:
    return None if value is None else value[:_MAX_LOGGED_HEADER]


class Refusal:
    """Why a request was refused before its body was stored, for the counters that name
    it (``/health``'s ``too_many_frames``, ``insecure_refused``)."""

    TOO_MANY_FRAMES = "too_many_frames"
    INSECURE = "insecure"
    BODY_BUDGET = "body_budget"


@dataclass(slots=True)
class BatchReport:
    """What one POST /logs (or OTLP request) did. Never holds body bytes.

    Fields:
        request_id: Heroku router's ``X-Request-Id`` (log-shuttle sends one too).
        started: ``time.perf_counter()`` when the request arrived.
        status: the HTTP status answered (500 when the handler raised).
        drain_token / frame_id: the request's identity (once read).
        app: the app the batch came from (drain.settings.Settings.app_for).
        ledger: the decoded body's counts, when it was decoded.
        result: the writer's answer, when the batch was written.
        loss: what the batch says Heroku lost upstream, when it says anything.
        received_at: when the body was received, UTC.
        refusal: a :class:`Refusal` value, when the request was refused for one.
        msg_count_invalid: Logplex-Msg-Count was not a non-negative integer (ignored).
        signal: the OTLP signal (``logs``, ``metrics``, ``traces``) of an OTLP request;
            None for POST /logs.
        not_stored: data points or spans an OTLP metrics or traces request carried, which
            the drain counts and does not store.
        unanswered: the batch was committed after its sender had closed the connection (it
            stopped waiting: log-shuttle's ``-timeout``), so the sender counts it as failed.
    """

    request_id: str | None
    started: float = field(default_factory=time.perf_counter)
    status: int = 0
    drain_token: str | None = None
    frame_id: str | None = None
    app: str | None = None
    ledger: Ledger | None = None
    result: WriteResult | None = None
    loss: BatchLoss | None = None
    received_at: datetime | None = None
    refusal: str | None = None
    msg_count_invalid: bool = False
    signal: str | None = None
    not_stored: int = 0
    unanswered: bool = False

    @property
    def logged_request_id(self) -> str | None:
        """The request id as logged (cut to 200 characters)."""
        return _short(self.request_id)

    def log_fields(self) -> dict[str, Any]:
        """The fields of the batch's log line."""
        fields: dict[str, Any] = {
            "request_id": _short(self.request_id),
            "drain_token": _short(self.drain_token),
            "frame_id": _short(self.frame_id),
            "app": _short(self.app),
            "status": self.status,
            "duration_ms": round((time.perf_counter() - self.started) * 1000, 2),
        }
        if self.signal is not None:
            fields["signal"] = self.signal
            if self.not_stored:
                fields["not_stored"] = self.not_stored
        ledger = self.ledger
        if ledger is not None:
            result = self.result
            fields.update(
                body_bytes=ledger.body_bytes,
                frames=ledger.frames,
                events=ledger.events,
                typed_lines=ledger.typed,
                events_stored=result.events_stored if result else 0,
                rows_stored=sum(result.stored.values()) - result.quarantined if result else 0,
                quarantined=result.quarantined if result else 0,
                not_events=ledger.not_events,
                duplicate=bool(result and result.duplicate),
                lost_upstream=self.loss.lost if self.loss else 0,
            )
            if self.unanswered:
                fields["unanswered"] = True
            if ledger.msg_count_mismatch:
                fields["msg_count_header"] = ledger.msg_count_header
        return fields


class Telemetry:
    """Where a :class:`BatchReport` goes: the log, ``/health``'s counters, Prometheus, and
    the upstream losses and retries (shared by the workers, for ``/health``'s warnings).

    One per app (``DrainState.telemetry``); nothing module-level.
    """

    def __init__(
        self, counters: Counters, metrics: Metrics, losses: LossMemory, settings: Settings
    ) -> None:
        self.counters = counters
        self.metrics = metrics
        self.losses = losses
        self._settings = settings
        self._log = batch_logger()

    def count_refusal(self, refusal: str | None) -> None:
        """Count a request refused for a :class:`Refusal` (POST /logs, or a scrape of
        /metrics over plain HTTP); None counts nothing."""
        if refusal == Refusal.TOO_MANY_FRAMES:
            self.counters.too_many_frames += 1
        elif refusal == Refusal.INSECURE:
            self.counters.insecure_refused += 1
        elif refusal == Refusal.BODY_BUDGET:
            self.counters.body_budget_refused += 1

    def record(self, report: BatchReport) -> None:
        """Emit everything ``report`` says, once (see the module docstring)."""
        counters, metrics = self.counters, self.metrics
        status = report.status
        counters.requests_by_status[status] += 1
        metrics.requests.labels(str(status)).inc()
        self.count_refusal(report.refusal)
        if report.msg_count_invalid:
            counters.msg_count_invalid += 1
        if report.signal is not None:
            counters.record_otlp(report.signal, report.not_stored)
            metrics.record_otlp(report.signal, status, report.not_stored)
        app = self._settings.app_label(report.app or "")
        if report.ledger is not None:
            counters.record_decoded(report.ledger, app)
            metrics.record_decoded(report.ledger, app)
            if report.result is not None:
                counters.record_written(report.ledger, report.result, app)
                metrics.record_written(report.ledger, report.result, app)
        loss = report.loss
        if loss is not None and loss.lost and report.received_at is not None:
            metrics.record_loss(self._settings.token_label(report.drain_token), loss)
            self.losses.remember_loss(app, loss, report.received_at)
        result = report.result
        if result is not None and result.duplicate and report.received_at is not None:
            self.losses.remember_duplicate(app, report.received_at)
        if report.unanswered and report.received_at is not None:
            counters.unanswered += 1
            metrics.unanswered.inc()
            self.losses.remember_unanswered(app, report.received_at)
        fields = report.log_fields()
        if status < 400:
            self._log.info("batch", **fields)
        else:
            self._log.warning("batch", **fields)
