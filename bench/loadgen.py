"""A load generator that posts to a drain the way Logplex does.

Logplex (Heroku's log router) delivers an HTTPS drain's logs as POSTs of about 100 KiB of
``application/logplex-1`` over several keep-alive connections, each POST with a unique
``Logplex-Frame-Id``, ``Logplex-Msg-Count`` and ``Logplex-Drain-Token``. It waits 5 s for
an answer; a time-out, a 5xx or a 429 is retried with the same frame id (at most twice),
any other 4xx drops the batch (Heroku Dev Center, "Log drains"; heroku/logplex
doc/README.http_drains.md).

To cost little CPU next to the service it measures, the generator sends precomputed
bytes over raw asyncio streams and parses only the status line and the headers it needs
(Content-Length, Transfer-Encoding, Connection, Retry-After). Only 127.0.0.1 is a target.

It posts Logplex bodies (:func:`prepare`) or the same lines as OTLP/HTTP log exports
(:func:`prepare_otlp`, ``POST /v1/logs``; an exporter retries a 429/502/503/504 with the
same bytes, as Logplex does with the same frame id).

Two modes:
- closed loop (``rate_rps=None``): every connection posts as soon as its last answer
  arrived; gives the peak rate.
- open loop (``rate_rps=R``): request k is due at ``t0 + k / R``, taken by whichever
  connection is free; latency is measured from the due time when the request had to wait
  for a connection (no coordinated omission), so an overloaded service shows it.

Every run is bounded by ``duration_s`` and by ``max_requests``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from bench.gen import DRAIN_TOKEN, Body, OtlpBody

#: Logplex's answer time-out, seconds.
TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True)
class Prepared:
    """A body turned into request bytes, waiting only for its frame id.

    ``head`` ends with ``Logplex-Frame-Id: `` so that a request is
    ``head + frame_id + b"\\r\\n\\r\\n" + body``. With ``body_id_at`` (OTLP, whose ledger
    key is a digest of the body: :func:`prepare_otlp`), the frame id also replaces the
    placeholder of its length at that offset of the body, so each request's body differs.
    """

    head: bytes
    body: bytes
    events: int
    frames: int
    body_id_at: int | None = None

    def body_for(self, frame_id: bytes) -> bytes:
        """The body of the request that carries ``frame_id``."""
        at = self.body_id_at
        if at is None:
            return self.body
        return self.body[:at] + frame_id + self.body[at + len(frame_id) :]


def prepare(
    bodies: Sequence[Body], *, host: str, port: int, drain_token: str = DRAIN_TOKEN
) -> list[Prepared]:
    """Precompute the request bytes for each body (headers as Logplex sends them)."""
    out = []
    for b in bodies:
        head = (
            f"POST /logs HTTP/1.1\r\n"
            f"Host: {host}:{port}\r\n"
            f"Content-Type: application/logplex-1\r\n"
            f"Logplex-Msg-Count: {b.frames}\r\n"
            f"Logplex-Drain-Token: {drain_token}\r\n"
            f"User-Agent: Logplex/v72\r\n"
            f"Content-Length: {len(b.body)}\r\n"
            f"Logplex-Frame-Id: "
        ).encode("ascii")
        out.append(Prepared(head=head, body=b.body, events=len(b.events), frames=b.frames))
    return out


def prepare_otlp(bodies: Sequence[OtlpBody], *, host: str, port: int) -> list[Prepared]:
    """Precompute OTLP/HTTP requests (``POST /v1/logs``, binary protobuf, as the OpenTelemetry
    exporters send them); the frame id goes in an ``X-Bench-Id`` header, which the drain
    ignores, and into the body's placeholder (its ledger key is the body's digest)."""
    out = []
    for b in bodies:
        head = (
            f"POST /v1/logs HTTP/1.1\r\n"
            f"Host: {host}:{port}\r\n"
            f"Content-Type: application/x-protobuf\r\n"
            f"User-Agent: OTel-OTLP-Exporter-Python/bench\r\n"
            f"Content-Length: {len(b.body)}\r\n"
            f"X-Bench-Id: "
        ).encode("ascii")
        out.append(
            Prepared(head=head, body=b.body, events=b.events, frames=b.records, body_id_at=b.id_at)
        )
    return out


@dataclass(slots=True)
class Result:
    """What one load run did. Times in seconds, sizes in bytes.

    ``latencies_s`` holds one entry per answered attempt (2xx or not). ``acked_frame_ids``
    are the frame ids answered 2xx; ``unknown_frame_ids`` are those whose last attempt timed
    out or broke, so they may or may not have been committed.
    """

    started_at: float = 0.0
    ended_at: float = 0.0
    requests_sent: int = 0
    acked: int = 0
    acked_events: int = 0
    acked_body_bytes: int = 0
    status_counts: dict[int, int] = field(default_factory=dict)
    retry_after_503: int = 0
    timeouts: int = 0
    conn_errors: int = 0
    retries: int = 0
    gave_up: int = 0
    latencies_s: list[float] = field(default_factory=list)
    acked_latencies_s: list[float] = field(default_factory=list)
    acked_frame_ids: list[str] = field(default_factory=list)
    unknown_frame_ids: list[str] = field(default_factory=list)
    frame_events: dict[str, int] = field(default_factory=dict)
    max_lateness_s: float = 0.0

    @property
    def duration_s(self) -> float:
        return max(self.ended_at - self.started_at, 1e-9)


class _Conn:
    """One keep-alive HTTP/1.1 connection to 127.0.0.1."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def post(self, p: Prepared, frame_id: bytes) -> tuple[int, dict[bytes, bytes]]:
        """Send one request, read one answer; return (status, lower-cased headers)."""
        if self.writer is None:
            await self.open()
        assert self.reader is not None and self.writer is not None
        self.writer.writelines((p.head, frame_id, b"\r\n\r\n", p.body_for(frame_id)))
        await self.writer.drain()
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        headers: dict[bytes, bytes] = {}
        for line in lines[1:]:
            if b":" in line:
                k, v = line.split(b":", 1)
                headers[k.strip().lower()] = v.strip()
        if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
            for _ in range(10_000):  # bounded: answers are small
                size_line = await self.reader.readuntil(b"\r\n")
                size = int(size_line.split(b";")[0], 16)
                await self.reader.readexactly(size + 2)
                if size == 0:
                    break
        else:
            n = int(headers.get(b"content-length", b"0"))
            if n:
                await self.reader.readexactly(n)
        if headers.get(b"connection", b"").lower() == b"close":
            self.close()
        return status, headers


async def run_load(
    prepared: Sequence[Prepared],
    *,
    host: str = "127.0.0.1",
    port: int,
    connections: int = 32,
    duration_s: float = 10.0,
    max_requests: int = 100_000,
    rate_rps: float | None = None,
    retries: int = 0,
    timeout_s: float = TIMEOUT_S,
    frame_prefix: str | None = None,
) -> Result:
    """Post the prepared bodies round-robin until ``duration_s`` or ``max_requests``.

    Args:
        prepared: from :func:`prepare`.
        connections: keep-alive connections (Logplex opens several per drain).
        duration_s: no new request starts after this many seconds.
        max_requests: no more than this many distinct batches (retries not counted).
        rate_rps: None for closed loop; else the open-loop schedule in requests/s.
        retries: Logplex-style retries of a batch after a time-out, 5xx or 429, with the
            same frame id (Logplex: 2); 0 to count the failure and move on.
        timeout_s: per attempt, from the first byte sent to the whole answer read.
        frame_prefix: frame ids are ``prefix + counter``; a random prefix by default.
    """
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError("the load generator only targets this machine (127.0.0.1)")
    prefix = frame_prefix if frame_prefix is not None else os.urandom(6).hex().upper()
    res = Result()
    counter = itertools.count()
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    deadline = t0 + duration_s
    res.started_at = time.monotonic()

    async def one_batch(conn: _Conn, k: int, due: float) -> None:
        p = prepared[k % len(prepared)]
        fid_s = f"{prefix}{k:012X}"
        fid = fid_s.encode("ascii")
        res.requests_sent += 1
        maybe_committed = False  # an attempt timed out or broke: its fate is unknown
        for attempt in range(retries + 1):
            if attempt:
                res.retries += 1
            start = min(due, loop.time()) if attempt == 0 else loop.time()
            try:
                async with asyncio.timeout(timeout_s):
                    status, headers = await conn.post(p, fid)
            except TimeoutError:
                res.timeouts += 1
                conn.close()
                maybe_committed = True
                wait = 0.2
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
                res.conn_errors += 1
                conn.close()
                maybe_committed = True
                wait = 0.2
            else:
                lat = loop.time() - start
                res.latencies_s.append(lat)
                res.status_counts[status] = res.status_counts.get(status, 0) + 1
                if 200 <= status < 300:
                    res.acked += 1
                    res.acked_events += p.events
                    res.acked_body_bytes += len(p.body)
                    res.acked_latencies_s.append(lat)
                    res.acked_frame_ids.append(fid_s)
                    res.frame_events[fid_s] = p.events
                    return
                ra = headers.get(b"retry-after")
                if status == 503 and ra is not None:
                    res.retry_after_503 += 1
                if not (status >= 500 or status == 429):
                    break  # any other 4xx: Logplex drops the batch for good
                wait = min(float(ra), 2.0) if ra and ra.isdigit() else 0.2
            if attempt < retries:
                await asyncio.sleep(wait)
        res.gave_up += 1
        if maybe_committed:
            res.unknown_frame_ids.append(fid_s)
            res.frame_events[fid_s] = p.events

    async def worker() -> None:
        conn = _Conn(host, port)
        try:
            for _ in range(max_requests):  # bounded
                if loop.time() >= deadline:
                    return
                k = next(counter)
                if k >= max_requests:
                    return
                due = loop.time()
                if rate_rps is not None:
                    due = t0 + k / rate_rps
                    if due >= deadline:
                        return
                    delay = due - loop.time()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    else:
                        res.max_lateness_s = max(res.max_lateness_s, -delay)
                await one_batch(conn, k, due)
        finally:
            conn.close()

    await asyncio.gather(*(worker() for _ in range(connections)))
    res.ended_at = time.monotonic()
    return res


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile, q in [0, 100]; NaN for no values."""
    if not values:
        return float("nan")
    s = sorted(values)
    k = max(0, min(len(s) - 1, round(q / 100 * len(s) + 0.5) - 1))
    return s[k]


async def _main() -> None:
    """Drive a drain already running: ``python -m bench.loadgen PORT [SECONDS] [RATE]``."""
    import sys
    from datetime import UTC, datetime

    from bench.gen import make_bodies

    port = int(sys.argv[1])
    duration = float(sys.argv[2]) if len(sys.argv) > 2 else 5.0
    rate = float(sys.argv[3]) if len(sys.argv) > 3 else None
    bodies = make_bodies(32, now=datetime.now(UTC))
    r = await run_load(
        prepare(bodies, host="127.0.0.1", port=port), port=port, duration_s=duration, rate_rps=rate
    )
    print(
        f"{r.acked} acked ({r.acked_events} events, {r.acked_events / r.duration_s:,.0f} events/s, "
        f"{r.acked_body_bytes / r.duration_s / 1e6:.1f} MB/s) in {r.duration_s:.1f} s; "
        f"status {r.status_counts}, timeouts {r.timeouts}, errors {r.conn_errors}; "
        f"p50 {percentile(r.latencies_s, 50) * 1e3:.1f} ms p99 "
        f"{percentile(r.latencies_s, 99) * 1e3:.1f} ms"
    )


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main())
