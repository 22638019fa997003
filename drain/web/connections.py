"""Bounds on each HTTP connection before its request reaches the app: the size of a request
head, the time to send it, and the connections one worker holds open.

uvicorn's httptools protocol (``uvicorn/protocols/http/httptools_impl.py``) has none of
them: it feeds every byte it reads to the parser, which keeps a header's bytes until the
header ends (``httptools/parser/parser.pyx``, ``_on_header_value``: ``+=`` on ``bytes``,
so a long header costs time quadratic in its length); its only timer is the keep-alive one,
armed after a response; and it accepts every connection the kernel hands it, until the
process runs out of file descriptors (then uvloop accepts and closes each new connection
at once, ``/health`` included, and nothing is logged). uvicorn's ``limit_concurrency``
answers 503 to *requests* once that many connections are open, idle ones included, so it
would let idle connections deny every request.

:class:`GuardedHttpToolsProtocol` is that protocol with the bounds added
(``drain serve`` passes it to uvicorn as ``http=``, drain.web.master). Each connection:

- **head size**: the bytes of a request head (request line, headers, the blank line) are
  counted before they reach the parser (those of a pipelined head that follows a body in
  the same read, from the next read on); past ``max_head_bytes`` (DRAIN_MAX_HEAD_BYTES) the
  connection is answered ``431 Request Header Fields Too Large`` (RFC 6585 §5) with
  ``Connection: close``, and the rest of the head is never parsed: the work is linear in
  the bytes read, the memory at most ``max_head_bytes`` per connection;
- **head time-out**: a connection that has not completed its first request head within
  ``head_timeout_s`` of being accepted (DRAIN_HEAD_TIMEOUT_S), or a later head within that
  time of its first byte, is closed without an answer: what a client sees on a time-out of
  its own, which Logplex and log-shuttle retry (a 4xx would make Logplex drop the batch;
  docs/http.md). Between requests uvicorn's keep-alive time-out (5 s) applies;
- **an answer before the body**: when the app has answered before the request body
  arrived (401, 413, ...), the connection is closed instead of kept alive, so a body
  trickled after a refusal does not hold it open;
- **after a refusal** (431, or the body case above) the write side is shut
  (FIN after the answer) and what the client still sends is read and dropped for up to
  :data:`LINGER_S` seconds or :data:`LINGER_BYTES` bytes, so the client reads the answer
  rather than a connection reset; then the connection is closed.

And per worker, :class:`ConnectionGuard` (one per app, handed to the protocol in the
lifespan state under :data:`GUARD_STATE_KEY`) holds the connections open:

- **connection cap** (:func:`connection_cap`: DRAIN_MAX_CONNECTIONS, at most the file
  descriptors the process may open minus those it needs for itself): a new connection at
  the cap closes the connection that has waited longest for a request head (an idle
  keep-alive connection, or one still sending its head), so new clients, ``/health``
  among them, are served while an attacker's idle connections are not; when every open
  connection has a request in progress, the new one is answered ``503`` with
  ``Retry-After`` and ``Connection: close``.

Each early close is counted in ``drain_connections_closed_total{reason}`` (reasons:
:data:`REASONS`), and logged at most once a minute per reason with the count since the
previous line; ``drain_connections_open`` is the number open. docs/limits.md lists every
bound.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
from collections.abc import Callable
from typing import Any, Protocol

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from drain.web.config import ConnectionLimits

__all__ = [
    "GUARD_STATE_KEY",
    "LINGER_BYTES",
    "LINGER_S",
    "LOG_EVERY_S",
    "REASONS",
    "ConnectionGuard",
    "ConnectionObserver",
    "GuardedHttpToolsProtocol",
    "connection_cap",
    "fd_soft_limit",
]

log = logging.getLogger("drain.web.connections")

#: key of the :class:`ConnectionGuard` in the lifespan state (drain.web.app's lifespan)
GUARD_STATE_KEY = "drain.connection_guard"
#: after a refusal, the longest the connection is kept to let the client read the answer
LINGER_S = 2.0
#: ... and the most bytes read and dropped meanwhile
LINGER_BYTES = 1 << 20
#: one log line per reason at most this often (the metric counts every one)
LOG_EVERY_S = 60.0

#: why a connection was closed before a request was answered
REASON_CAP = "connection_cap"  # at the cap, no idle connection to close: 503
REASON_EVICTED = "idle_evicted"  # at the cap: the longest-idle connection, closed
REASON_HEAD_TIMEOUT = "head_timeout"
REASON_HEAD_TOO_LARGE = "head_too_large"
REASONS = (REASON_CAP, REASON_EVICTED, REASON_HEAD_TIMEOUT, REASON_HEAD_TOO_LARGE)

#: what each early close is, in a log line: (singular, plural)
_WHAT = {
    REASON_CAP: (
        "new connection refused with 503 at the connection cap",
        "new connections refused with 503 at the connection cap",
    ),
    REASON_EVICTED: (
        "connection waiting for a request head closed at the connection cap",
        "connections waiting for a request head closed at the connection cap",
    ),
    REASON_HEAD_TIMEOUT: (
        "connection closed for not completing a request head within DRAIN_HEAD_TIMEOUT_S",
        "connections closed for not completing a request head within DRAIN_HEAD_TIMEOUT_S",
    ),
    REASON_HEAD_TOO_LARGE: (
        "request refused with 431: its head is over DRAIN_MAX_HEAD_BYTES",
        "requests refused with 431: their heads are over DRAIN_MAX_HEAD_BYTES",
    ),
}


def _log_line(reason: str, count: int, span_s: float | None, cap: int) -> str:
    """The text of a guard's log line (no client data in it)."""
    what = _WHAT[reason][0 if count == 1 else 1]
    when = "the first since start" if span_s is None else f"in the last {span_s:.0f} s"
    return (
        f"{count} {what} ({when}; this worker holds at most {cap} connections: "
        "DRAIN_MAX_CONNECTIONS; every one is counted in drain_connections_closed_total, "
        "docs/limits.md)"
    )


def fd_soft_limit() -> int:
    """This process's soft RLIMIT_NOFILE (``ulimit -n``); a large number when unlimited."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return 1 << 30 if soft == resource.RLIM_INFINITY else int(soft)


def connection_cap(max_connections: int, fd_limit: int, reserved_fds: int) -> int:
    """Connections one worker may hold: ``max_connections``, and at most ``fd_limit`` (the
    soft RLIMIT_NOFILE) minus ``reserved_fds``, so that accepting never runs the process out
    of descriptors (at least 1). Pure."""
    return max(1, min(max_connections, fd_limit - reserved_fds))


class ConnectionObserver(Protocol):
    """Where the guard reports (drain.web.metrics.Metrics implements it)."""

    def connection_closed(self, reason: str) -> None:
        """One connection closed early, for ``reason`` (one of :data:`REASONS`)."""

    def set_connections_open(self, count: int) -> None:
        """This worker's open connections."""


class _Guarded(Protocol):
    """What the guard needs of a connection (:class:`GuardedHttpToolsProtocol`)."""

    def evict(self) -> None: ...


class ConnectionGuard:
    """One worker's open connections, the cap on them, and the early-close accounting.

    Built once per app (drain.web.app.create_app) and handed to every connection's
    protocol through the lifespan state. Not thread-safe: the event loop's thread only.

    Args:
        limits: the bounds.
        observer: the metrics.
        fd_limit: the soft RLIMIT_NOFILE; default: this process's (:func:`fd_soft_limit`).
        clock: monotonic seconds, for the log lines' spacing.
    """

    def __init__(
        self,
        limits: ConnectionLimits,
        observer: ConnectionObserver,
        *,
        fd_limit: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limits = limits
        fds = fd_soft_limit() if fd_limit is None else fd_limit
        #: the connections this worker holds at most
        self.cap = connection_cap(limits.max_connections, fds, limits.reserved_fds)
        if self.cap < limits.max_connections:
            log.warning(
                "connection cap %d per worker, below DRAIN_MAX_CONNECTIONS %d: the file "
                "descriptor limit is %d (ulimit -n) and %d are kept for the worker itself",
                self.cap,
                limits.max_connections,
                fds,
                limits.reserved_fds,
            )
        self._observer = observer
        self._clock = clock
        self._open: set[_Guarded] = set()
        #: connections with no request in progress, the longest waiting first
        self._waiting: dict[_Guarded, None] = {}
        self._unlogged: dict[str, int] = dict.fromkeys(REASONS, 0)
        self._logged_at: dict[str, float | None] = dict.fromkeys(REASONS, None)
        self.closed_by_reason: dict[str, int] = dict.fromkeys(REASONS, 0)

    @property
    def open_count(self) -> int:
        """Connections open in this worker."""
        return len(self._open)

    def admit(self, conn: _Guarded) -> bool:
        """A new connection: True when it may stay (waiting for its head). At the cap the
        connection waiting longest is evicted to make room; when none is waiting, False
        (the caller answers 503 and closes)."""
        if len(self._open) >= self.cap:
            if not self._waiting:
                self.closed_early(REASON_CAP)
                return False
            oldest = next(iter(self._waiting))
            self.forget(oldest)
            self.closed_early(REASON_EVICTED)
            oldest.evict()
        self._open.add(conn)
        self._waiting[conn] = None
        self._observer.set_connections_open(len(self._open))
        return True

    def busy(self, conn: _Guarded) -> None:
        """``conn`` has a complete request head: it is not evictable until answered."""
        self._waiting.pop(conn, None)

    def idle(self, conn: _Guarded) -> None:
        """``conn`` was answered (and waits for its next request, or lingers after a
        refusal): evictable, newest last."""
        if conn in self._open:
            self._waiting.pop(conn, None)
            self._waiting[conn] = None

    def forget(self, conn: _Guarded) -> None:
        """``conn`` is closed (or closing); idempotent."""
        self._waiting.pop(conn, None)
        if conn in self._open:
            self._open.discard(conn)
            self._observer.set_connections_open(len(self._open))

    def closed_early(self, reason: str) -> None:
        """Count one early close for ``reason``; log a line at most once a
        :data:`LOG_EVERY_S` per reason, with the count since the previous line."""
        self.closed_by_reason[reason] += 1
        self._observer.connection_closed(reason)
        self._unlogged[reason] += 1
        now = self._clock()
        last = self._logged_at[reason]
        if last is None or now - last >= LOG_EVERY_S:
            span = None if last is None else now - last
            log.warning(_log_line(reason, self._unlogged[reason], span, self.cap))
            self._logged_at[reason] = now
            self._unlogged[reason] = 0


def _plain_response(status: bytes, body: bytes, extra: bytes = b"") -> bytes:
    return (
        b"HTTP/1.1 " + status + b"\r\ncontent-type: text/plain; charset=utf-8\r\n"
        b"content-length: "
        + str(len(body)).encode("ascii")
        + b"\r\n"
        + extra
        + b"connection: close\r\n\r\n"
        + body
    )


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with drain's bounds on heads and connections (module
    docstring). Needs an app whose lifespan puts a :class:`ConnectionGuard` in the state
    under :data:`GUARD_STATE_KEY` (drain.web.app.create_app's does).

    Raises:
        RuntimeError: (when a connection is made) the lifespan state has no guard.
    """

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        guard = app_state.get(GUARD_STATE_KEY)
        if not isinstance(guard, ConnectionGuard):
            raise RuntimeError(
                f"no {GUARD_STATE_KEY} in the lifespan state: serve an app built by "
                "drain.web.app.create_app, with lifespan on"
            )
        self._guard = guard
        self._limits = guard.limits
        self._in_head = True  # the next bytes read belong to a request head
        self._head_bytes = 0  # bytes of the current head read so far
        self._heads_done = 0  # request heads completed on this connection
        self._head_timer: asyncio.TimerHandle | None = None
        self._lingering = False  # a refusal was written: drop what the client still sends
        self._dropped = 0
        self._linger_timer: asyncio.TimerHandle | None = None

    # ------------------------------------------------------------------ connection

    def connection_made(  # type: ignore[override]
        self, transport: asyncio.Transport
    ) -> None:
        super().connection_made(transport)
        if not self._guard.admit(self):
            retry = str(self._limits.retry_after_s).encode("ascii")
            transport.write(
                _plain_response(
                    b"503 Service Unavailable",
                    b"too many connections: retry later\n",
                    b"retry-after: " + retry + b"\r\n",
                )
            )
            transport.close()  # at once: a descriptor is what is short
            return
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._guard.forget(self)
        self._cancel_head_timer()
        if self._linger_timer is not None:
            self._linger_timer.cancel()
            self._linger_timer = None
        super().connection_lost(exc)

    def evict(self) -> None:
        """Close this connection (it waits for a head) to make room for a new one."""
        self._cancel_head_timer()
        self.transport.close()

    # ------------------------------------------------------------------ reading

    def data_received(self, data: bytes) -> None:
        if self._lingering:
            self._dropped += len(data)
            if self._dropped > LINGER_BYTES:
                self.transport.close()
            return
        if not self._in_head:
            super().data_received(data)
            return
        if self._head_timer is None and not self._request_in_progress():
            self._arm_head_timer()  # the first byte of a later request's head
        room = self._limits.max_head_bytes - self._head_bytes
        if len(data) <= room:
            self._head_bytes += len(data)
            super().data_received(data)  # may complete the head; the rest is body
            return
        self._head_bytes += room
        heads_before = self._heads_done
        super().data_received(data[:room])
        if self.transport.is_closing():
            return  # the parser refused the head (400)
        if self._heads_done == heads_before:
            self._refuse_head()  # max_head_bytes read and the head goes on
            return
        self.data_received(data[room:])  # the body, maybe a next head (counted anew)

    def on_headers_complete(self) -> None:
        self._heads_done += 1
        self._in_head = False
        self._head_bytes = 0
        self._cancel_head_timer()
        self._guard.busy(self)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head = True  # what follows is the next request's head

    def on_response_complete(self) -> None:
        pipelined = bool(self.pipeline)  # super() starts the next pipelined request
        super().on_response_complete()
        if self.transport.is_closing() or pipelined:
            return
        if not self._in_head:
            # answered before the request body was read (a refusal): nothing more of use
            self._linger()
            return
        self._guard.idle(self)
        if self._head_bytes and self._head_timer is None:
            self._arm_head_timer()  # the next head began while this request was answered

    def _should_upgrade(self) -> bool:
        """drain serves no WebSocket: an ``Upgrade`` header is ignored (RFC 9110 §7.8 lets
        a server ignore it) and the request is served as plain HTTP, so the connection
        never leaves this protocol and the guard's accounting."""
        return False

    def _unsupported_upgrade_warning(self) -> None:
        """uvicorn would log two warnings per request with an ``Upgrade`` header: a line
        any client could make the drain write at will. Nothing is logged."""

    def _request_in_progress(self) -> bool:
        return self.cycle is not None and not self.cycle.response_complete

    # ------------------------------------------------------------------ refusals

    def _refuse_head(self) -> None:
        self._guard.closed_early(REASON_HEAD_TOO_LARGE)
        limit = str(self._limits.max_head_bytes).encode("ascii")
        self.transport.write(
            _plain_response(
                b"431 Request Header Fields Too Large",
                b"request head over " + limit + b" bytes (DRAIN_MAX_HEAD_BYTES)\n",
            )
        )
        self._linger()

    def _linger(self) -> None:
        """Shut the write side (FIN after what was written), drop what the client still
        sends, close after :data:`LINGER_S` or :data:`LINGER_BYTES`. The connection still
        counts against the cap and, like an idle one, may be closed to admit a new one."""
        self._guard.idle(self)
        self._cancel_head_timer()
        self._lingering = True
        self.flow.resume_reading()
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self._linger_timer = self.loop.call_later(LINGER_S, self.transport.close)

    def _arm_head_timer(self) -> None:
        self._head_timer = self.loop.call_later(self._limits.head_timeout_s, self._head_timeout)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timeout(self) -> None:
        self._head_timer = None
        if self.transport.is_closing() or not self._in_head or self._request_in_progress():
            return
        self._guard.forget(self)
        self._guard.closed_early(REASON_HEAD_TIMEOUT)
        self.transport.close()
