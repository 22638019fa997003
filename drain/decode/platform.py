r"""Heroku's platform lines into :class:`~drain.records.PlatformEventRow` rows (pure).

Besides router and metrics lines, Heroku writes into an app's log stream what happens to its
dynos and releases, APP-NAME ``heroku`` and PROCID the dyno (``web.1``), ``api``,
``logplex`` and so on, and log-shuttle (PROCID ``log-shuttle``) reports its own losses.
Each such line becomes one row of ``platform_events``: its PROCID (``dyno``), a ``kind``,
the Heroku error code when it has one, the MSG as ``text`` and what was read from it as
``details`` (JSON). The shapes, from Heroku Dev Center ("Heroku Error Codes", "Dynos",
"Releases") and the samples in tests/data/samples:

=========  ==================================================================  ==============
kind       MSG                                                                  details
=========  ==================================================================  ==============
error      ``Error R14 (Memory quota exceeded)``,                               ``desc``,
           ``Error R10 (Boot timeout) -> Web process failed to bind to $PORT``  ``detail``;
           ``Error L10 (output buffer overflow): 1 messages dropped since …``,  for L10 ... L15
           ``Error L12: 7100 messages dropped since …`` (log-shuttle)           ``lost``,
                                                                                ``since``
state      ``State changed from up to crashed``                                 ``from``, ``to``
exit       ``Process exited with status 137``, ``Process exited``               ``status``
start      ``Starting process with command `bundle exec puma```                 ``command``
stop       ``Stopping all processes with SIGTERM``                              ``signal``
restart    ``Restarting``, ``Cycling``
memory     ``Process running mem=1028M(103.3%)``                               ``mem_bytes``,
                                                                                ``percent``
release    ``Release v42 created by user jane@example.com`` (``api``)           ``version``
deploy     ``Deploy 2c3d3ad by user jane@example.com`` (``api``)                ``commit``
scale      ``Scaled to web@2:Standard-1X by user …`` (``api``)
config     ``Set FOO, BAR config vars by user …`` (``api``)
build      ``Build started by user …``, ``Build succeeded`` (``api``)
other      anything else from APP-NAME ``heroku`` (kept as text)
=========  ==================================================================  ==============

The router's error lines (``at=error code=H12``) give an ``error`` event too, built by
:func:`router_event` from the router row. ``api`` lines name the Heroku user who acted
(an e-mail address) in ``text``; drain keeps them as Heroku sent them.

:data:`CODES` names every code of Heroku Dev Center's "Heroku Error Codes" (H10 ... L15),
for messages and metric labels.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Final

import orjson

from drain.decode.loss import parse_lost_line
from drain.records import PlatformEventRow, RouterRow

__all__ = [
    "CODES",
    "KIND_ERROR",
    "MAX_TEXT",
    "code_label",
    "parse_platform",
    "router_event",
]

_new: Final = tuple.__new__

#: longest ``text`` kept, in characters
MAX_TEXT: Final = 2000

KIND_ERROR: Final = "error"

#: the Heroku error codes and their names (Heroku Dev Center, "Heroku Error Codes", 2024)
CODES: dict[str, str] = {
    "H10": "App crashed",
    "H11": "Backlog too deep",
    "H12": "Request timeout",
    "H13": "Connection closed without response",
    "H14": "No web dynos running",
    "H15": "Idle connection",
    "H16": "(No longer in use)",
    "H17": "Poorly formatted HTTP response",
    "H18": "Server Request Interrupted",
    "H19": "Backend connection timeout",
    "H20": "App boot timeout",
    "H21": "Backend connection refused",
    "H22": "Connection limit reached",
    "H23": "Endpoint misconfigured",
    "H24": "Forced close",
    "H25": "HTTP Restriction",
    "H26": "Request Error",
    "H27": "Client Request Interrupted",
    "H28": "Client Connection Idle",
    "H31": "Misdirected Request",
    "H32": "TLS Certificate Mismatch",
    "H80": "Maintenance mode",
    "H81": "Blank app",
    "H82": "You've used up your dyno hour pool",
    "H83": "Planned Service Degradation",
    "H99": "Platform error",
    "R10": "Boot timeout",
    "R12": "Exit timeout",
    "R13": "Attach error",
    "R14": "Memory quota exceeded",
    "R15": "Memory quota vastly exceeded",
    "R16": "Detached",
    "R17": "Checksum error",
    "R99": "Platform error",
    "L10": "Drain buffer overflow",
    "L11": "Tail buffer overflow",
    "L12": "Local buffer overflow",
    "L13": "Local delivery error",
    "L14": "Certificate validation error",
    "L15": "Tail buffer temporarily unavailable",
}

_ERROR: Final = re.compile(r"Error ([HRL]\d\d)\b(?: \(([^)]{0,200})\))?:?(?: -> (.*))?", re.DOTALL)
_STATE: Final = re.compile(r"State changed from (\S{1,64}) to (\S{1,64})")
_EXIT: Final = re.compile(r"Process exited(?: with status (-?\d{1,9}))?")
_START: Final = re.compile(r"Starting process with command (.*)", re.DOTALL)
_STOP: Final = re.compile(r"Stopping (?:all processes|process) with (SIG[A-Z0-9]{1,10})")
_MEMORY: Final = re.compile(
    r"Process running mem=(\d{1,12}(?:\.\d{1,6})?)(M|MB|G|GB)\((\d{1,6}(?:\.\d{1,6})?)%\)"
)
_RELEASE: Final = re.compile(r"Release (v\d{1,12}) created by")
_DEPLOY: Final = re.compile(r"Deploy ([0-9a-f]{4,64}) by")
#: the logging errors that carry a count (drain.decode.loss)
_COUNTED: Final = frozenset({"L10", "L11", "L12", "L13"})
_MEGA: Final = {"M": 1048576, "MB": 1048576, "G": 1073741824, "GB": 1073741824}


def code_label(code: str | None) -> str:
    """A bounded metric label for ``code``: the code when :data:`CODES` has it, ``none``
    when there is no code, else ``other``."""
    if code is None:
        return "none"
    return code if code in CODES else "other"


def _json(details: dict[str, object]) -> str | None:
    return orjson.dumps(details).decode() if details else None


def _classify(text: str) -> tuple[str, str | None, dict[str, object]]:
    """(kind, code, details) of a platform MSG (see the module docstring)."""
    if text.startswith("Error "):
        match = _ERROR.match(text)
        if match is not None:
            code, desc, detail = match.groups()
            details: dict[str, object] = {}
            if desc:
                details["desc"] = desc
            if detail:
                details["detail"] = detail[:MAX_TEXT]
            if code in _COUNTED:
                report = parse_lost_line(text.encode("utf-8", "replace"))
                if report is not None and report.source == code:
                    details["lost"] = report.lost
                    if report.since is not None:
                        details["since"] = report.since.isoformat()
                    if report.drain is not None:
                        details["drain"] = report.drain
            return KIND_ERROR, code, details
    first = text[:1]
    if first == "S":
        if (match := _STATE.match(text)) is not None:
            return "state", None, {"from": match.group(1), "to": match.group(2)}
        if (match := _START.match(text)) is not None:
            return "start", None, {"command": match.group(1)[:MAX_TEXT]}
        if (match := _STOP.match(text)) is not None:
            return "stop", None, {"signal": match.group(1)}
        if text.startswith(("Scaled to ", "Scale to ")):
            return "scale", None, {}
        if text.startswith("Set ") and " config vars" in text:
            return "config", None, {}
    elif first == "P":
        if (match := _EXIT.match(text)) is not None:
            status = match.group(1)
            return "exit", None, {} if status is None else {"status": int(status)}
        if (match := _MEMORY.match(text)) is not None:
            amount, unit, percent = match.groups()
            return (
                "memory",
                None,
                {"mem_bytes": round(float(amount) * _MEGA[unit]), "percent": float(percent)},
            )
    elif first == "R":
        if text.startswith(("Restarting", "Restart ")):
            return "restart", None, {}
        if (match := _RELEASE.match(text)) is not None:
            return "release", None, {"version": match.group(1)}
        if text.startswith("Remove ") and " config vars" in text:
            return "config", None, {}
    elif first == "C":
        if text.startswith("Cycling"):
            return "restart", None, {}
    elif first == "D":
        if (match := _DEPLOY.match(text)) is not None:
            return "deploy", None, {"commit": match.group(1)}
    elif first == "B" and text.startswith("Build "):
        return "build", None, {}
    return "other", None, {}


def parse_platform(when: datetime, app: str, dyno: str, msg: bytes) -> PlatformEventRow:
    """The :class:`PlatformEventRow` of one platform line.

    Args:
        when: the line's TIMESTAMP (UTC, tz-aware).
        app: the app the batch came from (:attr:`drain.records.EventRow.app`).
        dyno: the line's PROCID as text (``web.1``, ``api``, ``logplex``, ``log-shuttle``).
        msg: the MSG (bytes, without its line end).

    Never raises, whatever the bytes (invalid UTF-8 and U+0000 are replaced).
    """
    text = msg.decode("utf-8", "replace")
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    kind, code, details = _classify(text)
    return _new(PlatformEventRow, (when, app, dyno, code, kind, text[:MAX_TEXT], _json(details)))


_FWD: Final = re.compile(r'fwd=(?:"(?:[^"\\]|\\.)*+"?|\S*+)')


def router_event(row: RouterRow, msg: bytes, keep_fwd: bool) -> PlatformEventRow:
    """The ``error`` event of a router line that carries a ``code`` (``at=error code=H12``),
    with what the router said about the request in ``details``. Its ``text`` is the MSG
    with the client's address replaced by ``fwd=(hidden)`` unless ``keep_fwd``
    (DRAIN_ROUTER_FWD=raw): the address is personal data."""
    details: dict[str, object] = {}
    for key, value in (
        ("desc", row.description),
        ("method", row.method),
        ("path", row.path),
        ("host", row.host),
        ("status", row.status),
        ("service_ms", row.service_ms),
        ("request_id", row.request_id),
        ("dyno", row.dyno),
    ):
        if value is not None:
            details[key] = value
    text = msg.decode("utf-8", "replace").replace("\x00", "\ufffd")
    if not keep_fwd:
        text = _FWD.sub("fwd=(hidden)", text)
    return _new(
        PlatformEventRow,
        (row.event_time, row.app, "router", row.code, KIND_ERROR, text[:MAX_TEXT], _json(details)),
    )
