r"""Heroku's metrics lines into :class:`~drain.records.MetricRow` rows, one per sample (pure).

Two kinds of line carry ``sample#NAME=VALUE`` pairs in logfmt:

- **runtime metrics** (Heroku Labs ``log-runtime-metrics``; Heroku Dev Center, "Log Runtime
  Metrics"): APP-NAME ``heroku``, PROCID the dyno, about every 20 seconds per dyno::

      source=web.1 dyno=heroku.2808254.d97d0ea7-cf3d-411b-b453-d2943a50b456
          sample#memory_total=21.00MB sample#memory_rss=21.22MB sample#memory_cache=0.00MB
          sample#memory_swap=0.00MB sample#memory_pgpgin=348836pages
          sample#memory_pgpgout=343403pages sample#memory_quota=512.00MB
      source=web.1 dyno=heroku.2808254.d97d0ea7-... sample#load_avg_1m=2.46 ...

- **add-on metrics** (Heroku Dev Center, "Heroku Postgres Metrics Logs", "Heroku Redis");
  PROCID ``heroku-postgres``, ``heroku-redis`` or ``heroku-kafka`` (:data:`ADDON_PROCESSES`),
  APP-NAME ``app``::

      source=HEROKU_POSTGRESQL_YELLOW addon=postgresql-reticulated-12345
          sample#db_size=10311979679bytes sample#active-connections=11
          sample#index-cache-hit-rate=0.99814 sample#memory-total=8036340kB ...

(each one line). ``source``, ``dyno`` and ``addon`` fill the columns of the same names; every
``sample#`` becomes a row, whatever its name (an unknown metric is kept, never refused);
other keys are not stored.

The value is stored as a number in a base unit, named in ``unit``:

=================  ==========  ==============================================================
suffix as sent     unit        value
=================  ==========  ==============================================================
``MB``             bytes       times 1,048,576 (the dyno quota ``512.00MB`` is 512 MiB)
``kB`` / ``KB``    bytes       times 1,024 (Postgres and Redis memory, as /proc/meminfo)
``GB``             bytes       times 1,073,741,824
``bytes``, ``B``   bytes       as sent
``pages``          pages       as sent (4 KiB memory pages paged in or out)
``ms`` / ``s``     seconds     times 0.001 / as sent
none               by name     ``ratio`` for ``*rate``, ``*ratio``, ``*percentage*`` (as sent,
                               a fraction: ``index-cache-hit-rate=0.99814``); ``load`` for
                               load averages; ``per_second`` for ``*iops``, ``*per-second``;
                               ``bytes`` for ``*disk*`` (``tmp-disk-used=543600640``);
                               ``count`` for the rest (connections, tables, keys)
another            as sent     the number as sent, the suffix lower-cased as its unit
=================  ==========  ==============================================================

A value that is not a number (``sample#x=abc``) is kept with ``value`` NULL, ``unit`` ``""``
and the text in ``raw``. Speed: the line is decoded once and split at ``" sample#"``; a
per-body memo keeps the columns of each ``name=value`` seen (many repeat from line to line).
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Final

from drain.records import MetricRow

__all__ = ["ADDON_PROCESSES", "UnitMemo", "parse_metrics", "unit_of"]

_new: Final = tuple.__new__

#: the PROCIDs of the add-ons whose metrics lines are read
ADDON_PROCESSES: Final = frozenset({b"heroku-postgres", b"heroku-redis", b"heroku-kafka"})


class UnitMemo(dict[str, tuple[str, float | None, str, str | None]]):
    """The decoder's per-body memo: a sample's ``name=value`` text -> its (name, value,
    unit, raw) columns (many samples repeat from line to line: memory_quota=512.00MB,
    memory_swap=0.00MB, tables=42), and in :attr:`units` each (name, suffix)'s (unit,
    factor) (:func:`unit_of`)."""

    __slots__ = ("units",)

    def __init__(self) -> None:
        super().__init__()
        self.units: dict[tuple[str, str], tuple[str, float]] = {}


#: what follows a sample's number: its suffix (``MB``, ``pages``)
_LETTERS: Final = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ%"

_SUFFIXES: dict[str, tuple[str, float]] = {
    "MB": ("bytes", 1048576.0),
    "kB": ("bytes", 1024.0),
    "KB": ("bytes", 1024.0),
    "GB": ("bytes", 1073741824.0),
    "bytes": ("bytes", 1.0),
    "B": ("bytes", 1.0),
    "pages": ("pages", 1.0),
    "ms": ("seconds", 0.001),
    "s": ("seconds", 1.0),
}


def unit_of(name: str, suffix: str) -> tuple[str, float]:
    """(unit, factor) of a sample called ``name`` whose number was followed by ``suffix``
    (see the module docstring's table): the value stored is the number times the factor."""
    known = _SUFFIXES.get(suffix)
    if known is not None:
        return known
    if suffix:
        return suffix.lower(), 1.0
    lowered = name.lower()
    if lowered.endswith(("rate", "ratio")) or "percentage" in lowered:
        return "ratio", 1.0
    if "load" in lowered:
        return "load", 1.0
    if lowered.endswith(("iops", "per-second", "per_second")):
        return "per_second", 1.0
    if "disk" in lowered:
        return "bytes", 1.0
    return "count", 1.0


def _sample(
    chunk: str, units: dict[tuple[str, str], tuple[str, float]]
) -> tuple[str, float | None, str, str | None]:
    """The (name, value, unit, raw) columns of one sample's ``name=value`` text; ``units``
    memoises :func:`unit_of`."""
    name, _, value = chunk.partition("=")
    if " " in value:  # other keys after the sample: not stored
        value = value.split(None, 1)[0] if value.strip() else ""
    number = value.rstrip(_LETTERS)
    key = (name, value[len(number) :])
    found = units.get(key)
    if found is None:
        found = units[key] = unit_of(*key)
    unit, factor = found
    try:
        amount = float(number) * factor
    except ValueError:
        amount = math.nan
    if amount - amount == 0.0:  # finite: not NaN, not beyond a double (1e999)
        return name, amount, unit, None
    return name, None, "", value  # not a number: kept as text


def parse_metrics(
    when: datetime, app: str, process: str, msg: bytes, memo: UnitMemo
) -> tuple[MetricRow, ...]:
    """The rows of one metrics MSG (bytes, without its line end), one per ``sample#``, in
    line order; ``()`` when the line holds none (it is then not a metrics line).

    Args:
        when: the line's TIMESTAMP (UTC, tz-aware).
        app: the app the batch came from (:attr:`drain.records.EventRow.app`).
        process: the line's PROCID as text (``web.1``, ``heroku-postgres``).
        msg: the MSG.
        memo: the body's :class:`UnitMemo` (the decoder keeps one per body).

    Never raises, whatever the bytes (invalid UTF-8 is replaced, U+0000 too).
    """
    text = msg.decode("utf-8", "replace")
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    head, *samples = (" " + text).split(" sample#")
    if not samples:
        return ()
    source = dyno = addon = None
    for token in head.split():
        key, sep, value = token.partition("=")
        if sep and value:
            if key == "source":
                source = value
            elif key == "dyno":
                dyno = value
            elif key == "addon":
                addon = value
    rows: list[MetricRow] = []
    append = rows.append
    for chunk in samples:
        known = memo.get(chunk)
        if known is None:
            known = memo[chunk] = _sample(chunk, memo.units)
        name, amount, unit, raw = known
        append(_new(MetricRow, (when, app, process, source, dyno, addon, name, amount, unit, raw)))
    return tuple(rows)
