"""A readable account of how a body decodes: one JSON object per frame, then a summary.

This is what ``drain parse FILE`` prints (one object per line) and what the golden files in
``tests/data/samples/*.golden.jsonl`` hold. Pure: no I/O, the clock arrives as ``now``.

Each frame gives, in this key order::

    type             "frame" (or "rest" for the unframeable rest of a body)
    offset, length   byte offset of MSG-LEN in the body; MSG-LEN in bytes
    outcome          "event" | "typed" | "quarantined" | "not_an_event"
    header_error     the syslog LineError text, or null
    pri, facility, severity, timestamp (ISO 8601 UTC, microseconds, "Z"),
    hostname, app_name, proc_id, msg_id, structured_data     (null when no header)
    msg              MSG when the header parsed, else null
    raw              the SYSLOG-MSG (or the rest of the body) when there is no header,
                     cut to max_quarantine_raw_bytes, else null
    then: tag, payload        for an event
          kind, rows          for a typed frame: the line's kind (router, runtime_metrics,
                              addon_metrics, platform) and its rows, each an object with
                              its "table" and its columns but event_time and app (the
                              frame's timestamp and the batch's app); client_hash in hex,
                              extra and details as JSON objects
          reason, detail, tag for a quarantined frame
          kind                for a frame that is not an event

Bytes that are not UTF-8 are shown as backslash escapes (``\\xff``). The last object is
``{"type": "summary", ...}``: the counts of :class:`~drain.records.Ledger` (the ledger of
:func:`~drain.inputs.logplex.decode_body`, the request path) and ``msg_count_mismatch``;
``typed`` and ``typed_by_kind`` follow ``events`` only when the body has typed frames (so a
body of events reads as it did before drain read Heroku's own lines).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import orjson

from drain.decode.limits import DecodeLimits
from drain.decode.rules import LineRules
from drain.inputs.logplex import FrameOutcome, decode_body, iter_outcomes
from drain.records import ROW_TABLES, Row

__all__ = ["dump_body", "dump_jsonl"]


def _text(data: bytes) -> str:
    return data.decode("utf-8", "backslashreplace")


#: row fields shown as JSON objects rather than their text
_JSON_FIELDS = frozenset({"extra", "details"})


def _row_dict(row: Row) -> dict[str, object]:
    """A typed row for display: its table, then its fields but event_time and app."""
    out: dict[str, object] = {"table": ROW_TABLES[type(row)]}
    for name, value in zip(row._fields, row, strict=True):  # type: ignore[attr-defined]
        if name in ("event_time", "app"):
            continue
        if isinstance(value, bytes):
            value = value.hex()
        elif name in _JSON_FIELDS and isinstance(value, str):
            value = orjson.loads(value)
        out[name] = value
    return out


def _frame_dict(item: FrameOutcome, keep: int) -> dict[str, object]:
    line = item.header
    out: dict[str, object] = {
        "type": "frame" if item.framed else "rest",
        "offset": item.offset,
        "length": item.length,
        "outcome": item.outcome.value,
        "header_error": str(item.header_error) if item.header_error is not None else None,
    }
    if line is not None:
        out.update(
            pri=line.pri,
            facility=line.facility,
            severity=line.severity,
            timestamp=line.timestamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            hostname=line.hostname,
            app_name=line.app_name,
            proc_id=line.proc_id,
            msg_id=line.msg_id,
            structured_data=line.structured_data,
            msg=_text(line.msg),
            raw=None,
        )
    else:
        out.update(
            pri=None,
            facility=None,
            severity=None,
            timestamp=None,
            hostname=None,
            app_name=None,
            proc_id=None,
            msg_id=None,
            structured_data=None,
            msg=None,
            raw=_text(item.raw[:keep]),
        )
    if item.event is not None:
        out.update(tag=item.event.tag, payload=item.event.payload)
    elif item.typed is not None:
        out.update(kind=item.typed.kind, rows=[_row_dict(row) for row in item.typed.rows])
    elif item.quarantine is not None:
        q = item.quarantine
        out.update(reason=q.reason.value, detail=q.detail, tag=q.tag)
    else:
        out["kind"] = item.kind
    return out


def dump_body(
    body: bytes, *, now: datetime, limits: DecodeLimits, rules: LineRules
) -> Iterator[dict[str, object]]:
    """Yield one JSON-able dict per frame of ``body``, then the summary dict.

    Args:
        body: the decompressed request body.
        now: the receipt time to judge the acceptance window by (tz-aware).
        limits, rules: as for :func:`drain.inputs.logplex.decode_body`.

    Raises:
        ValueError: ``now`` is naive.
        TooManyFrames: more than ``limits.max_frames`` frames.
    """
    keep = limits.max_quarantine_raw_bytes
    for item in iter_outcomes(body, now=now, limits=limits, rules=rules):
        yield _frame_dict(item, keep)
    # the request path's ledger
    ledger = decode_body(body, now=now, limits=limits, rules=rules).ledger
    summary: dict[str, object] = {
        "type": "summary",
        "body_bytes": ledger.body_bytes,
        "frames": ledger.frames,
        "events": ledger.events,
    }
    if ledger.typed:
        summary.update(typed=ledger.typed, typed_by_kind=ledger.typed_by_kind)
    yield summary | {
        "quarantined": ledger.quarantined,
        "not_events": ledger.not_events,
        "quarantined_by_reason": ledger.quarantined_by_reason,
        "not_events_by_kind": ledger.not_events_by_kind,
        "framing_error": ledger.framing_error,
        "framing_error_offset": ledger.framing_error_offset,
        "msg_count_header": ledger.msg_count_header,
        "msg_count_mismatch": ledger.msg_count_mismatch,
    }


def dump_jsonl(
    body: bytes, *, now: datetime, limits: DecodeLimits, rules: LineRules
) -> Iterator[bytes]:
    """:func:`dump_body` as JSON lines (UTF-8, each ending in LF), as the golden files hold."""
    for item in dump_body(body, now=now, limits=limits, rules=rules):
        yield orjson.dumps(item) + b"\n"
