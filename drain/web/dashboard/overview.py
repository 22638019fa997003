"""The Overview page, ``/api/overview`` and ``/api/events``: is the drain healthy, and what
flows through it.

- ``/api/overview``: the ``/health`` document made readable (database, write queue, last
  commit and how long ago, the last group's commit time, partitions ahead, the rollups' lag,
  the warnings: upstream loss, partitions), and the quarantined lines by reason over the range.
- ``/api/events``: events stored per minute by app and tag, from the ``events_per_minute``
  rollup for a range up to a day (points of a minute up to 6 hours, of 15 minutes beyond),
  from ``events_per_tag_hourly`` (points of an hour) for a longer one; the newest buckets
  computed live (drain.web.dashboard.rollupdata). The value is always events per minute (a
  point's events divided by its minutes).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from drain.web.dashboard.charts import build_chart
from drain.web.dashboard.db import read_only
from drain.web.dashboard.pages import Ask, Endpoint, Page
from drain.web.dashboard.quarantine import quarantine_counts
from drain.web.dashboard.rollupdata import coverage, describe, fetch, plan_window
from drain.web.status import health_report, refresh_partitions_ahead

__all__ = [
    "EVENTS",
    "EVENTS_ROLLUP",
    "HOURLY_ROLLUP",
    "OVERVIEW",
    "PAGE",
    "events_chart",
    "overview_data",
    "step_for",
]

#: the rollup the events chart reads for a range up to a day, and beyond
EVENTS_ROLLUP = "events_per_minute"
HOURLY_ROLLUP = "events_per_tag_hourly"
#: most (app, tag) series in the events chart
EVENT_SERIES = 12


def step_for(span_s: float) -> int:
    """The events chart's point width (seconds) for a range of ``span_s`` seconds."""
    if span_s <= 6 * 3600:
        return 60
    if span_s <= 86400:
        return 900
    return 3600


def _seconds_since(value: Any, now: datetime) -> float | None:
    if not isinstance(value, str):
        return None
    return round((now - datetime.fromisoformat(value)).total_seconds(), 1)


async def overview_data(ask: Ask) -> dict[str, Any]:
    """The Overview page's data (``/api/overview``)."""
    state = ask.state
    status, health = await health_report(state)
    ahead = await refresh_partitions_ahead(state)
    async with read_only(state.pool, ask.gate) as conn:
        counts, capped = await quarantine_counts(conn, ask.filters)
    writer = health.get("writer") or {}
    warnings = health.get("warnings") or []
    now = ask.now.astimezone(UTC)
    return {
        "status": health.get("status"),
        "http_status": status,
        "database": health.get("database"),
        "writer": {
            "queue_events": writer.get("queue_events"),
            "queue_bytes": writer.get("queue_bytes"),
            "queue_batches": writer.get("queue_batches"),
            "last_commit_at": writer.get("last_commit_at"),
            "seconds_since_commit": _seconds_since(writer.get("last_commit_at"), now),
            "last_flush_duration_s": writer.get("last_flush_duration_s"),
            "last_flush_events": writer.get("last_flush_events"),
            "commits": writer.get("commits"),
            "events_stored": writer.get("events_stored"),
            "db_errors": writer.get("db_errors"),
            "last_error": writer.get("last_error"),
        },
        "partitions_ahead": {
            "days": ahead,
            "wanted": state.settings.drain_partitions_ahead_days,
        },
        "rollups": health.get("rollups") or [],
        "warnings": warnings,
        "upstream_loss": [w for w in warnings if w.get("kind") == "upstream_loss"],
        "counters": health.get("counters") or {},
        "quarantine_by_reason": counts,
        "quarantine_capped": capped,
    }


async def events_chart(ask: Ask) -> dict[str, Any]:
    """Events per minute by app and tag over the range (``/api/events``)."""
    step = step_for(ask.filters.span_s)
    name = EVENTS_ROLLUP if step < 3600 else HOURLY_ROLLUP
    spec = ask.rollups.get(name)
    keys = ("tag",) if ask.filters.app is not None else ("app", "tag")
    if spec is None:
        span = (ask.filters.start, ask.filters.end)
        chart = build_chart([], measure="events", keys=keys, bucket_s=step, span=span)
        return {**chart, "note": f"the {name} rollup is not installed"}
    async with read_only(ask.state.pool, ask.gate) as conn:
        table = await describe(conn, spec)
        covered = await coverage(conn, spec)
        window = plan_window(spec, ask.filters, covered)
        rows = await fetch(
            conn,
            table,
            window,
            ask.filters.app,
            select=(
                "to_timestamp(floor(extract(epoch FROM bucket) / {p0}::int) * {p0}::int) "
                "AS bucket, app, tag, sum(events) AS events"
            ),
            group_by="1, 2, 3",
            order_by="1, 2, 3",
            limit=500_000,
            extra=[step],
        )
    chart = build_chart(
        [dict(r) for r in rows],
        measure="events",
        keys=keys,
        bucket_s=step,
        span=(ask.filters.start, ask.filters.end),
        scale=60 / step,
        max_series=EVENT_SERIES,
    )
    return {
        **chart,
        "unit": "events per minute",
        "complete_until": covered.complete_until,
        "live_from": window.live_start if window.live else None,
    }


OVERVIEW = Endpoint(
    "/api/overview",
    overview_data,
    "health made readable: database, write queue, last commit, partitions ahead, rollups' "
    "lag, warnings; quarantined lines by reason over the range",
)
EVENTS = Endpoint(
    "/api/events",
    events_chart,
    "chart: events stored per minute by app and tag (events_per_minute rollup up to a day, "
    "events_per_tag_hourly beyond; newest buckets live)",
)
PAGE = Page("/", "Overview", "overview.html", overview_data, endpoints=(OVERVIEW, EVENTS))
