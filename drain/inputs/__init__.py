"""Inputs: one module per wire format, each turning a request body into rows and a ledger
(pure: no I/O).

- :mod:`drain.inputs.logplex`: ``application/logplex-1`` bodies (Logplex, log-shuttle);
- :mod:`drain.inputs.otlp`: OTLP/HTTP export requests (Fir telemetry drains): log records
  decoded, metrics and traces counted, and the OTLP answers;
- :mod:`drain.inputs.dump`: a readable account of how a Logplex body decodes, frame by frame
  (``drain parse``, the golden files).
"""

from drain.inputs.dump import dump_body, dump_jsonl
from drain.inputs.logplex import (
    KIND_LOGPLEX_ERROR,
    KIND_MALFORMED_LINE,
    KIND_UNTAGGED,
    LOGPLEX_MEDIA_TYPE,
    FrameDecoder,
    FrameOutcome,
    decode_body,
    frame_decoder,
    iter_outcomes,
)

__all__ = [
    "KIND_LOGPLEX_ERROR",
    "KIND_MALFORMED_LINE",
    "KIND_UNTAGGED",
    "LOGPLEX_MEDIA_TYPE",
    "FrameDecoder",
    "FrameOutcome",
    "decode_body",
    "dump_body",
    "dump_jsonl",
    "frame_decoder",
    "iter_outcomes",
]
