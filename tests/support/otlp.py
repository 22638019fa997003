"""OTLP helpers for the tests: export requests built with the OpenTelemetry project's protobuf
classes, and the OpenTelemetry Python SDK's real OTLP/HTTP log exporter
(``opentelemetry-exporter-otlp-proto-http``) pointed at a drain."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from google.protobuf import json_format
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.logs.v1.logs_pb2 import ResourceLogs
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import (
    BatchLogRecordProcessor,
    LogRecordExporter,
    LogRecordExportResult,
)
from opentelemetry.sdk.resources import Resource

#: the bearer token of the OTLP tests (DRAIN_BEARER_TOKEN)
BEARER = "otlp-test-token-6f1d2c9a8b7e4f30"
BEARER_HEADER = {"Authorization": f"Bearer {BEARER}"}
PROTOBUF = {"Content-Type": "application/x-protobuf"}
JSON = {"Content-Type": "application/json"}
#: a Fir app's resource (semantic conventions, "Heroku": HEROKU_APP_NAME is service.name,
#: HEROKU_DYNO_ID service.instance.id)
FIR_RESOURCE = {
    "service.name": "shop",
    "service.instance.id": "8c4f2b1e-6d3a-4b5c-9e7f-0a1b2c3d4e5f",
    "heroku.app.id": "2daa2797-e42b-4624-9322-ec3f968df4da",
}


def nanos(at: datetime) -> int:
    """``at`` (tz-aware) in nanoseconds since the Unix epoch."""
    return int(at.timestamp()) * 1_000_000_000 + at.microsecond * 1000


@dataclass(frozen=True)
class Record:
    """One log record to put in a request: its body (a string, bytes, or None for an int
    body), its time in nanoseconds (0: unset), its severity number."""

    body: str | bytes | None
    time_unix_nano: int = 0
    severity_number: int = 9
    observed_time_unix_nano: int = 0


def add_resource(
    request: ExportLogsServiceRequest,
    records: Sequence[Record],
    resource: Mapping[str, str] = FIR_RESOURCE,
    scope: str = "shop.payments",
) -> ResourceLogs:
    """Append one ResourceLogs of ``records`` under ``resource`` to ``request``."""
    resource_logs = request.resource_logs.add()
    for key, value in resource.items():
        attribute = resource_logs.resource.attributes.add()
        attribute.key = key
        attribute.value.string_value = value
    scope_logs = resource_logs.scope_logs.add()
    scope_logs.scope.name = scope
    for r in records:
        record = scope_logs.log_records.add()
        record.time_unix_nano = r.time_unix_nano
        record.observed_time_unix_nano = r.observed_time_unix_nano
        record.severity_number = r.severity_number  # type: ignore[assignment]
        if isinstance(r.body, str):
            record.body.string_value = r.body
        elif isinstance(r.body, bytes):
            record.body.bytes_value = r.body
        else:
            record.body.int_value = 42
    return resource_logs


def logs_request(
    records: Sequence[Record], resource: Mapping[str, str] = FIR_RESOURCE
) -> ExportLogsServiceRequest:
    """An ExportLogsServiceRequest of one resource holding ``records``."""
    request = ExportLogsServiceRequest()
    add_resource(request, records, resource)
    return request


def as_json(request: ExportLogsServiceRequest) -> bytes:
    """``request`` in the OTLP JSON encoding: lowerCamelCase keys, enums as integers, 64-bit
    integers as strings, trace and span ids as hex (not the protobuf mapping's base64)."""
    document = json_format.MessageToDict(request, use_integers_for_enums=True)
    for resource in document.get("resourceLogs", []):
        for scope in resource.get("scopeLogs", []):
            for record in scope.get("logRecords", []):
                for key in ("traceId", "spanId"):
                    if key in record:
                        record[key] = base64.b64decode(record[key]).hex().upper()
    return json.dumps(document).encode()


def parse_logs_response(content: bytes, content_type: str) -> ExportLogsServiceResponse:
    """A 200's body as an ExportLogsServiceResponse, in the encoding its Content-Type says."""
    response = ExportLogsServiceResponse()
    if content_type.startswith("application/json"):
        json_format.Parse(content, response)
    else:
        response.ParseFromString(content)
    return response


class _Recording(LogRecordExporter):
    """The real OTLPLogExporter, with the result of each export kept."""

    def __init__(self, inner: OTLPLogExporter) -> None:
        self.inner = inner
        self.results: list[LogRecordExportResult] = []
        self.records = 0
        self._lock = threading.Lock()

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        result = self.inner.export(batch)
        with self._lock:
            self.results.append(result)
            self.records += len(batch)
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


class SdkLogs:
    """The OpenTelemetry Python SDK's logs pipeline: a LoggerProvider with ``resource``, a
    BatchLogRecordProcessor and the OTLP/HTTP (protobuf) log exporter posting to
    ``endpoint``. Blocking (requests): call it from a thread when the drain runs on this
    event loop."""

    def __init__(
        self,
        endpoint: str,
        *,
        headers: Mapping[str, str] | None = None,
        resource: Mapping[str, str] = FIR_RESOURCE,
        gzip: bool = False,
        timeout_s: float = 20.0,
    ) -> None:
        exporter = OTLPLogExporter(
            endpoint=endpoint,
            headers=dict(headers or {}),
            compression=Compression.Gzip if gzip else Compression.NoCompression,
            timeout=timeout_s,
        )
        self.exporter = _Recording(exporter)
        self.provider = LoggerProvider(resource=Resource.create(dict(resource)))
        self.provider.add_log_record_processor(
            BatchLogRecordProcessor(
                self.exporter, max_export_batch_size=512, schedule_delay_millis=60_000
            )
        )
        self.logger = self.provider.get_logger("shop.payments")

    def emit(self, body: str, severity: SeverityNumber = SeverityNumber.INFO) -> None:
        """Log one record now (its body as the app would print it)."""
        self.logger.emit(body=body, severity_number=severity, timestamp=time.time_ns())

    def flush(self) -> list[LogRecordExportResult]:
        """Export what was emitted (one request per 512 records) and return every export's
        result so far."""
        assert self.provider.force_flush(60_000), "the SDK's export did not finish in time"
        return list(self.exporter.results)

    def close(self) -> None:
        self.provider.shutdown()
