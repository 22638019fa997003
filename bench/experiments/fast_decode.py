"""Prototype of a fused decoder, to measure what the layering of drain.batch costs.

Evidence for a proposal to the parser's owner, not used by the service unless switched on
in an experiment (``BENCH_FAST_DECODE=1``, see ``sitecustomize.py`` here).

``drain.batch.decode_batch`` builds, per frame, a ``Frame``, a ``SyslogMessage``, a
``TaggedEvent``, an ``EventRow`` and a ``FrameOutcome`` (five NamedTuples) and passes them
through three generators. :func:`fast_decode` walks the frames in one loop and, for the two
common shapes, builds only the ``EventRow``:

- an event line: ``<PRI>1 TS HOST APP PROCID MSGID [- ]@[tag] {json}`` with a PRI, fields,
  tag and TIMESTAMP that pass the same checks as drain.syslog / drain.events, a JSON object
  that orjson accepts, no ``\\u0000``, inside the acceptance window;
- an untagged line (router lines, plain app output): a valid header whose MSG starts with
  none of ``@ - [`` or a BOM, from a PROCID that is neither ``logplex`` nor ``log-shuttle``.

Every other frame goes, in place, through drain.batch's own per-frame function, and a body
with a framing fault is decoded by ``decode_batch`` itself, so the result is meant to be
identical: ``python bench/experiments/fast_decode.py`` checks that on the generated bodies
and on every sample body under tests/data/samples, and times both.
"""

from __future__ import annotations

import sys
from datetime import datetime, timedelta
from pathlib import Path

import orjson

from drain.batch import (
    DEFAULT_LIMITS,
    KIND_UNTAGGED,
    DecodeLimits,
    _decode_frame,
    decode_batch,
)
from drain.framing import Frame
from drain.records import DecodedBatch, EventRow, Ledger, QuarantineRow
from drain.syslog import parse_timestamp

_PRI = {b"<%d>1" % pri: pri for pri in range(192)}
_PRINTUSASCII = bytes(range(33, 127))
_TAG_CHARS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-"
_TAGS: dict[bytes, str] = {}
_NUL_ESCAPE = b"\\u0000"
_new = tuple.__new__


def _tag(raw: bytes) -> str | None:
    """The tag as str when ``raw`` is a valid tag (drain.events rules), else None."""
    tag = _TAGS.get(raw)
    if tag is None:
        if (
            not raw
            or len(raw) > 128
            or raw.translate(None, _TAG_CHARS)
            or raw[0] == 46
            or raw[-1] == 46
            or b".." in raw
        ):
            return None
        if len(_TAGS) >= 10_000:
            _TAGS.clear()
        tag = _TAGS[raw] = raw.decode("ascii")
    return tag


def fast_decode(
    body: bytes,
    *,
    now: datetime,
    limits: DecodeLimits = DEFAULT_LIMITS,
    msg_count: int | None = None,
) -> DecodedBatch:
    """Same contract and result as ``drain.batch.decode_batch``, in one loop."""
    if now.tzinfo is None:
        raise ValueError("now must be a tz-aware datetime")
    earliest = now - timedelta(seconds=limits.accept_past_s)
    latest = now + timedelta(seconds=limits.accept_future_s)
    max_frame = limits.max_frame_bytes
    events: list[EventRow] = []
    quarantined: list[QuarantineRow] = []
    ledger = Ledger(body_bytes=len(body), msg_count_header=msg_count)
    by_reason = ledger.quarantined_by_reason
    by_kind = ledger.not_events_by_kind
    append = events.append
    loads = orjson.loads
    find = body.find
    end = len(body)
    pos = 0
    frames = untagged = 0
    while pos < end:  # each pass advances pos by at least 2 bytes
        sp = find(b" ", pos, pos + 10)
        digits = body[pos:sp]
        if sp < 0 or not digits.isdigit() or digits[0] == 48:
            return decode_batch(body, now=now, limits=limits, msg_count=msg_count)
        start = sp + 1
        length = int(digits)
        stop = start + length
        if stop > end:
            return decode_batch(body, now=now, limits=limits, msg_count=msg_count)
        offset = pos
        pos = stop
        frames += 1
        msg = body[start:stop]
        if length <= max_frame:
            parts = msg.split(b" ", 7)
            if len(parts) == 8:
                head, ts, host, app, proc, msgid, first, rest = parts
                pri = _PRI.get(head)
                if (
                    pri is not None
                    and 0 < len(host) <= 255
                    and 0 < len(app) <= 48
                    and 0 < len(proc) <= 128
                    and 0 < len(msgid) <= 32
                    and not (host + app + proc + msgid).translate(None, _PRINTUSASCII)
                ):
                    lead = first[:1]
                    if lead == b"-" and first == b"-":  # nil STRUCTURED-DATA, MSG follows
                        first, _, rest = rest.partition(b" ")
                        lead = first[:1]
                    if lead == b"@":
                        if first[:2] == b"@[" and first[-1:] == b"]" and rest[:1] == b"{":
                            if rest[-1:] == b"\n":
                                rest = rest[:-1]
                            if rest[-1:] == b"\r":
                                rest = rest[:-1]
                            tag = _tag(first[2:-1])
                            when = parse_timestamp(ts)
                            if (
                                tag is not None
                                and when is not None
                                and earliest <= when <= latest
                                and _NUL_ESCAPE not in rest
                            ):
                                try:
                                    value = loads(rest)
                                    payload = rest.decode("utf-8")
                                except ValueError:  # JSONDecodeError, UnicodeDecodeError
                                    value = None
                                if type(value) is dict:
                                    append(
                                        _new(
                                            EventRow,
                                            (
                                                when,
                                                tag,
                                                payload,
                                                pri >> 3,
                                                pri & 7,
                                                host.decode("ascii"),
                                                app.decode("ascii"),
                                                proc.decode("ascii"),
                                            ),
                                        )
                                    )
                                    continue
                    elif (
                        lead not in (b"-", b"[", b"\xef", b"")
                        and proc != b"logplex"
                        and proc != b"log-shuttle"
                        and parse_timestamp(ts) is not None
                    ):
                        untagged += 1
                        continue
        # anything else: drain.batch's own per-frame decoding, in body order
        out = _decode_frame(Frame(offset, msg, length > max_frame), earliest, latest, limits)
        if out.event is not None:
            append(out.event)
        elif out.quarantine is not None:
            quarantined.append(out.quarantine)
            reason = out.quarantine.reason.value
            by_reason[reason] = by_reason.get(reason, 0) + 1
        else:
            kind = out.kind or KIND_UNTAGGED
            by_kind[kind] = by_kind.get(kind, 0) + 1
    if untagged:
        by_kind[KIND_UNTAGGED] = by_kind.get(KIND_UNTAGGED, 0) + untagged
    ledger.frames = frames
    ledger.events = len(events)
    ledger.quarantined = len(quarantined)
    ledger.not_events = frames - ledger.events - ledger.quarantined
    return DecodedBatch(events, quarantined, ledger)


def _main() -> int:
    """Differential check against decode_batch, then timing on the generated bodies."""
    import time
    from datetime import UTC

    from bench.gen import make_bodies

    now = datetime.now(UTC)
    bodies = [b.body for b in make_bodies(32, now=now)]
    samples = sorted((Path(__file__).resolve().parents[2] / "tests/data/samples").rglob("*.body"))
    checked = 0
    for path in samples:
        body = path.read_bytes()
        # the samples carry old timestamps: judge them against their own era as well
        for when in (now, datetime(2026, 11, 30, 23, 0, tzinfo=UTC)):
            want = decode_batch(body, now=when)
            got = fast_decode(body, now=when)
            if (want.events, want.quarantined, want.ledger) != (
                got.events,
                got.quarantined,
                got.ledger,
            ):
                print(f"DIFFERENT: {path.name} at {when}", file=sys.stderr)
                return 1
            checked += 1
    for body in bodies:
        want = decode_batch(body, now=now)
        got = fast_decode(body, now=now)
        if (want.events, want.quarantined, want.ledger) != (
            got.events,
            got.quarantined,
            got.ledger,
        ):
            print("DIFFERENT on a generated body", file=sys.stderr)
            return 1
    print(f"identical results on {checked} sample decodes and {len(bodies)} generated bodies")
    n_events = sum(len(decode_batch(b, now=now).events) for b in bodies)
    for fn in (decode_batch, fast_decode, decode_batch, fast_decode):
        t0 = time.process_time()
        for _ in range(10):
            for b in bodies:
                fn(b, now=now)
        us = (time.process_time() - t0) / (10 * n_events) * 1e6
        print(f"{fn.__name__:13s} {us:5.2f} µs CPU per event")
    return 0


if __name__ == "__main__":
    sys.exit(_main())
