"""The web layer's configuration (pure): time budgets and request bounds of ``drain serve``,
and the bounds on its connections (drain.web.connections).

Built from the settings (:meth:`drain.settings.Settings.web_config`), which hold every
default.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FD_RESERVED", "ConnectionLimits", "WebConfig"]

#: file descriptors a worker keeps for itself besides its database pool: stdio, the
#: listening socket, the event loop's own, the metrics files, the files /health reads
FD_RESERVED = 64


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


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """The per-connection and per-worker bounds (built by Settings.connection_limits).

    Attributes:
        max_head_bytes: largest request head, request line to blank line, in bytes
            (DRAIN_MAX_HEAD_BYTES); over it: 431 and close.
        head_timeout_s: seconds a connection may take to complete a request head
            (DRAIN_HEAD_TIMEOUT_S); then it is closed without an answer.
        max_connections: connections one worker holds open (DRAIN_MAX_CONNECTIONS), before
            the file-descriptor bound of drain.web.connections.connection_cap.
        reserved_fds: file descriptors the worker keeps for itself (:data:`FD_RESERVED`
            plus its database pool).
        retry_after_s: the ``Retry-After`` of the 503 at the cap (DRAIN_RETRY_AFTER_S).
    """

    max_head_bytes: int
    head_timeout_s: float
    max_connections: int
    reserved_fds: int
    retry_after_s: int
