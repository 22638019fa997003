"""The dashboard's pure parts: the filters, the chart JSON, the split between the table and
the live query, identifier quoting, CSV, the registry, and the vendored uPlot's integrity."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from importlib.resources import files

import pytest

from drain.rollups.runner import load_rollups
from drain.web.dashboard.charts import build_chart
from drain.web.dashboard.db import quote_ident
from drain.web.dashboard.pages import Page
from drain.web.dashboard.ranges import RangeError, parse_filters
from drain.web.dashboard.registry import ENDPOINTS, NAV, PAGES
from drain.web.dashboard.rollupdata import LIVE_MAX_S, Coverage, plan_window
from drain.web.dashboard.rollups import csv_text
from drain.web.dashboard.views import STATIC_FILES

NOW = datetime(2026, 12, 1, 12, 34, 56, tzinfo=UTC)
H = timedelta(hours=1)
VENDOR = files("drain.web.dashboard").joinpath("static", "vendor", "uplot")


def test_presets_custom_ranges_and_the_app() -> None:
    day = parse_filters({}, NOW)
    assert (day.start, day.end, day.preset, day.app) == (NOW - 24 * H, NOW, "24h", None)
    assert parse_filters({"range": "7d"}, NOW).span_s == 7 * 86400
    custom = parse_filters(
        {"range": "custom", "from": "2026-11-30T10:00", "to": "2026-11-30T14:00:00+02:00"}, NOW
    )
    # no offset means UTC; an offset is converted
    assert (custom.start, custom.end) == (
        datetime(2026, 11, 30, 10, tzinfo=UTC),
        datetime(2026, 11, 30, 12, tzinfo=UTC),
    )
    assert "from=2026-11-30T10%3A00%3A00Z" in custom.query()
    assert parse_filters({"app": " shop "}, NOW).app == "shop"
    kept = parse_filters({"reason": "bad_tag", "other": "x"}, NOW, ("reason",))
    assert dict(kept.extra) == {"reason": "bad_tag"}
    assert "reason=bad_tag" in kept.query() and "reason" not in kept.base_query()
    assert "range=24h" in kept.query(reason=None)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"range": "3h"}, "range"),
        ({"range": "custom"}, "from"),
        ({"range": "custom", "from": "soon"}, "from"),
        ({"range": "custom", "from": "2026-11-30T10:00", "to": "2026-11-30T09:00"}, "after"),
        ({"range": "custom", "from": "2026-01-01T00:00", "to": "2026-12-01T00:00"}, "92 days"),
        ({"tag": "t" * 201}, "tag"),
    ],
)
def test_bad_filters_say_what_is_wrong(params: dict[str, str], message: str) -> None:
    with pytest.raises(RangeError, match=message):
        parse_filters(params, NOW, ("tag",))


def test_a_chart_has_one_point_per_row_and_nulls_elsewhere() -> None:
    t0, t1 = NOW - 2 * H, NOW - H
    rows = [
        {"bucket": t0, "category": "a", "revenue": Decimal("1.5")},
        {"bucket": t1, "category": "a", "revenue": Decimal(2)},
        {"bucket": t1, "category": "", "revenue": 7},
    ]
    day = (NOW - 24 * H, NOW)
    chart = build_chart(rows, measure="revenue", keys=["category"], bucket_s=3600, span=day)
    assert chart["x"] == [int(t0.timestamp()), int(t1.timestamp())]
    assert chart["series"] == [
        {"label": "(none)", "key": {"category": "(none)"}, "values": [None, 7]},
        {"label": "a", "key": {"category": "a"}, "values": [1.5, 2.0]},
    ]
    many = [{"bucket": t0, "k": str(i), "n": i} for i in range(30)]
    capped = build_chart(many, measure="n", keys=["k"], bucket_s=60, span=day, max_series=5)
    assert [s["label"] for s in capped["series"]] == ["29", "28", "27", "26", "25"]
    assert capped["omitted_series"] == 25
    scaled = build_chart(many[:2], measure="n", keys=[], bucket_s=900, span=day, scale=60 / 900)
    assert scaled["series"][0]["label"] == "n" and scaled["series"][0]["values"] == [1 / 15]


def test_a_charts_x_range_is_the_range_rounded_out_to_whole_buckets() -> None:
    noon = datetime(2026, 12, 1, 12, tzinfo=UTC)
    rows = [{"bucket": noon - H, "n": 1}]
    aligned = build_chart(rows, measure="n", keys=[], bucket_s=3600, span=(noon - H, noon))
    assert aligned["x_range"] == [int((noon - H).timestamp()), int(noon.timestamp())]
    rounded = build_chart(rows, measure="n", keys=[], bucket_s=3600, span=(NOW - H, NOW))
    assert rounded["x_range"] == [int((noon - H).timestamp()), int((noon + H).timestamp())]


def test_the_window_reads_the_table_until_the_runs_completed_it() -> None:
    spec = load_rollups()["payment_history"]
    filters = parse_filters({}, NOW)
    never = plan_window(spec, filters, Coverage(None, None))
    assert never.start == datetime(2026, 11, 30, 12, tzinfo=UTC)
    assert never.end == datetime(2026, 12, 1, 13, tzinfo=UTC)  # the current hour included
    assert never.live_start == never.end - timedelta(seconds=LIVE_MAX_S)
    ran = plan_window(spec, filters, Coverage(datetime(2026, 12, 1, 11, tzinfo=UTC), None))
    assert ran.live_start == datetime(2026, 12, 1, 11, tzinfo=UTC) and ran.live
    ahead = plan_window(spec, filters, Coverage(datetime(2026, 12, 2, tzinfo=UTC), None))
    assert not ahead.live
    daily = load_rollups()["tag_catalog_daily"]
    days = plan_window(daily, parse_filters({"range": "1h"}, NOW), Coverage(None, None))
    assert (days.start, days.live_start, days.end) == (
        datetime(2026, 12, 1, tzinfo=UTC),
        datetime(2026, 12, 1, tzinfo=UTC),
        datetime(2026, 12, 2, tzinfo=UTC),
    )


def test_identifiers_are_quoted_only_from_the_whitelist() -> None:
    assert quote_ident("revenue", {"revenue"}) == '"revenue"'
    for bad in ('x"; DROP TABLE raw_events; --', "revenue ", "Rev-enue"):
        with pytest.raises(ValueError, match="not a known column"):
            quote_ident(bad, {bad})
    with pytest.raises(ValueError, match="not a known column"):
        quote_ident("events", {"revenue"})


def test_csv_is_rfc_4180_and_defuses_formulas() -> None:
    text = csv_text(["bucket", "category", "n"], [[NOW, '=cmd|"/c calc"!A1', -1], [NOW, "a,b", 2]])
    lines = text.split("\r\n")
    assert lines[0] == "bucket,category,n"
    assert lines[1] == '2026-12-01T12:34:56+00:00,"\'=cmd|""/c calc""!A1",-1'
    assert lines[2] == '2026-12-01T12:34:56+00:00,"a,b",2'


def test_the_registry_routes_each_endpoint_once_csv_first() -> None:
    paths = [e.path for e in ENDPOINTS]
    assert len(paths) == len(set(paths))
    assert paths.index("/api/rollups/{name}.csv") < paths.index("/api/rollups/{name}")
    assert all(p.startswith("/api/") for p in paths)
    assert [path for path, _ in NAV] == ["/", "/rollups", "/tags", "/quarantine"]
    assert all(isinstance(p, Page) and p.template.endswith(".html") for p in PAGES)
    templates = files("drain.web.dashboard").joinpath("templates")
    assert all(templates.joinpath(p.template).is_file() for p in PAGES)


def test_the_vendored_chart_library_is_the_pinned_release() -> None:
    """uPlot as npm ships it (uplot-1.6.32.tgz, dist/ and LICENSE), byte for byte: each file's
    SHA-256 is recorded in VENDORED.json with the tarball's npm integrity."""
    record = json.loads(VENDOR.joinpath("VENDORED.json").read_text())
    assert (record["package"], record["version"], record["license"]) == ("uplot", "1.6.32", "MIT")
    assert record["tarball_integrity"].startswith("sha512-")
    for name, meta in record["files"].items():
        data = VENDOR.joinpath(name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == meta["sha256"], name
    assert "Permission is hereby granted" in VENDOR.joinpath("LICENSE").read_text()
    assert (
        VENDOR.joinpath("uPlot.iife.min.js")
        .read_text()
        .startswith("/*! https://github.com/leeoniya/uPlot (v1.6.32) */")
    )
    assert {f"vendor/uplot/{name}" for name in record["files"]} <= set(STATIC_FILES)
