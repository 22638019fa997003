"""The Tags page and ``/api/tags``: a catalogue of every tag and app over the range.

For each (app, tag): first and last seen (to the hour) and events per UTC day, from the
``events_per_tag_hourly`` rollup; the payload keys seen with their JSON types
(``jsonb_typeof``), from the bounded sample of the ``tag_catalog_daily`` rollup (each tag's
first and last 100 events of each day); an example payload; and the keys seen with more
than one type other than ``null`` (a schema drift warning). Both rollups' newest buckets are
computed live (drain.web.dashboard.rollupdata), so a tag posted a second ago is listed.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import orjson

from drain.web.dashboard.db import read_only
from drain.web.dashboard.pages import Ask, Endpoint, Page
from drain.web.dashboard.rollupdata import coverage, describe, fetch, plan_window

__all__ = ["CATALOG_ROLLUP", "COUNTS_ROLLUP", "ENDPOINT", "PAGE", "drifted", "tags_data"]

COUNTS_ROLLUP = "events_per_tag_hourly"
CATALOG_ROLLUP = "tag_catalog_daily"


def drifted(types: dict[str, int]) -> bool:
    """True when a key was seen with more than one JSON type other than ``null``."""
    return len([t for t in types if t != "null"]) > 1


async def tags_data(ask: Ask) -> dict[str, Any]:
    """The Tags page's data (``/api/tags``)."""
    counts_spec = ask.rollups.get(COUNTS_ROLLUP)
    catalog_spec = ask.rollups.get(CATALOG_ROLLUP)
    found: dict[tuple[str, str], dict[str, Any]] = {}
    notes = []

    def entry(app: str, tag: str) -> dict[str, Any]:
        return found.setdefault(
            (app, tag),
            {
                "app": app,
                "tag": tag,
                "events": 0,
                "first_seen": None,
                "last_seen": None,
                "days": {},
                "keys": {},
                "example": None,
                "example_day": None,
            },
        )

    async with read_only(ask.state.pool, ask.gate) as conn:
        if counts_spec is None:
            notes.append(f"the {COUNTS_ROLLUP} rollup is not installed")
        else:
            table = await describe(conn, counts_spec)
            window = plan_window(counts_spec, ask.filters, await coverage(conn, counts_spec))
            rows = await fetch(
                conn,
                table,
                window,
                ask.filters.app,
                select=(
                    "app, tag, date_trunc('day', bucket) AS day, sum(events) AS events, "
                    "min(bucket) AS first_bucket, max(bucket) AS last_bucket"
                ),
                group_by="1, 2, 3",
                order_by="1, 2, 3",
                limit=100_000,
            )
            for r in rows:
                e = entry(r["app"], r["tag"])
                e["events"] += int(r["events"])
                e["days"][r["day"]] = e["days"].get(r["day"], 0) + int(r["events"])
                if e["first_seen"] is None or r["first_bucket"] < e["first_seen"]:
                    e["first_seen"] = r["first_bucket"]
                last = r["last_bucket"] + timedelta(seconds=counts_spec.bucket_s)
                if e["last_seen"] is None or last > e["last_seen"]:
                    e["last_seen"] = last
        if catalog_spec is None:
            notes.append(f"the {CATALOG_ROLLUP} rollup is not installed")
        else:
            table = await describe(conn, catalog_spec)
            window = plan_window(catalog_spec, ask.filters, await coverage(conn, catalog_spec))
            rows = await fetch(
                conn,
                table,
                window,
                ask.filters.app,
                select=(
                    "app, tag, key, json_type, sum(sampled) AS sampled, max(bucket) AS last_day, "
                    "(array_agg(example ORDER BY bucket DESC) "
                    "FILTER (WHERE example IS NOT NULL))[1] AS example"
                ),
                group_by="1, 2, 3, 4",
                order_by="1, 2, 3, 4",
                limit=50_000,
            )
            for r in rows:
                e = entry(r["app"], r["tag"])
                e["keys"].setdefault(r["key"], {})[r["json_type"]] = int(r["sampled"])
                if r["example"] is not None and (
                    e["example_day"] is None or r["last_day"] > e["example_day"]
                ):
                    e["example"], e["example_day"] = orjson.loads(r["example"]), r["last_day"]
    tags = []
    for (_, _), e in sorted(found.items()):
        keys = [
            {"key": key, "types": types, "drift": drifted(types)}
            for key, types in sorted(e["keys"].items())
        ]
        tags.append(
            {
                "app": e["app"],
                "tag": e["tag"],
                "events": e["events"],
                "first_seen": e["first_seen"],
                "last_seen": e["last_seen"],
                "events_per_day": [
                    {"day": day, "events": n} for day, n in sorted(e["days"].items())
                ],
                "keys": keys,
                "drift": [k["key"] for k in keys if k["drift"]],
                "example": e["example"],
            }
        )
    return {"from": ask.filters.start, "to": ask.filters.end, "tags": tags, "notes": notes}


ENDPOINT = Endpoint(
    "/api/tags",
    tags_data,
    "every (app, tag): first/last seen, events per day, payload keys and JSON types from a "
    "bounded sample, an example payload, keys whose type changed",
)
PAGE = Page("/tags", "Tags", "tags.html", tags_data, endpoints=(ENDPOINT,))
