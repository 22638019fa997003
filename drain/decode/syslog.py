r"""One syslog line as Heroku's Logplex sends it (RFC 5424 §6, Heroku's dialect).

Grammar accepted (one SYSLOG-MSG, the payload of one frame)::

    <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [STRUCTURED-DATA] MSG

- PRI: 1-3 digits, 0..191, no leading zero except ``0``; facility = PRI // 8,
  severity = PRI % 8 (RFC 5424 §6.2.1). VERSION must be ``1``.
- TIMESTAMP: RFC 3339 ``full-date "T" full-time`` with 0..9 fractional digits (kept to the
  microsecond, extra digits truncated), ``Z`` or ``±HH:MM`` (``-00:00`` is UTC), upper-case
  ``T`` and ``Z`` as RFC 5424 §6.2.3 requires. Converted to a tz-aware UTC datetime. The
  NILVALUE ``-`` is refused: the drain files every event by its time.
- HOSTNAME (1-255), APP-NAME (1-48), PROCID (1-128), MSGID (1-32): PRINTUSASCII
  (bytes 33..126), kept as received (``-`` stays ``"-"``).
- STRUCTURED-DATA is optional, because Heroku's dialect has no such field. After MSGID's
  space:

  1. the rest is ``-`` or starts with ``- ``: STRUCTURED-DATA is the NILVALUE and MSG follows
     the space. Older HTTPS drains and log-shuttle send this::

         <190>1 2014-07-17T12:59:25.223980+00:00 d.8f7a4b11-... app web.2 - - Started GET "/"
         <190>1 2026-11-30T22:43:17.046295+00:00 shuttle token shuttle - - hello world

  2. the rest starts with ``[`` and is a well-formed run of SD-ELEMENTs (RFC 5424 §6.3,
     ``\"``, ``\\`` and ``\]`` escaped in PARAM-VALUE) followed by SP or the end, *and* at
     least one element has an SD-PARAM: that is STRUCTURED-DATA (kept as text), MSG follows::

         <133>1 2013-05-24T06:48:51.740194+00:00 host token process - [meta sequenceId="518"] msg
         <134>1 2024-01-02T03:04:05Z host app web.2 - [meta sequenceId="1"] with structured data
         ... - [meta sequenceId="518"][meta somethingElse="blah\]"] this is the message

  3. otherwise everything after MSGID's space is MSG (Heroku's dialect). Application
     output often starts with a bracketed word that is not structured data, and broken SD
     stays in MSG rather than losing the line::

         <190>1 2022-06-13T14:52:23.621815+00:00 host app web.1 - [GIN] 2022/06/13 - 14:52:23 ...
         <134>1 2012-11-30T06:45:26+00:00 host app postgres.20595 - [BLUE] duration: 153109.7 ...
         <134>1 2023-06-05T19:33:14+00:00 host app postgres.1105947 - [YELLOW] [12-2] \tSELECT
         <133>1 2013-05-24T06:48:51.740194+00:00 host token process - |meta sequenceId="518"] ...
         <133>1 2013-05-24T06:48:51.740194+00:00 host token process - [meta sequenceId="518"]|m ...
         ... - [meta sequenceId="518"][meta somethingElse="blah\]] this is the message

     The last one is heroku/x's "quoted-structured-data" fixture: its PARAM-VALUE never
     closes its quote, so it is not well-formed SD and stays in MSG.

  A Heroku-dialect MSG that itself starts with ``- `` or with a well-formed SD element that
  has a parameter (``[a b="c"] text``) is read as case 1 or 2; no sample does that. A MSG
  that case 3 leaves starting with a run of SD-ELEMENTs without SD-PARAMs and then a tagged
  line (``[exampleSDID@32473] @[t] {}``: RFC 5424 allows an SD-ELEMENT with no SD-PARAM)
  is read past that run by the Logplex input (:func:`structured_data_end`).
- MSG: any bytes, possibly empty. One trailing LF is removed, then one trailing CR
  (CRLF lines). A line that ends right after MSGID (no SP) has an empty MSG.

Errors are :class:`~drain.errors.LineError` naming the field and the 1-based byte column where
it was expected, e.g. ``expected APP-NAME (1-48 printable US-ASCII characters) at column 52``.

This module owns the header grammar and its tables. :func:`split_line` checks a line and
returns its fields as bytes (the Logplex decoder's hot path builds only what it keeps);
:func:`parse_line` is the same, decoded to text.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Final, NamedTuple

from drain.errors import LineError

__all__ = [
    "APP_NAME_MAX",
    "HOSTNAME_MAX",
    "MSGID_MAX",
    "PROCID_MAX",
    "Line",
    "SyslogMessage",
    "parse_line",
    "parse_timestamp",
    "split_fields",
    "split_line",
    "strip_eol",
    "structured_data_end",
]

_PRINTUSASCII: Final = bytes(range(33, 127))
#: SP and PRINTUSASCII to SP, every other byte to NUL: a run of bytes is all SP and
#: PRINTUSASCII when its ``translate`` by this table is all SP (``_SPACES.startswith``)
_PRINTABLE_TO_SP: Final = bytes(
    32 if byte == 32 or byte in _PRINTUSASCII else 0 for byte in range(256)
)

#: RFC 5424 §6 field limits, in bytes.
HOSTNAME_MAX: Final = 255
APP_NAME_MAX: Final = 48
PROCID_MAX: Final = 128
MSGID_MAX: Final = 32

#: as many SPs as the four fields above and their three separators can hold:
#: ``_SPACES.startswith(run)`` tells that a run is all SP, in one compiled call
_SPACES: Final = b" " * (HOSTNAME_MAX + APP_NAME_MAX + PROCID_MAX + MSGID_MAX + 3)

_new: Final = tuple.__new__  # builds a NamedTuple without its Python-level __new__

#: ``b"<190>1"`` -> 190: PRI and VERSION of a well-formed line in one dict lookup.
_PRI_VERSION: Final = {b"<%d>1" % pri: pri for pri in range(192)}


class Line(NamedTuple):
    """A syslog line checked and split, its header fields still bytes (:func:`split_line`).

    Fields:
        pri: PRI, 0..191 (facility = pri >> 3, severity = pri & 7).
        timestamp: TIMESTAMP in UTC, tz-aware.
        hostname, app_name, proc_id, msg_id: 1..max printable US-ASCII bytes each.
        structured_data: STRUCTURED-DATA text, ``"-"`` (NILVALUE) or None (absent).
        msg: MSG without its trailing LF / CRLF.
    """

    pri: int
    timestamp: datetime
    hostname: bytes
    app_name: bytes
    proc_id: bytes
    msg_id: bytes
    structured_data: str | None
    msg: bytes


class SyslogMessage(NamedTuple):
    """A parsed syslog line (RFC 5424 §6).

    Fields:
        pri: PRI, 0..191.
        facility: PRI // 8, 0..23.
        severity: PRI % 8, 0..7.
        timestamp: TIMESTAMP in UTC, tz-aware, microsecond precision.
        hostname, app_name, proc_id, msg_id: the header fields as received (``"-"`` = nil).
        structured_data: STRUCTURED-DATA text when present (e.g. ``'[meta a="1"]'``),
            ``"-"`` when sent as the NILVALUE, None when absent (Heroku's dialect).
        msg: MSG bytes without the trailing LF / CRLF.
    """

    pri: int
    facility: int
    severity: int
    timestamp: datetime
    hostname: str
    app_name: str
    proc_id: str
    msg_id: str
    structured_data: str | None
    msg: bytes


def parse_timestamp(ts: bytes) -> datetime | None:
    """Parse an RFC 3339 / RFC 5424 §6.2.3 TIMESTAMP to a tz-aware UTC datetime.

    Accepts ``YYYY-MM-DDTHH:MM:SS[.1-9 digits](Z|±HH:MM)``; returns None for anything
    else (NILVALUE, lower-case ``t``/``z``, missing offset, leap second 60, Feb 30...),
    and for a valid time whose UTC instant falls outside years 1..9999 (Python's datetime
    range). Never raises, whatever the bytes.

    The separators, the zone and the fraction length are checked at fixed positions; the
    digits and ranges are checked by ``datetime.fromisoformat`` (which alone would accept
    more ISO 8601 shapes than RFC 3339 has), which is faster than a regex or ``int()`` on
    slices (bench/README.md, "TIMESTAMP"). tests/decode/test_syslog.py checks it against a
    regex reference with hypothesis.
    """
    n = len(ts)
    if n < 20 or ts[4] != 45 or ts[7] != 45 or ts[10] != 84 or ts[13] != 58 or ts[16] != 58:
        return None
    if ts[n - 1] == 90:  # "Z"
        zone = n - 1
    else:
        zone = n - 6
        # ±HH:MM with HH <= 23 and MM <= 59 (fromisoformat would take minute 60..99).
        if zone < 19 or ts[zone] not in b"+-" or ts[n - 3] != 58:
            return None
        if (ts[zone + 1] - 48) * 10 + ts[zone + 2] - 48 > 23 or ts[n - 2] > 53:
            return None
    if ts[19] == 46:  # "."
        # fromisoformat alone would take "31.123456T89": check the fraction's digits here.
        if not 1 <= zone - 20 <= 9:
            return None
        for at in range(20, zone):
            if not 48 <= ts[at] <= 57:
                return None
    elif zone != 19:
        return None
    try:
        when = _FROMISOFORMAT(ts.decode("ascii"))
        return when if when.tzinfo is _UTC else when.astimezone(_UTC)
    except (ValueError, OverflowError):
        # ValueError: out-of-range digits, non-ASCII bytes (UnicodeDecodeError).
        # OverflowError: a valid RFC 3339 time whose UTC instant is outside datetime's
        # years 1..9999, e.g. 9999-12-31T23:59:59-23:59 or 0001-01-01T00:00:00+00:01.
        return None


# RFC 5424 §6.3: SD-NAME = 1*32 PRINTUSASCII except '=', SP, ']', '"'.
_SD_NAME: Final = rb"[!#-<>-\\^-~]{1,32}"
_PARAM_VALUE: Final = rb'(?:[^"\\\]]|\\.)*+'
_SD_ELEMENT: Final = rb"\[" + _SD_NAME + rb"(?: " + _SD_NAME + rb'="' + _PARAM_VALUE + rb'")*+\]'
# Possessive quantifiers (Python 3.11): the grammar never needs to give back what it
# matched, and without backtracking a long run of elements that is not followed by SP
# fails in linear time.
_STRUCTURED_DATA: Final = re.compile(rb"(?:" + _SD_ELEMENT + rb")++(?= |\Z)", re.DOTALL)

# C statics when compiled (a module global would be a dict lookup per use)
_FROMISOFORMAT: Final = datetime.fromisoformat
_UTC: Final = UTC

_PRI_EXPECTED: Final = "PRI (<0> to <191>, no leading zeros)"
_TS_EXPECTED: Final = "TIMESTAMP (RFC 3339 date-time with Z or +HH:MM; NILVALUE not accepted)"
_FIELDS: Final = (
    ("HOSTNAME", HOSTNAME_MAX),
    ("APP-NAME", APP_NAME_MAX),
    ("PROCID", PROCID_MAX),
    ("MSGID", MSGID_MAX),
)


#: ``Line``'s fields as a plain tuple: what :func:`split_fields` gives (a C struct between
#: compiled modules, no object)
LineFields = tuple[int, datetime, bytes, bytes, bytes, bytes, str | None, bytes]


def split_line(line: bytes) -> Line:
    """Check one SYSLOG-MSG's header (PRI .. MSGID) and split it into its fields and MSG.

    One split finds the six header separators (MSG is not scanned), one dict lookup reads
    PRI and VERSION, one translate checks the four PRINTUSASCII fields; what follows MSGID
    is read by the STRUCTURED-DATA rule of the module docstring. A line that ends right
    after MSGID (no SP) has an empty MSG. This is the one implementation of the header
    grammar (:func:`split_fields`, as a :class:`Line`); :func:`parse_line` decodes its
    fields to text.

    Raises:
        LineError: the header does not parse; names the first wrong field and its column.
    """
    return _new(Line, split_fields(line))


def split_fields(line: bytes) -> LineFields:
    """:func:`split_line`'s fields as a plain tuple (:data:`LineFields`), for the decoders'
    per-line path. Raises LineError as :func:`split_line` does."""
    parts = line.split(b" ", 6)
    if len(parts) == 7:
        head, ts, host, app, proc, msgid, rest = parts
    elif len(parts) == 6:
        head, ts, host, app, proc, msgid = parts
        msgid = strip_eol(msgid)
        rest = b""
    else:
        raise _header_error(parts)
    pri = _PRI_VERSION.get(head)
    fields_start = len(head) + len(ts) + 2
    fields_stop = fields_start + len(host) + len(app) + len(proc) + len(msgid) + 3
    if (
        pri is not None
        and 0 < len(host) <= HOSTNAME_MAX
        and 0 < len(app) <= APP_NAME_MAX
        and 0 < len(proc) <= PROCID_MAX
        and 0 < len(msgid) <= MSGID_MAX
        # HOSTNAME SP APP-NAME SP PROCID SP MSGID, in one slice (the split leaves no other
        # SP): every byte printable. translate with a table, no deletechars: CPython builds
        # no table of its own per call, as it does for translate(None, deletechars)
        and _SPACES.startswith(line[fields_start:fields_stop].translate(_PRINTABLE_TO_SP))
    ):
        timestamp = parse_timestamp(ts)
        if timestamp is not None:
            if rest[-1:] == b"\n":  # one trailing LF, then one CR (CRLF lines)
                rest = rest[:-1]
            if rest[-1:] == b"\r":
                rest = rest[:-1]
            if rest.startswith(b"-") and (len(rest) == 1 or rest[1] == 32):
                return pri, timestamp, host, app, proc, msgid, "-", rest[2:]
            if rest.startswith(b"["):
                sd, msg = _split_structured_data(rest)
                return pri, timestamp, host, app, proc, msgid, sd, msg
            return pri, timestamp, host, app, proc, msgid, None, rest
    raise _header_error(parts)


def strip_eol(data: bytes) -> bytes:
    """``data`` without one trailing LF, then one trailing CR (CRLF lines): the line end
    that is not part of a MSG, for every input (an OTLP log record's body too)."""
    if data[-1:] == b"\n":
        data = data[:-1]
    if data[-1:] == b"\r":
        data = data[:-1]
    return data


def _header_error(parts: list[bytes]) -> LineError:
    """The LineError of a header that :func:`split_line` refused: the first wrong
    field, checked one at a time with the same tables (the line's end stripped of its
    LF/CRLF when a header field is the last part)."""
    if len(parts) < 7:
        parts = [*parts[:-1], strip_eol(parts[-1])]
    head = parts[0]
    close = head.find(b">", 1, 5)
    # not head[1:close] when close is -1: mypyc's bytes slice raises SystemError when the
    # stop lands before the start (CPython gives b"")
    digits = head[1:close] if close > 0 else b""
    if (
        head[:1] != b"<"
        or close < 0
        or not digits.isdigit()
        or (digits[0] == 48 and len(digits) > 1)
        or int(digits) > 191
    ):
        return LineError("PRI", 1, _PRI_EXPECTED)
    if head[close + 1 :] != b"1" or len(parts) == 1:
        return LineError("VERSION", close + 2, 'VERSION "1" followed by a space')
    column = len(head) + 2
    if parse_timestamp(parts[1]) is None:
        return LineError("TIMESTAMP", column, _TS_EXPECTED)
    column += len(parts[1]) + 1
    for index in range(4):
        name, limit = _FIELDS[index]
        raw = parts[2 + index] if len(parts) > 2 + index else b""
        if not raw or len(raw) > limit or raw.translate(None, _PRINTUSASCII):
            return LineError(name, column, f"{name} (1-{limit} printable US-ASCII characters)")
        column += len(raw) + 1
    # split_line refuses only what one of the checks above refuses
    raise AssertionError(f"header refused without a reason: {parts[:6]!r}")


def structured_data_end(data: bytes) -> int:
    """The length of the well-formed run of SD-ELEMENTs (RFC 5424 §6.3) at the start of
    ``data`` that is followed by SP or the end, SD-ELEMENTs without SD-PARAMs included
    (``[exampleSDID@32473]``); -1 when ``data`` does not start with one. The Logplex input
    uses it to read a tagged line whose SD has no SD-PARAM (rule 3 keeps such a run in MSG).
    Linear time."""
    match = _STRUCTURED_DATA.match(data)
    return -1 if match is None else match.end()


def _split_structured_data(rest: bytes) -> tuple[str | None, bytes]:
    """(STRUCTURED-DATA, MSG) of a rest that starts with ``[``: SD when the run of
    SD-ELEMENTs is well-formed and holds at least one SD-PARAM, else everything is MSG."""
    match = _STRUCTURED_DATA.match(rest)
    sd = match.group() if match is not None else b""
    if b"=" in sd:  # SD-NAMEs cannot hold "=": at least one SD-PARAM
        try:
            return sd.decode("utf-8"), rest[len(sd) + 1 :]
        except UnicodeDecodeError:
            return None, rest
    return None, rest


def parse_line(line: bytes) -> SyslogMessage:
    """Parse one SYSLOG-MSG (the bytes of one frame) in Heroku's RFC 5424 dialect.

    See the module docstring for the grammar and the STRUCTURED-DATA rule.

    Raises:
        LineError: the header (PRI .. MSGID) does not parse; names the field and column.
    """
    pri, timestamp, host, app, proc, msgid, structured_data, msg = split_line(line)
    return SyslogMessage(
        pri,
        pri >> 3,
        pri & 7,
        timestamp,
        host.decode("ascii"),
        app.decode("ascii"),
        proc.decode("ascii"),
        msgid.decode("ascii"),
        structured_data,
        msg,
    )
