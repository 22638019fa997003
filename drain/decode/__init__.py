"""The decode rules, one module per rule (pure: no I/O, no clock, no settings).

- :mod:`drain.decode.framing`: octet-counted frames of a body (RFC 6587 §3.4.1);
- :mod:`drain.decode.syslog`: one syslog line, Heroku's RFC 5424 dialect (RFC 5424 §6);
- :mod:`drain.decode.events`: the ``@[tag] {json}`` event convention inside MSG;
- :mod:`drain.decode.logfmt`: the ``key=value`` lines of Heroku's router and metrics;
- :mod:`drain.decode.router`: Heroku router lines (router_requests);
- :mod:`drain.decode.metrics`: runtime and add-on metrics lines (platform_metrics);
- :mod:`drain.decode.platform`: platform errors and state changes (platform_events);
- :mod:`drain.decode.loss`: Heroku's own reports of lines lost upstream (L10 ... L15);
- :mod:`drain.decode.rules`: which of Heroku's lines are kept, and how;
- :mod:`drain.decode.lines`: what one log line becomes, whichever input it came in;
- :mod:`drain.decode.limits`: the bounds a decoder applies;
- :mod:`drain.decode.scan`: byte searches of the per-line path that cost one C call.

An input (:mod:`drain.inputs`) composes them; nothing here knows where the bytes came from.
"""

from drain.decode.events import RejectedEvent, TaggedEvent, parse_event
from drain.decode.framing import Frame, encode_frames, iter_frames, split_frames
from drain.decode.limits import DecodeLimits
from drain.decode.lines import LineDecoder, LineResult, TypedLine, line_decoder, quarantine_row
from drain.decode.logfmt import parse_logfmt
from drain.decode.loss import BatchLoss, batch_loss, is_loss_line, parse_lost_line
from drain.decode.rules import ClientMode, LineRules, parse_exclusions
from drain.decode.syslog import Line, SyslogMessage, parse_line, parse_timestamp, split_line

__all__ = [
    "BatchLoss",
    "ClientMode",
    "DecodeLimits",
    "Frame",
    "Line",
    "LineDecoder",
    "LineResult",
    "LineRules",
    "RejectedEvent",
    "SyslogMessage",
    "TaggedEvent",
    "TypedLine",
    "batch_loss",
    "encode_frames",
    "is_loss_line",
    "iter_frames",
    "line_decoder",
    "parse_event",
    "parse_exclusions",
    "parse_line",
    "parse_logfmt",
    "parse_lost_line",
    "parse_timestamp",
    "quarantine_row",
    "split_frames",
    "split_line",
]
