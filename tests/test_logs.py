"""drain.logs: every log line is one JSON line for every line splitter."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import orjson
import pytest
import structlog

from drain.logs import batch_logger, configure_logging, escape_line_breakers

#: NEL and the other C1 controls, LINE SEPARATOR, PARAGRAPH SEPARATOR
BREAKERS = "".join(chr(c) for c in range(0x80, 0xA0)) + "\u2028\u2029"


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    """configure_logging into a buffer; the root logger and structlog restored after."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    stream = io.StringIO()
    configure_logging(stream=stream)
    try:
        yield stream
    finally:
        root.handlers, root.level = handlers, level
        structlog.reset_defaults()


def test_escapes_keep_the_value_and_leave_no_breaker() -> None:
    value = {"k\x85": "a" + BREAKERS + "\\" + "\x85" + "é€\U0001f600"}
    text = escape_line_breakers(orjson.dumps(value).decode())
    assert json.loads(text) == value
    assert not [c for c in text if c in BREAKERS]
    assert "é€\U0001f600" in text  # other non-ASCII stays as it is
    assert escape_line_breakers('{"a":1}') == '{"a":1}'


def test_structlog_and_stdlib_lines_escape_c1_controls(log_stream: io.StringIO) -> None:
    batch_logger().info("batch", request_id="req-\x85-id", drain_token="d.\u2028")
    logging.getLogger("drain.web").warning("a line with %s in it", "NEL\x85")
    lines = log_stream.getvalue().splitlines()  # str.splitlines splits at U+0085 too
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["request_id"] == "req-\x85-id" and first["drain_token"] == "d.\u2028"
    assert second["event"] == "a line with NEL\x85 in it"
    assert "\\u0085" in lines[0] and "\\u2028" in lines[0] and "\\u0085" in lines[1]
