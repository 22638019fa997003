"""The dashboard's filters, read from a request's query string (pure: no I/O, no clock).

Every page and ``/api/...`` endpoint takes the same parameters:

- ``range``: ``1h``, ``24h`` (the default), ``7d``, or ``custom`` with ``from`` and ``to``;
- ``from`` / ``to``: ISO 8601 times (``2026-12-01T10:00``, ``2026-12-01T10:00:00Z``); a time
  without an offset is UTC (the dashboard shows every time in UTC); ``to`` defaults to now;
- ``app``: one app (a DRAIN_APPS name, or the drain token of a batch without one), or empty
  for every app.

A preset range ends now; a custom one spans at most :data:`MAX_SPAN_S`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

__all__ = [
    "DEFAULT_PRESET",
    "MAX_FILTER_CHARS",
    "MAX_SPAN_S",
    "PRESETS",
    "Filters",
    "RangeError",
    "parse_filters",
    "parse_time",
]

#: the preset ranges: name -> seconds before now
PRESETS: dict[str, int] = {"1h": 3600, "24h": 86400, "7d": 7 * 86400}
DEFAULT_PRESET = "24h"
#: the longest custom range, in seconds (92 days)
MAX_SPAN_S = 92 * 86400
#: the longest ``app``, ``tag`` or ``reason`` filter accepted, in characters
MAX_FILTER_CHARS = 200


class RangeError(ValueError):
    """A filter parameter cannot be read; the message says which and why (HTTP 400)."""


@dataclass(frozen=True, slots=True)
class Filters:
    """What one request asks for.

    Fields:
        start / end: the time range, UTC, ``start <= t < end``.
        preset: ``1h``, ``24h``, ``7d`` or ``custom``.
        app: one app, or None for every app.
        extra: the page's own parameters (``reason``, ``tag``, ``measure``), stripped; empty
            values left out.
    """

    start: datetime
    end: datetime
    preset: str
    app: str | None
    extra: Mapping[str, str]

    @property
    def span_s(self) -> float:
        """The range's length in seconds."""
        return (self.end - self.start).total_seconds()

    def query(self, **changes: str | None) -> str:
        """The query string that asks for these filters, with ``changes`` (None removes a
        parameter); for links between pages and for the charts' ``/api`` URLs."""
        params: dict[str, str] = {"range": self.preset}
        if self.preset == "custom":
            params["from"] = self.start.strftime("%Y-%m-%dT%H:%M:%SZ")
            params["to"] = self.end.strftime("%Y-%m-%dT%H:%M:%SZ")
        if self.app is not None:
            params["app"] = self.app
        params.update(self.extra)
        for key, value in changes.items():
            if value is None:
                params.pop(key, None)
            else:
                params[key] = value
        return urlencode(params)

    def base_query(self) -> str:
        """:meth:`query` with the range, the app and ``refresh`` only (the page's own
        parameters left out): the navigation bar's links."""
        return self.query(**{k: None for k in self.extra if k != "refresh"})


def parse_time(text: str, name: str) -> datetime:
    """An ISO 8601 time (``Z`` or an offset; none means UTC), in UTC.

    Raises:
        RangeError: ``text`` is not such a time (the message names the parameter ``name``).
    """
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise RangeError(
            f"{name}: expected an ISO 8601 time like 2026-12-01T10:00:00Z, got {text[:40]!r}"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _text(params: Mapping[str, str], name: str) -> str | None:
    value = params.get(name)
    if value is None or not value.strip():
        return None
    if len(value) > MAX_FILTER_CHARS:
        raise RangeError(f"{name}: at most {MAX_FILTER_CHARS} characters")
    return value.strip()


def parse_filters(params: Mapping[str, str], now: datetime, extra: tuple[str, ...] = ()) -> Filters:
    """Read the filters of one request from its query ``params``.

    Args:
        params: the query string's parameters (the last value of each).
        now: the current time, tz-aware.
        extra: the names of the page's own text parameters to keep.

    Raises:
        RangeError: an unknown ``range``, an unreadable or reversed ``from``/``to``, a
            custom range longer than :data:`MAX_SPAN_S`, or a filter over
            :data:`MAX_FILTER_CHARS`.
    """
    now = now.astimezone(UTC)
    preset = (params.get("range") or DEFAULT_PRESET).strip()
    if preset in PRESETS:
        start, end = now - timedelta(seconds=PRESETS[preset]), now
    elif preset == "custom":
        start_text = params.get("from")
        if not start_text:
            raise RangeError("from: a custom range needs from (and optionally to)")
        start = parse_time(start_text, "from")
        end_text = params.get("to")
        end = parse_time(end_text, "to") if end_text else now
        if end <= start:
            raise RangeError("to: must be after from")
        if (end - start).total_seconds() > MAX_SPAN_S:
            raise RangeError(f"from/to: a custom range spans at most {MAX_SPAN_S // 86400} days")
    else:
        raise RangeError(f"range: expected one of {', '.join(PRESETS)} or custom")
    kept = {name: value for name in extra if (value := _text(params, name)) is not None}
    return Filters(start, end, preset, _text(params, "app"), kept)
