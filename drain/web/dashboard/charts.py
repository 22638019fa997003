"""Chart data for the dashboard's ``/api/...`` endpoints (pure: rows in, JSON-able out).

Every chart endpoint answers the same shape, which ``static/dashboard.js`` draws with uPlot::

    {"x": [1764547200, 1764550800, ...],          # bucket starts, seconds since the epoch (UTC)
     "series": [{"label": "categoryA", "values": [310310.0, null, ...]}, ...],
     "unit": "revenue", "bucket_s": 3600, "omitted_series": 0,
     "x_range": [1764547200, 1764633600]}        # the x axis's span, seconds (UTC)

``values[i]`` belongs to ``x[i]``; ``null`` where the series has no row for that bucket, so
each non-null value is exactly one row of the data. Series are ordered by their total,
largest first; past ``max_series`` the smallest are left out of the chart (they stay in the
table and the CSV) and counted in ``omitted_series``. ``x_range`` is the page's time range
rounded out to whole buckets, so the x axis spans what the page asked for (one bucket of data
is drawn within its range, not on a span uPlot makes up) and every point lies inside it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from drain.rollups.spec import bucket_floor

__all__ = ["MAX_SERIES", "build_chart", "number"]

#: the most series one chart draws
MAX_SERIES = 24


def number(value: Any) -> float | int | None:
    """A measure as a JSON number: int stays int, Decimal and float become float."""
    if value is None:
        return None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal | float):
        return float(value)
    raise TypeError(f"not a number: {type(value).__name__}")


def _label(value: Any) -> str:
    """A dimension's value as a series name: ``(none)`` for an empty string or NULL."""
    return "(none)" if value is None or value == "" else str(value)


def build_chart(
    rows: Sequence[Mapping[str, Any]],
    *,
    measure: str,
    keys: Sequence[str],
    bucket_s: int,
    span: tuple[datetime, datetime],
    scale: float = 1.0,
    max_series: int = MAX_SERIES,
) -> dict[str, Any]:
    """One chart from ``rows``, each with a ``bucket`` (datetime), ``measure`` and ``keys``.

    Args:
        rows: the data, at most one row per (bucket, keys) (a second one is added to the first).
        measure: the column on the y axis.
        keys: the columns whose values name a series (joined with `` / ``; none: one series
            named after the measure).
        bucket_s: the width of a bucket in seconds (for the client's tooltip, and the
            rounding of ``span``); buckets align to the epoch.
        span: the page's time range ``(start, end)``, tz-aware: the chart's ``x_range`` is
            ``start`` rounded down and ``end`` rounded up to whole buckets.
        scale: each value is multiplied by it (events per bucket -> events per minute).
        max_series: see the module docstring.
    """
    xs: set[int] = set()
    by_series: dict[tuple[str, ...], dict[int, float]] = {}
    for row in rows:
        bucket: datetime = row["bucket"]
        x = int(bucket.timestamp())
        xs.add(x)
        key = tuple(_label(row[k]) for k in keys)
        value = number(row[measure])
        if value is None:
            continue
        points = by_series.setdefault(key, {})
        points[x] = points.get(x, 0) + (value * scale if scale != 1.0 else value)
    ordered_x = sorted(xs)
    totals = sorted(by_series.items(), key=lambda item: (-sum(item[1].values()), item[0]))
    shown = totals[:max_series]
    series = [
        {
            "label": " / ".join(key) if keys else measure,
            "key": dict(zip(keys, key, strict=True)),
            "values": [points.get(x) for x in ordered_x],
        }
        for key, points in shown
    ]
    start = bucket_floor(span[0], bucket_s)
    end = bucket_floor(span[1], bucket_s)
    if end < span[1]:
        end += timedelta(seconds=bucket_s)
    return {
        "x": ordered_x,
        "series": series,
        "unit": measure,
        "bucket_s": bucket_s,
        "omitted_series": len(totals) - len(shown),
        "x_range": [int(start.timestamp()), int(end.timestamp())],
    }
