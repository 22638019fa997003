"""The web layer's configuration (pure): time budgets and request bounds of ``drain serve``.

Built from the settings (:meth:`drain.settings.Settings.web_config`), which hold every
default.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["WebConfig"]


@dataclass(frozen=True, slots=True)
class WebConfig:
    """How the web app answers and shuts down. Times are seconds, sizes bytes.

    Attributes:
        max_body_bytes: largest body after gzip decoding (DRAIN_MAX_BODY_BYTES).
        body_budget_bytes: bytes of bodies this worker reads and decodes at once: its share
            of DRAIN_BODY_BUDGET_BYTES, at least one body of ``max_body_bytes``
            (drain.web.body.BodyBudget).
        body_timeout_s: time allowed to receive a whole body (DRAIN_BODY_TIMEOUT_S).
        max_id_header_bytes: longest Logplex-Frame-Id / X-Request-Id / Logplex-Drain-Token
            (DRAIN_MAX_ID_HEADER_BYTES); longer: 400.
        write_wait_s: time a request waits for its batch to commit before answering 503
            (DRAIN_WRITE_WAIT_S).
        retry_after_s: the ``Retry-After`` of a 503 for an unreachable database or a
            closing writer (DRAIN_RETRY_AFTER_S).
        decode_in_thread_bytes: bodies at least this large are decoded in a worker thread
            so that the event loop keeps answering meanwhile (DRAIN_DECODE_IN_THREAD_BYTES).
        probe_timeout_s: bound on each database probe of ``/health`` and ``/metrics``
            (DRAIN_HEALTH_PROBE_TIMEOUT_S).
        writer_close_timeout_s: time the writer may take at shutdown to commit what is
            queued (DRAIN_SHUTDOWN_WRITER_S).
        pool_close_timeout_s: time the pool may take to close after the writer (then it is
            terminated) (DRAIN_SHUTDOWN_POOL_S).
    """

    max_body_bytes: int
    body_budget_bytes: int
    body_timeout_s: float
    max_id_header_bytes: int
    write_wait_s: float
    retry_after_s: int
    decode_in_thread_bytes: int
    probe_timeout_s: float
    writer_close_timeout_s: float
    pool_close_timeout_s: float
