"""The OTLP input: an OTLP/HTTP export request into rows and a ledger (pure: no I/O).

Fir-generation Heroku apps have no Logplex drains: their telemetry drains (``heroku
telemetry:add``) export logs, metrics and traces with OTLP. Over HTTP (OTLP specification,
"OTLP/HTTP") a request is ``POST /v1/logs`` (``/v1/metrics``, ``/v1/traces``) whose body is
an ``ExportLogsServiceRequest`` (``ExportMetricsServiceRequest``,
``ExportTraceServiceRequest``) encoded as binary protobuf (``application/x-protobuf``, the
exporters' default) or as the protobuf JSON mapping (``application/json``), maybe gzipped
(the web layer decodes gzip). Both encodings are parsed by the OpenTelemetry project's
generated classes (``opentelemetry-proto``: ``ParseFromString``, and
``google.protobuf.json_format`` for JSON), never by a parser of ours. The JSON mapping's
OTLP deviations are honoured: ``traceId``/``spanId`` are hex (converted before parsing),
enums may be integers, 64-bit integers strings or numbers, unknown fields are ignored.

A body that does not parse raises :class:`~drain.errors.InvalidOtlpRequest` (answered
400); more log records than ``limits.max_frames`` raise
:class:`~drain.errors.TooManyRecords` (413), before any record is decoded.

What a log record becomes (:func:`decode_logs`): its body goes through the same rules as a
Logplex MSG (:func:`drain.decode.lines.line_decoder`), with these fields:

==============  ==========================================================================
line field      from the log record and its resource
==============  ==========================================================================
time            ``time_unix_nano``, else ``observed_time_unix_nano``, else the receipt
                time; nanoseconds cut to microseconds (PostgreSQL's precision), UTC
PRI             facility 23 (local7, what Logplex gives an app's output) and the syslog
                severity of ``severity_number`` (:func:`syslog_severity`)
HOSTNAME        resource ``host.name``
APP-NAME        resource ``service.name``
PROCID          resource ``service.instance.id`` (Fir: the dyno's id)
MSG             the body: a string (UTF-8) or bytes value, one trailing LF/CRLF removed;
                any other value (a map, a number, none) is a not-event line (``untagged``)
raw / offset    for a quarantine row: the body's bytes, and the record's index in the
                request (0-based, resource by resource, scope by scope), not a byte offset
app             resource ``service.name`` (Fir: the app's name), else ``heroku.app.id``,
                else ``""``; NUL removed, cut to 255 characters
==============  ==========================================================================

HOSTNAME, APP-NAME and PROCID are made printable US-ASCII as the line decoder needs (a
non-ASCII character becomes ``?``, a space or control character ``_``), cut to RFC 5424's
lengths (255, 48, 128), ``-`` (the NILVALUE) when absent. A body over
``limits.max_frame_bytes`` is quarantined FRAME_TOO_LONG, not parsed.

The ledger counts log records as frames, so its invariant is the Logplex one with no
unframeable rest::

    ledger.frames == ledger.events + ledger.quarantined + ledger.not_events

Exactly once (:func:`ledger_key`): an exporter resends a failed request with the same bytes,
and OTLP has no frame id, so the ledger key of an OTLP request is the credential that sent
it and the SHA-256 of its decoded (gunzipped) body.

Answers (:func:`export_response`, :func:`status_body`) are encoded like the request: an
``Export<signal>ServiceResponse`` on success, whose ``partial_success`` says what was not
stored and why; a ``google.rpc.Status`` for every 4xx and 5xx.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from google.rpc import code_pb2, status_pb2
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from drain.decode.limits import DecodeLimits
from drain.decode.lines import (
    KIND_UNTAGGED,
    LineDecoder,
    as_typed,
    keep_other,
    keep_typed,
    line_decoder,
)
from drain.decode.lines import quarantine_row as make_quarantine_row
from drain.decode.rules import LineRules
from drain.decode.syslog import APP_NAME_MAX, HOSTNAME_MAX, PROCID_MAX, strip_eol
from drain.errors import InvalidOtlpRequest, TooManyRecords
from drain.records import (
    RAW_EVENTS,
    DecodedBatch,
    EventRow,
    Ledger,
    QuarantineReason,
    QuarantineRow,
    Row,
)

__all__ = [
    "APP_FACILITY",
    "APP_MAX",
    "JSON_MEDIA_TYPE",
    "PROTOBUF_MEDIA_TYPE",
    "Encoding",
    "Signal",
    "count_items",
    "decode_logs",
    "encoding_of",
    "export_response",
    "ledger_key",
    "media_type",
    "partial_success_message",
    "status_body",
    "syslog_severity",
]

#: the media type of binary protobuf bodies (OTLP specification, "Binary Protobuf Encoding")
PROTOBUF_MEDIA_TYPE = "application/x-protobuf"
#: the media type of JSON bodies (OTLP specification, "JSON Protobuf Encoding")
JSON_MEDIA_TYPE = "application/json"

#: the syslog facility of an OTLP log record's PRI: local7, as Logplex writes an app's
#: output (``<190>``), so that a Fir app's rows read like its Cedar rows
APP_FACILITY = 23
#: longest ``app`` kept from ``service.name``, characters
APP_MAX = 255


class Encoding(enum.StrEnum):
    """How an OTLP/HTTP body is encoded, from its ``Content-Type``."""

    PROTOBUF = "protobuf"
    JSON = "json"


class Signal(enum.StrEnum):
    """The OTLP signal of a route: ``/v1/logs``, ``/v1/metrics``, ``/v1/traces``."""

    LOGS = "logs"
    METRICS = "metrics"
    TRACES = "traces"


_REQUESTS: dict[Signal, type[Message]] = {
    Signal.LOGS: ExportLogsServiceRequest,
    Signal.METRICS: ExportMetricsServiceRequest,
    Signal.TRACES: ExportTraceServiceRequest,
}
_RESPONSES: dict[Signal, type[Message]] = {
    Signal.LOGS: ExportLogsServiceResponse,
    Signal.METRICS: ExportMetricsServiceResponse,
    Signal.TRACES: ExportTraceServiceResponse,
}
#: the ``Export*PartialSuccess`` field that counts what was not accepted
_REJECTED_FIELD = {
    Signal.LOGS: "rejected_log_records",
    Signal.METRICS: "rejected_data_points",
    Signal.TRACES: "rejected_spans",
}
#: the gRPC code a Status body carries for an HTTP status (the OTLP specification says
#: clients do not act on it; it is for people reading the answer)
_GRPC_CODES = {
    400: code_pb2.INVALID_ARGUMENT,
    401: code_pb2.UNAUTHENTICATED,
    403: code_pb2.PERMISSION_DENIED,
    404: code_pb2.NOT_FOUND,
    413: code_pb2.RESOURCE_EXHAUSTED,
    415: code_pb2.INVALID_ARGUMENT,
    429: code_pb2.RESOURCE_EXHAUSTED,
    500: code_pb2.INTERNAL,
    503: code_pb2.UNAVAILABLE,
}

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: bytes 0x21-0x7E kept, every other byte (space, control, DEL, 0x80-0xFF) becomes "_"
_PRINTABLE = bytes(c if 33 <= c <= 126 else 95 for c in range(256))
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})*")
#: the OTLP JSON keys whose values are hex byte strings, in a log record
_HEX_ID_KEYS = ("traceId", "spanId", "trace_id", "span_id")


def media_type(content_type: str | None) -> str:
    """The media type of a ``Content-Type`` value, lower case, parameters dropped."""
    return "" if content_type is None else content_type.partition(";")[0].strip().lower()


def encoding_of(content_type: str | None) -> Encoding | None:
    """The body's encoding from its ``Content-Type`` (parameters such as ``charset``
    allowed), or None for any other media type (answered 415)."""
    kind = media_type(content_type)
    if kind == PROTOBUF_MEDIA_TYPE:
        return Encoding.PROTOBUF
    if kind == JSON_MEDIA_TYPE:
        return Encoding.JSON
    return None


def syslog_severity(severity_number: int) -> int:
    """The RFC 5424 severity (0 emergency .. 7 debug) of an OTLP ``SeverityNumber``.

    The ranges of the OpenTelemetry log data model ("Field: SeverityNumber"), read back
    through the syslog row of its Appendix B example mappings (Debug = DEBUG, Informational
    = INFO, Notice = INFO2, Warning = WARN, Error = ERROR, Critical = ERROR2, Alert =
    ERROR3, Emergency = FATAL)::

        1-8   TRACE, DEBUG      -> 7 debug
        9     INFO              -> 6 informational
        10-12 INFO2-INFO4       -> 5 notice
        13-16 WARN              -> 4 warning
        17    ERROR             -> 3 error
        18    ERROR2            -> 2 critical
        19-20 ERROR3, ERROR4    -> 1 alert
        21-24 FATAL             -> 0 emergency
        0 (UNSPECIFIED), or a value outside 0-24 -> 6 informational (Logplex's app output)
    """
    if 1 <= severity_number <= 8:
        return 7
    if 10 <= severity_number <= 12:
        return 5
    if 13 <= severity_number <= 16:
        return 4
    if severity_number == 17:
        return 3
    if severity_number == 18:
        return 2
    if 19 <= severity_number <= 20:
        return 1
    if 21 <= severity_number <= 24:
        return 0
    return 6


def ledger_key(identity: str, body: bytes) -> tuple[str, str]:
    """The ``received_batches`` key of an OTLP request: ``(drain_token, frame_id)``.

    ``drain_token`` is ``otlp:`` and the credential identity that sent it
    (drain.web.access.authenticate: ``basic:<user>``, ``bearer``, ``anonymous``);
    ``frame_id`` is ``sha256:`` and the 64 hex digits of the SHA-256 of the body after
    gzip decoding (71 characters). An exporter's retry sends the same bytes (its gzip
    member may differ; the decoded body does not), so it finds the key committed and adds
    nothing; two different requests have different keys.
    """
    return f"otlp:{identity}", "sha256:" + hashlib.sha256(body).hexdigest()


# ----------------------------------------------------------------------------- parsing


def _parse(signal: Signal, body: bytes, encoding: Encoding) -> Any:
    """The body as the signal's ``Export*ServiceRequest``.

    Raises:
        InvalidOtlpRequest: the body does not parse in ``encoding``.
    """
    request = _REQUESTS[signal]()
    if encoding is Encoding.PROTOBUF:
        try:
            request.ParseFromString(body)
        except (DecodeError, RecursionError) as error:
            raise InvalidOtlpRequest(f"not a protobuf {type(request).__name__}: {error}") from None
        return request
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise InvalidOtlpRequest(f"not JSON: {error}") from None
    if not isinstance(document, dict):
        raise InvalidOtlpRequest(f"the JSON body is not an object ({type(request).__name__})")
    if signal is Signal.LOGS:
        _hex_ids_to_base64(document)
    try:
        json_format.ParseDict(document, request, ignore_unknown_fields=True)
    except (json_format.ParseError, RecursionError, TypeError, ValueError) as error:
        raise InvalidOtlpRequest(f"not a JSON {type(request).__name__}: {error}") from None
    return request


def _hex_ids_to_base64(document: dict[str, Any]) -> None:
    """Rewrite the hex ``traceId``/``spanId`` of each log record (OTLP JSON) as the base64
    that the protobuf JSON mapping reads, in place; other shapes are left to the parser.

    Raises:
        InvalidOtlpRequest: an id is not a string of hex digit pairs.
    """
    for resource in _items(document, "resourceLogs", "resource_logs"):
        for scope in _items(resource, "scopeLogs", "scope_logs"):
            for record in _items(scope, "logRecords", "log_records"):
                for key in _HEX_ID_KEYS:
                    value = record.get(key)
                    if value is None:
                        continue
                    if not isinstance(value, str) or not _HEX.fullmatch(value):
                        raise InvalidOtlpRequest(f"log record {key} {value!r} is not hex")
                    record[key] = base64.b64encode(bytes.fromhex(value)).decode("ascii")


def _items(parent: object, *keys: str) -> list[dict[str, Any]]:
    """The objects of the list under the first of ``keys`` that ``parent`` has."""
    if not isinstance(parent, dict):
        return []
    for key in keys:
        found = parent.get(key)
        if isinstance(found, list):
            return [item for item in found if isinstance(item, dict)]
    return []


def count_items(signal: Signal, body: bytes, encoding: Encoding) -> int:
    """What a metrics or traces request carries: its data points (every data point of
    every metric, whatever its type) or its spans; for logs, its log records.

    Raises:
        InvalidOtlpRequest: the body does not parse.
    """
    request = _parse(signal, body, encoding)
    if signal is Signal.LOGS:
        return _record_count(request)
    if signal is Signal.TRACES:
        return sum(len(s.spans) for r in request.resource_spans for s in r.scope_spans)
    points = 0
    for resource in request.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                kind = metric.WhichOneof("data")
                if kind is not None:
                    points += len(getattr(metric, kind).data_points)
    return points


def _record_count(request: ExportLogsServiceRequest) -> int:
    return sum(len(s.log_records) for r in request.resource_logs for s in r.scope_logs)


# ----------------------------------------------------------------------------- log records


def _string_attributes(attributes: Any, keys: frozenset[str]) -> dict[str, str]:
    """The string values of the attributes named in ``keys`` (the first of each)."""
    found: dict[str, str] = {}
    kv: KeyValue
    for kv in attributes:
        key = kv.key
        if key in keys and key not in found and kv.value.WhichOneof("value") == "string_value":
            found[key] = kv.value.string_value
    return found


_RESOURCE_KEYS = frozenset({"service.name", "service.instance.id", "host.name", "heroku.app.id"})


def _syslog_field(text: str | None, limit: int) -> bytes:
    """``text`` as a printable US-ASCII syslog field of at most ``limit`` bytes, or the
    NILVALUE ``-`` when it is absent or empty."""
    if not text:
        return b"-"
    return text.encode("ascii", "replace").translate(_PRINTABLE)[:limit]


def _resource_fields(resource: Resource) -> tuple[str, bytes, bytes, bytes]:
    """(app, HOSTNAME, APP-NAME, PROCID) of one resource (see the module docstring)."""
    attributes = _string_attributes(resource.attributes, _RESOURCE_KEYS)
    service = attributes.get("service.name")
    app = (service or attributes.get("heroku.app.id") or "").replace("\x00", "")[:APP_MAX]
    return (
        app,
        _syslog_field(attributes.get("host.name"), HOSTNAME_MAX),
        _syslog_field(service, APP_NAME_MAX),
        _syslog_field(attributes.get("service.instance.id"), PROCID_MAX),
    )


def decode_logs(
    body: bytes, *, encoding: Encoding, now: datetime, limits: DecodeLimits, rules: LineRules
) -> DecodedBatch:
    """Decode one OTLP ``ExportLogsServiceRequest`` into events, quarantine rows and a ledger.

    Args:
        body: the request body after gzip decoding, at most the body cap in bytes.
        encoding: from the request's ``Content-Type`` (:func:`encoding_of`).
        now: receipt time (tz-aware, UTC): the acceptance window is relative to it, and a
            record with neither time takes it.
        limits: the decoder's bounds; ``max_frames`` bounds the log records.
        rules: what becomes of Heroku's own lines (drain.decode.rules), for a record whose
            resource makes it one (APP-NAME ``heroku``, PROCID ``log-shuttle`` or an
            add-on's).

    Returns:
        :class:`~drain.records.DecodedBatch` with rows in request order and a ledger whose
        ``frames`` are the log records (see the module docstring).

    Raises:
        ValueError: ``now`` is naive.
        InvalidOtlpRequest: the body does not parse (the only way a bad byte raises).
        TooManyRecords: more than ``limits.max_frames`` log records.
    """
    request = _parse(Signal.LOGS, body, encoding)
    total = _record_count(request)
    if limits.max_frames is not None and total > limits.max_frames:
        raise TooManyRecords(limits.max_frames, total)
    events: list[Row] = []
    rows: dict[str, list[Row]] = {RAW_EVENTS: events}
    quarantined: list[QuarantineRow] = []
    ledger = Ledger(body_bytes=len(body))
    by_kind = ledger.not_events_by_kind
    by_type: dict[type, list[Row]] = {}
    decoders: dict[str, LineDecoder] = {}
    max_bytes = limits.max_frame_bytes
    index = 0
    for resource_logs in request.resource_logs:
        app, host, app_name, proc = _resource_fields(resource_logs.resource)
        decode_line = decoders.get(app)
        if decode_line is None:
            decode_line = decoders[app] = line_decoder(now, limits, app, rules)
        for scope_logs in resource_logs.scope_logs:
            for record in scope_logs.log_records:
                value = record.body
                kind = value.WhichOneof("value")
                if kind == "string_value":
                    raw = value.string_value.encode("utf-8")
                elif kind == "bytes_value":
                    raw = value.bytes_value
                else:
                    by_kind[KIND_UNTAGGED] = by_kind.get(KIND_UNTAGGED, 0) + 1
                    index += 1
                    continue
                if len(raw) > max_bytes:
                    out: object = make_quarantine_row(
                        limits,
                        app,
                        raw,
                        index,
                        QuarantineReason.FRAME_TOO_LONG,
                        f"log record body of {len(raw)} bytes is over max_frame_bytes "
                        f"({max_bytes})",
                    )
                else:
                    nanos = record.time_unix_nano or record.observed_time_unix_nano
                    when = _EPOCH + timedelta(microseconds=nanos // 1000) if nanos else now
                    pri = APP_FACILITY * 8 + syslog_severity(record.severity_number)
                    out = decode_line(when, pri, host, app_name, proc, strip_eol(raw), raw, index)
                index += 1
                if type(out) is EventRow:
                    events.append(out)
                    continue
                typed = as_typed(out)  # type: ignore[arg-type]
                if typed is not None:  # one of Heroku's own lines: rows of the typed tables
                    keep_typed(typed, rows, by_type, ledger)
                else:
                    keep_other(out, quarantined, ledger)  # type: ignore[arg-type]
    ledger.frames = index
    ledger.events = len(events)
    ledger.typed = sum(ledger.typed_by_kind.values())
    ledger.quarantined = len(quarantined)
    ledger.not_events = index - ledger.events - ledger.typed - ledger.quarantined
    return DecodedBatch(rows, quarantined, ledger)


# ----------------------------------------------------------------------------- answers


def partial_success_message(not_stored: Mapping[str, int]) -> str:
    """The English ``error_message`` of a logs ``partial_success``: how many log records
    were kept in the drain's quarantine table rather than stored as events, and why
    (``not_stored`` counts them by quarantine reason); ``""`` when there are none."""
    total = sum(not_stored.values())
    if not total:
        return ""
    reasons = ", ".join(f"{reason}: {n}" for reason, n in sorted(not_stored.items()) if n)
    return (
        f"{total} log record{'s' if total != 1 else ''} quarantined, not stored as events "
        f"({reasons}): a body that starts with @[ must be @[tag] {{json object}} with a "
        "time inside the acceptance window; the drain's quarantine table keeps each body"
    )


def _serialize(message: Message, encoding: Encoding) -> bytes:
    if encoding is Encoding.JSON:
        text = json_format.MessageToJson(message, indent=None, use_integers_for_enums=True)
        return text.encode("utf-8")
    return message.SerializeToString()


def export_response(
    signal: Signal, encoding: Encoding, *, rejected: int = 0, message: str = ""
) -> bytes:
    """The body of a 200: an ``Export<signal>ServiceResponse`` in ``encoding``.

    ``partial_success`` is left unset when everything was accepted (OTLP specification,
    "Full Success"); it is set when ``rejected`` items (log records, data points, spans)
    were not stored, or when ``message`` is a warning with ``rejected == 0``.
    """
    response = _RESPONSES[signal]()
    if rejected or message:
        partial = response.partial_success  # type: ignore[attr-defined]
        setattr(partial, _REJECTED_FIELD[signal], rejected)
        partial.error_message = message
    return _serialize(response, encoding)


def status_body(status_code: int, message: str, encoding: Encoding) -> bytes:
    """The body of a 4xx or 5xx: a ``google.rpc.Status`` in ``encoding`` with ``message``
    and the gRPC code closest to ``status_code`` (OTLP specification, "Failures")."""
    status = status_pb2.Status(code=_GRPC_CODES.get(status_code, code_pb2.UNKNOWN), message=message)
    return _serialize(status, encoding)
