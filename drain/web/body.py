"""Read a request body as a stream, with a byte cap, a time limit and gzip decoding.

Logplex posts with ``Content-Length`` (bodies of ~100 KiB); log-shuttle posting directly
sends ``Transfer-Encoding: chunked`` and, with ``-gzip``, ``Content-Encoding: gzip``. Both
arrive here as a stream of chunks (Starlette's ``request.stream()``); nothing is read whole
before its size is known to be acceptable.

Refusals are :class:`~drain.errors.BodyError` with the status the web layer answers:

- ``413`` a ``Content-Length`` over the cap (before reading a byte), or the body — after gzip
  decoding, so a gzip bomb is caught after at most ``max_bytes + 1`` decoded bytes — passes
  the cap while streaming;
- ``503`` the whole body did not arrive within ``timeout_s`` seconds. Not 408: Logplex treats
  every 4xx but 429 as final and drops the batch, while a stalled body is a transient fault
  (a slow network between the router and the dyno); the web layer adds ``Retry-After``;
- ``503`` (``retry_after_s`` 1) the worker's :class:`BodyBudget` is spent: the bodies being
  read and decoded already hold that many bytes;
- ``400`` a corrupt or truncated gzip stream, a malformed Content-Length, a client that went away;
- ``415`` a ``Content-Encoding`` other than identity or gzip.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncIterator

from starlette.requests import ClientDisconnect, Request

from drain.errors import BodyBudgetSpent, BodyError

__all__ = ["GZIP_STEP_BYTES", "BodyBudget", "BodyLease", "GzipDecoder", "read_body", "read_stream"]

# zlib wbits for "gzip header and trailer required" (zlib manual, inflateInit2).
_GZIP_WBITS = 16 + zlib.MAX_WBITS

#: most bytes one ``decompress`` call may produce: a small gzip chunk can decode to megabytes
#: (the body cap is the only bound on the ratio), and the budget is checked between steps
GZIP_STEP_BYTES = 256 * 1024


class BodyBudget:
    """The bytes of request bodies one worker holds at once while reading and decoding them.

    Each request holds a :class:`BodyLease`: it takes bytes as its body arrives (the decoded
    bytes, for gzip) and gives them all back once the body is decoded and dropped. A request
    whose next bytes do not fit is refused (:class:`BodyBudgetSpent`: 503, Retry-After 1 s)
    and gives its bytes back, so that the memory of the bodies in progress is bounded by
    ``capacity`` whatever arrives at once (100 gzip bodies of 8 KB that decode to 8 MiB
    each, a burst of hundreds of connections). A body holds about twice its bytes in memory
    for a moment (the decoded pieces, then the joined body) and its decoded rows afterwards,
    so the peak memory of the bodies in progress is about ``3 x capacity``
    (bench/README.md, "Memory (round 3)").

    Args:
        capacity: bytes; at least the body cap (``max_bytes`` of :func:`read_stream`) so
            that a body of any accepted size fits when it is alone.

    Raises:
        ValueError: ``capacity`` < 1.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("the body budget must be at least 1 byte")
        self.capacity = capacity
        self.held = 0

    def lease(self) -> BodyLease:
        """A new lease of 0 bytes on this budget."""
        return BodyLease(self)


class BodyLease:
    """One request's share of a :class:`BodyBudget`; give it back with :meth:`release`."""

    def __init__(self, budget: BodyBudget) -> None:
        self._budget = budget
        self.bytes = 0

    def ensure(self, total: int) -> None:
        """Hold at least ``total`` bytes; :class:`BodyBudgetSpent` (and nothing held) when the
        budget cannot give the difference."""
        more = total - self.bytes
        if more <= 0:
            return
        budget = self._budget
        if budget.held + more > budget.capacity:
            self.release()
            raise BodyBudgetSpent(budget.capacity)
        budget.held += more
        self.bytes = total

    def release(self) -> None:
        """Give every byte back (idempotent)."""
        self._budget.held -= self.bytes
        self.bytes = 0


class GzipDecoder:
    """Incremental gzip decoder (RFC 1952) with a cap on the decoded size.

    Feed compressed chunks with :meth:`feed`, then call :meth:`finish`. Concatenated gzip
    members (allowed by RFC 1952 §2.2) are decoded one after the other. Each ``decompress``
    step produces at most :data:`GZIP_STEP_BYTES`, and ``lease`` (when given) is grown to
    the decoded size after each step, so a small chunk that decodes to megabytes is stopped
    by the budget after one step.

    Raises:
        BodyError(413): more than ``max_bytes`` decoded bytes (checked while decoding: the
            decoder never produces more than ``max_bytes + 1`` bytes in total).
        BodyError(400): the stream is not gzip, is corrupt, or ends inside a member.
        BodyBudgetSpent: ``lease`` cannot grow (see :class:`BodyLease`).
    """

    def __init__(self, max_bytes: int, lease: BodyLease | None = None) -> None:
        self._max_bytes = max_bytes
        self._lease = lease
        self._out = 0
        self._inflater = zlib.decompressobj(_GZIP_WBITS)
        self._parts: list[bytes] = []
        self._fed = False

    def feed(self, data: bytes) -> None:
        """Decode one chunk of compressed bytes."""
        if not data:
            return
        self._fed = True
        for _ in range(len(data) + self._max_bytes // GZIP_STEP_BYTES + 2):  # bounded
            room = min(self._max_bytes - self._out + 1, GZIP_STEP_BYTES)
            try:
                out = self._inflater.decompress(data, room)
            except zlib.error as error:
                raise BodyError(400, f"corrupt gzip body: {error}") from None
            self._take(out)  # past the cap: 413
            if self._inflater.eof:
                data = self._inflater.unused_data
                if not data:
                    return
                self._inflater = zlib.decompressobj(_GZIP_WBITS)  # the next member
                continue
            # Output cut at `room` bytes: the rest of the input (or output zlib still holds)
            # in the next step.
            data = self._inflater.unconsumed_tail
            if not data and len(out) < room:
                return
        raise AssertionError("gzip decoding made no progress")  # pragma: no cover

    def finish(self) -> bytes:
        """Return the decoded body; the stream must end at the end of a gzip member."""
        try:
            self._take(self._inflater.flush())
        except zlib.error as error:
            raise BodyError(400, f"corrupt gzip body: {error}") from None
        if self._fed and not self._inflater.eof:
            raise BodyError(400, "truncated gzip body: the stream ends inside a gzip member")
        return b"".join(self._parts)

    def _take(self, out: bytes) -> None:
        self._out += len(out)
        if self._out > self._max_bytes:
            raise BodyError(413, f"body is over {self._max_bytes} bytes once decompressed")
        if out:
            if self._lease is not None:
                self._lease.ensure(self._out)
            self._parts.append(out)


def _content_encoding(value: str | None) -> bool:
    """True for gzip, False for identity/none; BodyError(415) for anything else."""
    if value is None:
        return False
    codings = [c.strip().lower() for c in value.split(",") if c.strip()]
    codings = [c for c in codings if c != "identity"]
    if not codings:
        return False
    if codings in (["gzip"], ["x-gzip"]):
        return True
    raise BodyError(
        415, f"unsupported Content-Encoding {value.strip()!r}: send gzip or no encoding"
    )


def _check_content_length(value: str | None, max_bytes: int) -> None:
    if value is None:
        return
    text = value.strip()
    if not text.isdigit():
        raise BodyError(400, "Content-Length is not a number")
    if int(text) > max_bytes:
        raise BodyError(413, f"body of {int(text)} bytes is over the {max_bytes}-byte cap")


async def read_stream(
    chunks: AsyncIterator[bytes],
    *,
    content_length: str | None,
    content_encoding: str | None,
    max_bytes: int,
    timeout_s: float,
    lease: BodyLease | None = None,
) -> bytes:
    """Read ``chunks`` into one body of at most ``max_bytes`` bytes within ``timeout_s`` s.

    ``max_bytes`` bounds both the bytes received and, for gzip, the bytes decoded.
    ``lease``, when given, holds the body's bytes in its :class:`BodyBudget` (the
    ``Content-Length`` of an identity body before any byte is read, then what arrives or is
    decoded); the caller releases it once the body is decoded.
    Raises :class:`BodyError` (see the module docstring for the statuses).
    """
    gzipped = _content_encoding(content_encoding)
    _check_content_length(content_length, max_bytes)
    if lease is not None and not gzipped and content_length is not None:
        lease.ensure(int(content_length.strip()))  # checked by _check_content_length
    decoder = GzipDecoder(max_bytes, lease) if gzipped else None
    parts: list[bytes] = []
    received = 0
    try:
        async with asyncio.timeout(timeout_s):
            async for chunk in chunks:
                received += len(chunk)
                if received > max_bytes:
                    raise BodyError(413, f"body is over the {max_bytes}-byte cap")
                if decoder is not None:
                    decoder.feed(chunk)
                elif chunk:
                    if lease is not None:
                        lease.ensure(received)
                    parts.append(chunk)
    except TimeoutError:
        raise BodyError(
            503, f"the body did not arrive within {timeout_s:g} s ({received} bytes read)"
        ) from None
    except ClientDisconnect:
        raise BodyError(400, "the client disconnected before sending the whole body") from None
    if decoder is not None:
        return decoder.finish()
    return b"".join(parts)


async def read_body(
    request: Request, *, max_bytes: int, timeout_s: float, lease: BodyLease | None = None
) -> bytes:
    """Read a Starlette request's body as a stream; see :func:`read_stream`."""
    return await read_stream(
        request.stream(),
        content_length=request.headers.get("content-length"),
        content_encoding=request.headers.get("content-encoding"),
        max_bytes=max_bytes,
        timeout_s=timeout_s,
        lease=lease,
    )
