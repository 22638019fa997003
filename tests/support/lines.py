"""Heroku's own lines for the tests, built from the documented shapes (docs/lines.md), and
Python references of what the rollups compute from them.

The shapes are those of Heroku Dev Center ("HTTP Routing", "Log Runtime Metrics", "Heroku
Error Codes") as the samples under tests/data/samples show them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import datetime


def router_line(
    at: datetime,
    *,
    method: str = "GET",
    path: str = "/",
    status: int = 200,
    service_ms: int = 10,
    connect_ms: int = 0,
    size: int = 100,
    fwd: str = "203.0.113.1",
    dyno: str = "web.1",
    code: str | None = None,
    desc: str | None = None,
    request_id: str = "00000000-0000-4000-8000-000000000000",
) -> str:
    """One ``heroku router`` syslog line (LF included); an error line when ``code``."""
    head = "at=info" if code is None else f'at=error code={code} desc="{desc or code}"'
    return (
        f"<158>1 {at.isoformat()} host heroku router - {head} method={method} "
        f'path="{path}" host=shop.example.com request_id={request_id} fwd="{fwd}" '
        f"dyno={dyno} connect={connect_ms}ms service={service_ms}ms status={status} "
        f"bytes={size} protocol=https\n"
    )


def memory_line(at: datetime, *, source: str, rss_mb: float, quota_mb: float = 512.0) -> str:
    """One runtime-metrics memory line of dyno ``source`` (``web.1``), LF included."""
    return (
        f"<134>1 {at.isoformat()} host heroku {source} - source={source} "
        f"dyno=heroku.2808254.d97d0ea7-cf3d-411b-b453-d2943a50b456 "
        f"sample#memory_total={rss_mb:.2f}MB sample#memory_rss={rss_mb:.2f}MB "
        f"sample#memory_cache=0.00MB sample#memory_swap=0.00MB sample#memory_pgpgin=1pages "
        f"sample#memory_pgpgout=1pages sample#memory_quota={quota_mb:.2f}MB\n"
    )


def load_line(at: datetime, *, source: str, load_1m: float) -> str:
    """One runtime-metrics load line of dyno ``source``, LF included."""
    return (
        f"<134>1 {at.isoformat()} host heroku {source} - source={source} "
        f"dyno=heroku.2808254.d97d0ea7-cf3d-411b-b453-d2943a50b456 "
        f"sample#load_avg_1m={load_1m:.2f} sample#load_avg_5m=0.10 sample#load_avg_15m=0.05\n"
    )


def platform_line(at: datetime, dyno: str, msg: str) -> str:
    """One ``heroku <dyno>`` platform line (``Error R14 (Memory quota exceeded)``)."""
    return f"<45>1 {at.isoformat()} host heroku {dyno} - {msg}\n"


_UUID = re.compile(
    r"/[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}(?=/|$)"
)
_NUMBER = re.compile(r"/[0-9]+(?=/|$)")
_EXTENSION = re.compile(r"\.[A-Za-z0-9]{1,10}$")
_HTML = re.compile(r"\.html?$", re.IGNORECASE)


def normalize_path(path: str | None) -> str:
    """What migration 0204's drain_normalize_path gives, written again in Python."""
    bare = (path or "").split("?", 1)[0]
    return _UUID.sub("/:id", _NUMBER.sub("/:id", bare))


def is_page_path(path: str | None) -> bool:
    """What migration 0204's drain_is_page_path gives, written again in Python."""
    bare = (path or "").split("?", 1)[0]
    return _EXTENSION.search(bare) is None or _HTML.search(bare) is not None


def percentile_cont(values: Sequence[float], fraction: float) -> float | None:
    """PostgreSQL's percentile_cont: linear interpolation between the sorted values."""
    if not values:
        return None
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    low = math.floor(position)
    high = math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)
