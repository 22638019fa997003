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
- ``400`` a corrupt or truncated gzip stream, a malformed Content-Length, a client that went away;
- ``415`` a ``Content-Encoding`` other than identity or gzip.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncIterator

from starlette.requests import ClientDisconnect, Request

from drain.errors import BodyError

__all__ = ["GzipDecoder", "read_body", "read_stream"]

# zlib wbits for "gzip header and trailer required" (zlib manual, inflateInit2).
_GZIP_WBITS = 16 + zlib.MAX_WBITS


class GzipDecoder:
    """Incremental gzip decoder (RFC 1952) with a cap on the decoded size.

    Feed compressed chunks with :meth:`feed`, then call :meth:`finish`. Concatenated gzip
    members (allowed by RFC 1952 §2.2) are decoded one after the other.

    Raises:
        BodyError(413): more than ``max_bytes`` decoded bytes (checked while decoding: the
            decoder never produces more than ``max_bytes + 1`` bytes in total).
        BodyError(400): the stream is not gzip, is corrupt, or ends inside a member.
    """

    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._out = 0
        self._inflater = zlib.decompressobj(_GZIP_WBITS)
        self._parts: list[bytes] = []
        self._fed = False

    def feed(self, data: bytes) -> None:
        """Decode one chunk of compressed bytes."""
        while data:
            self._fed = True
            room = self._max_bytes - self._out + 1
            try:
                out = self._inflater.decompress(data, room)
            except zlib.error as error:
                raise BodyError(400, f"corrupt gzip body: {error}") from None
            self._take(out)
            if self._inflater.unconsumed_tail:
                # Output was cut at `room` bytes, which is past the cap: _take raised.
                data = self._inflater.unconsumed_tail
                continue
            if self._inflater.eof:
                data = self._inflater.unused_data
                if data:
                    self._inflater = zlib.decompressobj(_GZIP_WBITS)
                continue
            data = b""

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
) -> bytes:
    """Read ``chunks`` into one body of at most ``max_bytes`` bytes within ``timeout_s`` s.

    ``max_bytes`` bounds both the bytes received and, for gzip, the bytes decoded.
    Raises :class:`BodyError` (see the module docstring for the statuses).
    """
    gzipped = _content_encoding(content_encoding)
    _check_content_length(content_length, max_bytes)
    decoder = GzipDecoder(max_bytes) if gzipped else None
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


async def read_body(request: Request, *, max_bytes: int, timeout_s: float) -> bytes:
    """Read a Starlette request's body as a stream; see :func:`read_stream`."""
    return await read_stream(
        request.stream(),
        content_length=request.headers.get("content-length"),
        content_encoding=request.headers.get("content-encoding"),
        max_bytes=max_bytes,
        timeout_s=timeout_s,
    )
