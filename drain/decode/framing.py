"""Octet-counted framing of a Logplex body (RFC 6587 §3.4.1).

A Logplex (``application/logplex-1``) body is a sequence of frames, each::

    FRAME   = MSG-LEN SP SYSLOG-MSG
    MSG-LEN = NONZERO-DIGIT *DIGIT        ; at most 9 digits here

with no separator between frames. MSG-LEN counts *bytes* (not characters) and is
authoritative: it includes the trailing LF when the message has one, and many frames have
none (Logplex's own ``Error L10`` lines, the leading chunks of a line that log-shuttle
split at its maximum line length). A real body::

    70 <174>1 2012-07-22T00:06:26+00:00 host erlang console - Hi from erlang\\n70 <174>1 ...

:func:`split_frames` walks a body in linear time, reading each MSG-LEN byte by byte and
never reading past the end, and stops with :class:`~drain.errors.FramingError`
(carrying the byte offset and what was expected) at the first byte that cannot start a
frame; :func:`iter_frames` yields the same frames as :class:`Frame` objects. Every
frame before that point has been yielded. A frame longer than ``max_frame_bytes`` whose
bytes are all present is still yielded (``too_long=True``) so the caller can report it
and move on to the next frame.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Final, NamedTuple

from drain.errors import FramingError

__all__ = ["MAX_LENGTH_DIGITS", "Frame", "encode_frames", "iter_frames", "split_frames"]

#: MSG-LEN has at most this many digits (999,999,999 bytes, far above any body cap).
MAX_LENGTH_DIGITS: Final = 9


class Frame(NamedTuple):
    """One frame of a body.

    Fields:
        offset: byte offset of the frame's MSG-LEN in the body.
        msg: the SYSLOG-MSG, exactly MSG-LEN bytes (trailing LF included when sent).
        too_long: MSG-LEN is above the ``max_frame_bytes`` given to :func:`iter_frames`;
            the frame was skipped by its count and should be reported, not parsed.
    """

    offset: int
    msg: bytes
    too_long: bool


_EXPECTED_LENGTH: Final = (
    f"a decimal length (1-{MAX_LENGTH_DIGITS} digits, no leading zero) followed by a space"
)


def split_frames(
    body: bytes, *, limit: int | None = None
) -> tuple[list[tuple[int, int, int]], FramingError | None]:
    """Split ``body`` into its frames (RFC 6587 §3.4.1 octet counting), in one pass.

    Args:
        body: the whole (already decompressed) request body.
        limit: stop after this many frames plus one (the caller refuses a body with more;
            the extra one says where it starts); None: no bound.

    Returns:
        ``(frames, error)``: ``frames`` holds ``(offset, start, stop)`` for each complete
        frame in order (its MSG-LEN at ``offset``, its SYSLOG-MSG ``body[start:stop]``, the
        next frame at ``stop``); frames tile the body from byte 0. ``error`` is the
        :class:`~drain.errors.FramingError` at the first thing that is not a frame (no
        ``MSG-LEN SP`` there: a stray space, a leading zero, more than 9 digits, binary
        junk; or a MSG-LEN that runs past the end: a truncated frame), or None when the
        body ends exactly after a frame (or is empty).

    Runs in time linear in ``len(body)``: each step advances by at least 3 bytes and reads
    no more than 10 bytes of it.
    """
    frames: list[tuple[int, int, int]] = []
    append = frames.append
    end = len(body)
    pos = 0
    most = -1 if limit is None else limit + 1
    while pos < end and len(frames) != most:
        # MSG-LEN read byte by byte: compiled, a loop in C with no call and no object
        digit = body[pos] - 48
        if not 1 <= digit <= 9:  # NONZERO-DIGIT
            return frames, FramingError(pos, _EXPECTED_LENGTH)
        length = digit
        at = pos + 1
        last = min(pos + MAX_LENGTH_DIGITS, end)
        while at < last:
            digit = body[at] - 48
            if not 0 <= digit <= 9:
                break
            length = length * 10 + digit
            at += 1
        if at >= end or body[at] != 32:  # SP
            return frames, FramingError(pos, _EXPECTED_LENGTH)
        start = at + 1
        stop = start + length
        if stop > end:
            return frames, FramingError(
                pos,
                f"a frame of {stop - start} bytes (truncated frame: {end - start} bytes remain)",
            )
        append((pos, start, stop))
        pos = stop
    return frames, None


def iter_frames(body: bytes, *, max_frame_bytes: int) -> Iterator[Frame]:
    """Yield the frames of ``body`` in order (RFC 6587 §3.4.1 octet counting).

    Args:
        body: the whole (already decompressed) request body.
        max_frame_bytes: frames whose MSG-LEN is above this many bytes are yielded with
            ``too_long=True``; framing continues after them by their count.

    Yields:
        :class:`Frame` for each complete frame. Frames tile the body from byte 0.

    Raises:
        FramingError: at the offset of the first thing that is not a frame (see
            :func:`split_frames`), after the frames before it. An empty body, or one that
            ends exactly after a frame, is not an error.
    """
    frames, error = split_frames(body)
    for offset, start, stop in frames:
        yield Frame(offset, body[start:stop], stop - start > max_frame_bytes)
    if error is not None:
        raise error


def encode_frames(messages: Iterable[bytes]) -> bytes:
    """Frame ``messages`` as an ``application/logplex-1`` body: ``b"%d %s" % (len, msg)``.

    For tests and the bench. Each message is sent as is (add the LF yourself).

    Raises:
        ValueError: a message is empty (MSG-LEN cannot be 0) or over 999,999,999 bytes.
    """
    parts: list[bytes] = []
    for msg in messages:
        if not msg:
            raise ValueError("cannot frame an empty message: MSG-LEN starts with a nonzero digit")
        if len(msg) >= 10**MAX_LENGTH_DIGITS:
            raise ValueError(f"message of {len(msg)} bytes exceeds the 9-digit MSG-LEN")
        parts.append(b"%d %s" % (len(msg), msg))
    return b"".join(parts)
