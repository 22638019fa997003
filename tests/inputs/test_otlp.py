"""The OTLP input (drain.inputs.otlp), pure: protobuf and JSON export requests into rows and a
ledger, the severity and attribute mapping, the bounds, the answers. Bodies are built with the
OpenTelemetry project's classes and, for one test, encoded by the SDK's own OTLP encoder."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from google.protobuf import json_format
from google.rpc import status_pb2
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource

from drain.errors import InvalidOtlpRequest, TooManyFrames, TooManyRecords
from drain.inputs.otlp import (
    APP_FACILITY,
    Encoding,
    Signal,
    count_items,
    decode_logs,
    encoding_of,
    export_response,
    ledger_key,
    partial_success_message,
    status_body,
    syslog_severity,
)
from drain.records import DecodedBatch, EventRow, QuarantineReason
from tests.support.config import LIMITS, RULES, decode_limits
from tests.support.otlp import FIR_RESOURCE, Record, add_resource, as_json, logs_request, nanos

NOW = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)
AT = NOW - timedelta(seconds=5)
PAY = '@[production.pay] {"uid":123,"item_category":"categoryA","price":321}'


def decode(data: bytes, encoding: Encoding = Encoding.PROTOBUF, **limits: Any) -> DecodedBatch:
    """decode_logs at :data:`NOW` with the default limits and ``limits``."""
    return decode_logs(
        data, encoding=encoding, now=NOW, limits=decode_limits(**limits), rules=RULES
    )


def test_a_tagged_body_becomes_an_event_with_its_app_and_dyno() -> None:
    request = logs_request([Record(PAY, nanos(AT), SeverityNumber.INFO.value)])
    batch = decode(request.SerializeToString())
    assert batch.events == [
        EventRow(
            event_time=AT,
            tag="production.pay",
            payload='{"uid":123,"item_category":"categoryA","price":321}',
            facility=APP_FACILITY,
            severity=6,
            hostname="-",
            app_name="shop",
            proc_id=FIR_RESOURCE["service.instance.id"],
            app="shop",
        )
    ]
    ledger = batch.ledger
    assert (ledger.frames, ledger.events, ledger.quarantined, ledger.not_events) == (1, 1, 0, 0)
    assert ledger.body_bytes == request.ByteSize()


def test_every_record_gets_one_outcome_as_a_logplex_line_would() -> None:
    request = logs_request(
        [
            Record(PAY, nanos(AT)),
            Record("Completed 200 OK in 12ms", nanos(AT)),  # untagged
            Record("@[bad tag] {}", nanos(AT)),  # BAD_TAG
            Record("@[shop.order] [1, 2]", nanos(AT)),  # NOT_AN_OBJECT
            Record('@[shop.old] {"n":1}', nanos(NOW - timedelta(days=30))),  # OUT_OF_WINDOW
            Record(None, nanos(AT)),  # an int body: not a line
            Record(b'@[shop.bytes] {"n":2}', nanos(AT)),  # a bytes body is a MSG too
            Record('@[shop.crlf] {"n":3}\r\n', nanos(AT)),  # one line end is dropped
        ]
    )
    batch = decode(request.SerializeToString())
    assert [e.tag for e in batch.events] == ["production.pay", "shop.bytes", "shop.crlf"]
    assert batch.events[2].payload == '{"n":3}'
    assert [(q.reason, q.raw, q.frame_offset) for q in batch.quarantined] == [
        (QuarantineReason.BAD_TAG, b"@[bad tag] {}", 2),
        (QuarantineReason.NOT_AN_OBJECT, b"@[shop.order] [1, 2]", 3),
        (QuarantineReason.OUT_OF_WINDOW, b'@[shop.old] {"n":1}', 4),
    ]
    assert all(q.app == "shop" for q in batch.quarantined)
    ledger = batch.ledger
    assert ledger.frames == 8
    assert ledger.frames == ledger.events + ledger.quarantined + ledger.not_events
    assert ledger.not_events_by_kind == {"untagged": 2}
    assert ledger.quarantined_by_reason == {"bad_tag": 1, "not_an_object": 1, "out_of_window": 1}


def test_time_is_time_unix_nano_else_observed_else_receipt() -> None:
    observed = AT - timedelta(seconds=1)
    request = logs_request(
        [
            Record('@[t.a] {"n":1}', nanos(AT), observed_time_unix_nano=nanos(observed)),
            Record('@[t.b] {"n":2}', 0, observed_time_unix_nano=nanos(observed)),
            Record('@[t.c] {"n":3}', 0),
            Record('@[t.d] {"n":4}', nanos(AT) + 999),  # nanoseconds cut to microseconds
        ]
    )
    times = [e.event_time for e in decode(request.SerializeToString()).events]
    assert times == [AT, observed, NOW, AT]


@pytest.mark.parametrize(
    ("number", "severity"),
    [
        *[(0, 6), (1, 7), (4, 7), (5, 7), (8, 7), (9, 6), (10, 5), (12, 5), (13, 4), (16, 4)],
        *[(17, 3), (18, 2), (19, 1), (20, 1), (21, 0), (24, 0), (25, 6), (-3, 6), (2**31 - 1, 6)],
    ],
)
def test_severity_numbers_map_to_syslog_severities(number: int, severity: int) -> None:
    assert syslog_severity(number) == severity


def test_the_pri_of_a_record_is_local7_and_its_mapped_severity() -> None:
    request = logs_request([Record(PAY, nanos(AT), SeverityNumber.ERROR.value)])
    [event] = decode(request.SerializeToString()).events
    assert (event.facility, event.severity) == (23, 3)


def test_resource_attributes_are_made_syslog_fields_and_app() -> None:
    resource = {
        "service.name": "caf\u00e9 shop",
        "host.name": "dyno host\t1",
        "service.instance.id": "x" * 300,
    }
    request = logs_request([Record(PAY, nanos(AT))], resource)
    [event] = decode(request.SerializeToString()).events
    assert event.app == "caf\u00e9 shop"  # the app column keeps service.name as sent
    assert event.app_name == "caf?_shop"  # APP-NAME: printable US-ASCII
    assert event.hostname == "dyno_host_1"
    assert event.proc_id == "x" * 128  # PROCID's RFC 5424 length


def test_without_service_name_the_app_is_herokus_app_id_else_empty() -> None:
    request = logs_request([Record(PAY, nanos(AT))], {"heroku.app.id": "2daa2797"})
    add_resource(request, [Record(PAY, nanos(AT))], {})
    first, second = decode(request.SerializeToString()).events
    assert (first.app, first.app_name, first.proc_id) == ("2daa2797", "-", "-")
    assert second.app == ""


def test_each_resource_gives_its_own_app() -> None:
    request = logs_request([Record(PAY, nanos(AT))], {"service.name": "shop"})
    add_resource(request, [Record(PAY, nanos(AT))], {"service.name": "api"})
    assert [e.app for e in decode(request.SerializeToString()).events] == ["shop", "api"]


def test_a_body_over_max_frame_bytes_is_quarantined_unparsed() -> None:
    long = '@[shop.big] {"x":"' + "y" * 200 + '"}'
    request = logs_request([Record(long, nanos(AT)), Record(PAY, nanos(AT))])
    batch = decode(request.SerializeToString(), max_frame_bytes=100)
    [row] = batch.quarantined
    assert row.reason is QuarantineReason.FRAME_TOO_LONG
    assert row.raw_bytes == len(long) and row.frame_offset == 0
    assert [e.tag for e in batch.events] == ["production.pay"]


def test_more_records_than_the_bound_is_refused_whole() -> None:
    request = logs_request([Record(PAY, nanos(AT))] * 4)
    with pytest.raises(TooManyRecords) as raised:
        decode(request.SerializeToString(), max_frames=3)
    assert isinstance(raised.value, TooManyFrames)  # the web layer's 413
    assert "4 log records, more than 3" in str(raised.value)
    assert len(decode(request.SerializeToString(), max_frames=4).events) == 4


def test_json_decodes_to_the_same_rows_as_protobuf() -> None:
    request = logs_request([Record(PAY, nanos(AT), 17), Record("@[x] nope", nanos(AT))])
    record = request.resource_logs[0].scope_logs[0].log_records[0]
    record.trace_id = bytes(range(16))
    record.span_id = bytes(range(8))
    binary = decode(request.SerializeToString())
    text = decode(as_json(request), Encoding.JSON)
    assert text.events == binary.events and text.quarantined == binary.quarantined
    assert text.ledger.quarantined_by_reason == binary.ledger.quarantined_by_reason


def test_json_follows_otlps_rules() -> None:
    """lowerCamelCase keys, enum integers, 64-bit integers as strings or numbers, hex ids;
    unknown fields ignored (OTLP specification, "JSON Protobuf Encoding")."""
    document = {
        "resourceLogs": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "shop"}}]
                },
                "futureField": {"anything": True},
                "scopeLogs": [
                    {
                        "logRecords": [
                            {
                                "timeUnixNano": str(nanos(AT)),
                                "severityNumber": 13,
                                "body": {"stringValue": PAY},
                                "traceId": "5B8EFFF798038103D269B633813FC60C",
                                "spanId": "eee19b7ec3c1b174",
                                "newThing": 1,
                            },
                            {"timeUnixNano": nanos(AT), "body": {"stringValue": PAY}},
                        ]
                    }
                ],
            }
        ]
    }
    batch = decode(json.dumps(document).encode(), Encoding.JSON)
    assert [(e.app, e.severity, e.event_time) for e in batch.events] == [
        ("shop", 4, AT),
        ("shop", 6, AT),
    ]


@pytest.mark.parametrize(
    "body",
    [
        b"",  # empty: not JSON
        b"[]",
        b'"text"',
        b'{"resourceLogs": 3}',
        b'{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"timeUnixNano":"-1"}]}]}]}',
        b'{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"traceId":"xyz1"}]}]}]}',
        b'{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"spanId":"abc"}]}]}]}',
        b'{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":' * 200 + b"{}" + b"}]}]}]}" * 200,
        b"[" * 5000,
        b"\xff\xfe{}",
    ],
)
def test_json_that_is_no_export_request_is_invalid(body: bytes) -> None:
    with pytest.raises(InvalidOtlpRequest):
        decode(body, Encoding.JSON)


def test_an_empty_json_object_is_an_empty_request() -> None:
    batch = decode(b"{}", Encoding.JSON)
    assert batch.row_count == 0 and batch.ledger.frames == 0


def test_malformed_protobuf_is_invalid() -> None:
    good = logs_request([Record(PAY, nanos(AT))]).SerializeToString()
    for bad in (
        good[:-3],
        b"\x0a\xff\xff\xff\xff\x0f",
        good.replace(b"production", b"producti\xff\xfe"),
    ):
        with pytest.raises(InvalidOtlpRequest, match="not a protobuf ExportLogsServiceRequest"):
            decode(bad)
    deep = b"".join(b"\x0a\x80\x01" for _ in range(200))  # nested past the parser's limit
    with pytest.raises(InvalidOtlpRequest):
        decode(deep)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_any_bytes_decode_or_are_invalid_never_anything_else(data: bytes) -> None:
    for encoding in Encoding:
        try:
            batch = decode(data, encoding)
        except InvalidOtlpRequest:
            continue
        ledger = batch.ledger
        assert ledger.frames == ledger.events + ledger.quarantined + ledger.not_events


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)
_RECORD_KEYS = st.sampled_from(
    ["timeUnixNano", "observedTimeUnixNano", "severityNumber", "severityText", "body",
     "traceId", "spanId", "attributes", "flags", "time_unix_nano", "unknownField"]
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_RECORD_KEYS, _JSON_VALUES, max_size=5), _JSON_VALUES)
def test_any_json_in_the_shape_of_a_request_decodes_or_is_invalid(
    record: dict[str, Any], resource: Any
) -> None:
    """JSON values of any type wherever a log record's fields and a resource go: a
    DecodedBatch or InvalidOtlpRequest, never another exception."""
    document = {"resourceLogs": [{"resource": resource, "scopeLogs": [{"logRecords": [record]}]}]}
    try:
        batch = decode(json.dumps(document).encode(), Encoding.JSON)
    except InvalidOtlpRequest:
        return
    ledger = batch.ledger
    assert ledger.frames == 1 == ledger.events + ledger.quarantined + ledger.not_events


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([PAY, "plain", "@[x", '@[a.b] {"k":"\\u0000"}', "@[a]  {}", ""]),
            st.integers(min_value=0, max_value=30),
            st.booleans(),
        ),
        max_size=30,
    )
)
def test_the_ledger_accounts_for_every_record(records: list[tuple[str, int, bool]]) -> None:
    request = logs_request(
        [Record(body, nanos(AT) if timed else 0, severity) for body, severity, timed in records]
    )
    batch = decode(request.SerializeToString())
    ledger = batch.ledger
    assert ledger.frames == len(records)
    assert ledger.frames == ledger.events + ledger.quarantined + ledger.not_events
    assert (
        len(batch.quarantined) == ledger.quarantined == sum(ledger.quarantined_by_reason.values())
    )
    assert [q.frame_offset for q in batch.quarantined] == sorted(
        q.frame_offset for q in batch.quarantined
    )


def test_the_sdks_own_encoder_gives_bodies_that_decode() -> None:
    """The request the OpenTelemetry Python SDK's OTLP exporters send, from its encoder."""
    provider = LoggerProvider(resource=Resource.create(FIR_RESOURCE))
    memory = InMemoryLogRecordExporter()
    provider.add_log_record_processor(SimpleLogRecordProcessor(memory))
    logger = provider.get_logger("shop.payments")
    logger.emit(body=PAY, severity_number=SeverityNumber.WARN, timestamp=time.time_ns())
    logger.emit(body="GET /items 200", severity_number=SeverityNumber.INFO)
    body = encode_logs(memory.get_finished_logs()).SerializeToString()
    provider.shutdown()
    batch = decode_logs(
        body, encoding=Encoding.PROTOBUF, now=datetime.now(UTC), limits=LIMITS, rules=RULES
    )
    [event] = batch.events
    assert (event.tag, event.app, event.severity, event.proc_id) == (
        "production.pay",
        "shop",
        4,
        FIR_RESOURCE["service.instance.id"],
    )
    assert batch.ledger.not_events_by_kind == {"untagged": 1}


def test_the_ledger_key_is_the_credential_and_the_bodys_digest() -> None:
    body = logs_request([Record(PAY, nanos(AT))]).SerializeToString()
    token, frame_id = ledger_key("basic:logplex", body)
    assert token == "otlp:basic:logplex"
    assert frame_id.startswith("sha256:") and len(frame_id) == 71
    assert ledger_key("basic:logplex", bytes(body)) == (token, frame_id)  # a retry
    assert ledger_key("bearer", body)[1] == frame_id and ledger_key("bearer", body)[0] != token
    assert ledger_key("basic:logplex", body + b"\x00")[1] != frame_id


@pytest.mark.parametrize(
    ("content_type", "encoding"),
    [
        ("application/x-protobuf", Encoding.PROTOBUF),
        ("Application/X-Protobuf; charset=binary", Encoding.PROTOBUF),
        ("application/json", Encoding.JSON),
        ("application/json; charset=utf-8", Encoding.JSON),
        ("application/logplex-1", None),
        ("application/protobuf", None),
        ("text/plain", None),
        (None, None),
    ],
)
def test_the_encoding_comes_from_the_media_type(
    content_type: str | None, encoding: Encoding | None
) -> None:
    assert encoding_of(content_type) is encoding


def test_metrics_and_traces_are_counted() -> None:
    metrics = ExportMetricsServiceRequest()
    scope = metrics.resource_metrics.add().scope_metrics.add()
    gauge = scope.metrics.add()
    gauge.name = "memory"
    gauge.gauge.data_points.add().as_int = 1
    gauge.gauge.data_points.add().as_int = 2
    histogram = scope.metrics.add()
    histogram.histogram.data_points.add().count = 3
    scope.metrics.add().name = "empty"  # no data at all
    assert count_items(Signal.METRICS, metrics.SerializeToString(), Encoding.PROTOBUF) == 3
    as_text = json_format.MessageToJson(metrics).encode()
    assert count_items(Signal.METRICS, as_text, Encoding.JSON) == 3
    traces = ExportTraceServiceRequest()
    spans = traces.resource_spans.add().scope_spans.add()
    for name in ("GET /", "SELECT"):
        spans.spans.add().name = name
    assert count_items(Signal.TRACES, traces.SerializeToString(), Encoding.PROTOBUF) == 2
    with pytest.raises(InvalidOtlpRequest, match="ExportTraceServiceRequest"):
        count_items(Signal.TRACES, b"\x0a\x05\x01", Encoding.PROTOBUF)


def test_a_full_success_leaves_partial_success_unset() -> None:
    for encoding in Encoding:
        content = export_response(Signal.LOGS, encoding)
        response = ExportLogsServiceResponse()
        if encoding is Encoding.JSON:
            assert content == b"{}"
        else:
            response.ParseFromString(content)
            assert not response.HasField("partial_success")


def test_partial_success_counts_what_was_not_stored_and_why() -> None:
    message = partial_success_message({"invalid_json": 2, "bad_tag": 1})
    assert message.startswith(
        "3 log records quarantined, not stored as events (bad_tag: 1, invalid_json: 2)"
    )
    assert partial_success_message({}) == ""
    content = export_response(Signal.LOGS, Encoding.JSON, rejected=3, message=message)
    document = json.loads(content)
    assert document == {"partialSuccess": {"rejectedLogRecords": "3", "errorMessage": message}}
    metrics = ExportMetricsServiceResponse()
    metrics.ParseFromString(
        export_response(Signal.METRICS, Encoding.PROTOBUF, rejected=5, message="m")
    )
    assert (
        metrics.partial_success.rejected_data_points,
        metrics.partial_success.error_message,
    ) == (5, "m")


def test_failures_carry_a_status() -> None:
    status = status_pb2.Status()
    status.ParseFromString(status_body(400, "not a protobuf", Encoding.PROTOBUF))
    assert (status.code, status.message) == (3, "not a protobuf")  # INVALID_ARGUMENT
    document = json.loads(status_body(503, "database unavailable", Encoding.JSON))
    assert document == {"code": 14, "message": "database unavailable"}  # UNAVAILABLE


def test_a_record_whose_resource_names_an_add_on_becomes_typed_rows() -> None:
    """A resource whose ``service.instance.id`` (PROCID) is an add-on's gives its records
    the add-on metrics rule, as on Logplex: rows of platform_metrics, counted typed; the
    same text from an app's dyno is an ordinary line."""
    line = (
        "source=HEROKU_POSTGRESQL_BLUE sample#db_size=8965671096bytes sample#tables=37 "
        "sample#active-connections=73"
    )
    request = logs_request([Record(line, nanos(AT))], {"service.name": "shop"})
    add_resource(
        request,
        [Record(line, nanos(AT))],
        {"service.name": "shop", "service.instance.id": "heroku-postgres"},
    )
    batch = decode(request.SerializeToString())
    metrics = batch.rows["platform_metrics"]
    assert sorted(row.name for row in metrics) == [  # type: ignore[attr-defined]
        "active-connections",
        "db_size",
        "tables",
    ]
    assert batch.ledger.typed_by_kind == {"addon_metrics": 1}
    assert batch.ledger.typed == 1
    assert batch.ledger.not_events_by_kind == {"untagged": 1}
    assert batch.ledger.frames == 2 and batch.ledger.not_events == 1
