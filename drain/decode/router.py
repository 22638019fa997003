r"""Heroku router lines into :class:`~drain.records.RouterRow` rows (pure).

The router logs one line per HTTP request, APP-NAME ``heroku``, PROCID ``router``, MSG in
logfmt (Heroku Dev Center, "HTTP Routing", section "Heroku router log format")::

    at=info method=GET path="/" host=example.herokuapp.com request_id=8601b555-6a83-4c12-...
        fwd="204.204.204.204" dyno=web.1 connect=1ms service=18ms status=200 bytes=13
        protocol=https
    at=error code=H12 desc="Request timeout" method=GET path="/foobar" host=www.example.com
        request_id=f754d2c6-... fwd="108.162.246.83" dyno=web.8 connect=3ms service=30000ms
        status=503 bytes=0

(each one line). The keys read, and their columns:

=============  =====================================================================
key            column (router_requests)
=============  =====================================================================
``at``         ``at``: ``info``, ``warning``, ``error``
``code``       ``code``: the Heroku error code of an error line (``H10`` ... ``H99``)
``desc``       ``description``: its text (``Request timeout``)
``method``     ``method``
``path``       ``path``: path and query string, as logged
``host``       ``host``
``request_id`` ``request_id``
``fwd``        ``client_hash`` (a keyed hash, by default), ``fwd`` (only when asked):
               the client's address (X-Forwarded-For), personal data
``dyno``       ``dyno``: ``web.1``; empty when no dyno served the request
``connect``    ``connect_ms``: ``1ms`` is 1; empty is NULL
``service``    ``service_ms``
``status``     ``status``
``bytes``      ``bytes``
``protocol``   ``protocol``
=============  =====================================================================

Every other key (Router 2.0 adds some; ``sock=client`` on H27/H28 lines) goes to the
``extra`` JSON object with its value as text, never refused; so does a value that should be
a number and is not (``status=abc``: ``status`` NULL, ``extra.status`` ``"abc"``). A line
with a ``code`` also gives a :class:`~drain.records.PlatformEventRow` (drain.decode.platform)
so that H12s are counted with the R14s.

Speed: the common line (``at=info``, the keys above in this order, quoted path and fwd) is
read by one regular expression on the decoded text; any other line by the general logfmt
reader (drain.decode.logfmt). Both give the same row (tests/decode/test_router.py).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Final

import orjson

from drain.decode.logfmt import parse_logfmt
from drain.records import RouterRow

__all__ = ["ROUTER_KEYS", "ClientColumns", "parse_router"]

_new: Final = tuple.__new__

#: the logfmt keys that have a column of their own (see the module docstring)
ROUTER_KEYS: Final = frozenset(
    {
        "at",
        "code",
        "desc",
        "method",
        "path",
        "host",
        "request_id",
        "fwd",
        "dyno",
        "connect",
        "service",
        "status",
        "bytes",
        "protocol",
    }
)

# The common shape, read at once. Values are those the router writes: a path without a
# quote or backslash, times in whole milliseconds, a status of 3 digits.
_COMMON: Final = re.compile(
    r'at=info method=([A-Z]{1,16}) path="([^"\\\x00]*)" host=([^ "\\\x00]{1,255}) '
    r'request_id=([^ "\\\x00]{1,200}) fwd="([^"\\\x00]*)" dyno=([^ "\\\x00]{1,128}) '
    r"connect=(\d{1,9})ms service=(\d{1,9})ms status=([1-9]\d\d) bytes=(\d{1,18}) "
    r"protocol=([a-z0-9.]{1,16})\Z"
)
#: the whole numbers of the common shape's status: one lookup instead of int()
_STATUS: Final = {str(n): n for n in range(100, 1000)}
_MS: Final = re.compile(r"(\d{1,9})(?:ms)?")
_INT: Final = re.compile(r"\d{1,18}")

#: ``client[fwd]``: the client's (hash, raw text) columns as the decoder's settings ask (see
#: :class:`drain.decode.rules.LineRules`): a mapping, so that the decoder's per-body memo
#: answers a known address with one lookup (drain.decode.lines)
ClientColumns = Mapping[str, tuple[bytes | None, str | None]]


def _text(value: bytes | None) -> str | None:
    if value is None:
        return None
    text = value.decode("utf-8", "replace")
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


def parse_router(when: datetime, app: str, msg: bytes, client: ClientColumns) -> RouterRow:
    """Read one router MSG (bytes, without its line end) into a :class:`RouterRow`.

    Args:
        when: the line's TIMESTAMP (UTC, tz-aware): the row's ``event_time``.
        app: the app the batch came from (:attr:`drain.records.EventRow.app`).
        msg: the MSG.
        client: gives the ``client_hash`` and ``fwd`` columns of the ``fwd`` text.

    Returns:
        the row. Never raises, whatever the bytes; a line that is not logfmt gives a row of
        NULLs with what could be read in ``extra``.
    """
    try:
        text = msg.decode("ascii")
    except UnicodeDecodeError:
        text = ""
    match = _COMMON.match(text) if text else None
    if match is not None:
        method, path, host, rid, fwd, dyno, conn, serv, status, size, proto = match.groups()
        client_hash, raw_fwd = client[fwd] if fwd else (None, None)
        return _new(
            RouterRow,
            (
                when,
                app,
                "info",
                method,
                path or None,
                host,
                _STATUS[status],
                int(conn),
                int(serv),
                int(size),
                rid,
                dyno,
                proto,
                None,
                None,
                client_hash,
                raw_fwd,
                None,
            ),
        )
    return _parse_general(when, app, msg, client)


def _number(
    value: str | None, key: str, extra: dict[str, str], pattern: re.Pattern[str]
) -> int | None:
    """The whole number of ``value`` by ``pattern`` (group 1, else all); an empty value is
    None; anything else is None and kept in ``extra[key]``."""
    if value is None or value == "":
        return None
    match = pattern.fullmatch(value)
    if match is None:
        extra[key] = value
        return None
    return int(match.group(1) if match.groups() else match.group())


def _parse_general(when: datetime, app: str, msg: bytes, client: ClientColumns) -> RouterRow:
    known: dict[str, str] = {}
    extra: dict[str, str] = {}
    for raw_key, raw_value in parse_logfmt(msg):
        key = _text(raw_key) or ""
        value = "" if raw_value is None else (_text(raw_value) or "")
        if key in ROUTER_KEYS and key not in known:
            known[key] = value
        elif key not in extra:  # the first of a repeated key wins
            extra[key] = value
    get = known.get
    status = _number(get("status"), "status", extra, _INT)
    if status is not None and status > 32767:  # the column is a smallint
        extra["status"] = str(status)
        status = None
    connect = _number(get("connect"), "connect", extra, _MS)
    service = _number(get("service"), "service", extra, _MS)
    size = _number(get("bytes"), "bytes", extra, _INT)
    fwd = get("fwd")
    client_hash, raw_fwd = client[fwd] if fwd else (None, None)
    return _new(
        RouterRow,
        (
            when,
            app,
            get("at") or None,
            get("method") or None,
            get("path") or None,
            get("host") or None,
            status,
            connect,
            service,
            size,
            get("request_id") or None,
            get("dyno") or None,
            get("protocol") or None,
            get("code") or None,
            get("desc") or None,
            client_hash,
            raw_fwd,
            orjson.dumps(extra).decode() if extra else None,
        ),
    )
