"""Metrics lines (drain.decode.metrics): one row per sample, values in base units named in
``unit``, unknown metrics kept, values that are not numbers kept as text, any bytes read."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drain.decode.metrics import UnitMemo, parse_metrics, unit_of

WHEN = datetime(2026, 11, 30, 12, tzinfo=UTC)


def values(msg: bytes, process: str = "web.1") -> list[tuple[str, float | None, str, str | None]]:
    return [
        (r.name, r.value, r.unit, r.raw) for r in parse_metrics(WHEN, "a", process, msg, UnitMemo())
    ]


def test_runtime_memory_line() -> None:
    # Heroku Dev Center, "Log Runtime Metrics"
    msg = (
        b"source=web.1 dyno=heroku.2808254.d97d0ea7-cf3d-411b-b453-d2943a50b456 "
        b"sample#memory_total=21.00MB sample#memory_rss=21.22MB sample#memory_cache=0.00MB "
        b"sample#memory_swap=0.00MB sample#memory_pgpgin=348836pages "
        b"sample#memory_pgpgout=343403pages"
    )
    rows = parse_metrics(WHEN, "shop", "web.1", msg, UnitMemo())
    assert {(r.source, r.dyno, r.addon, r.process, r.app) for r in rows} == {
        ("web.1", "heroku.2808254.d97d0ea7-cf3d-411b-b453-d2943a50b456", None, "web.1", "shop")
    }
    assert [(r.name, r.value, r.unit) for r in rows] == [
        ("memory_total", 21.0 * 1048576, "bytes"),
        ("memory_rss", pytest.approx(21.22 * 1048576), "bytes"),
        ("memory_cache", 0.0, "bytes"),
        ("memory_swap", 0.0, "bytes"),
        ("memory_pgpgin", 348836.0, "pages"),
        ("memory_pgpgout", 343403.0, "pages"),
    ]


def test_postgres_addon_line() -> None:
    # tests/data/samples/pganalyze-heroku-postgres-metrics.body
    msg = (
        b"source=HEROKU_POSTGRESQL_YELLOW addon=postgresql-reticulated-12345 "
        b"sample#db_size=10311979679bytes sample#active-connections=11 "
        b"sample#index-cache-hit-rate=0.99814 sample#load-avg-1m=0 sample#write-iops=0.21311 "
        b"sample#tmp-disk-used=543600640 sample#memory-total=8036340kB "
        b"sample#wal-percentage-used=0.06427136779541504"
    )
    rows = parse_metrics(WHEN, "", "heroku-postgres", msg, UnitMemo())
    assert {(r.source, r.addon, r.dyno) for r in rows} == {
        ("HEROKU_POSTGRESQL_YELLOW", "postgresql-reticulated-12345", None)
    }
    assert [(r.name, r.value, r.unit) for r in rows] == [
        ("db_size", 10311979679.0, "bytes"),
        ("active-connections", 11.0, "count"),
        ("index-cache-hit-rate", 0.99814, "ratio"),
        ("load-avg-1m", 0.0, "load"),
        ("write-iops", 0.21311, "per_second"),
        ("tmp-disk-used", 543600640.0, "bytes"),
        ("memory-total", 8036340.0 * 1024, "bytes"),
        ("wal-percentage-used", 0.06427136779541504, "ratio"),
    ]


def test_unknown_metrics_and_odd_values_are_kept() -> None:
    msg = b"source=web.2 sample#cpu_throttle=12ms sample#threads=abc sample#big=1e999 sample#x=3GB"
    assert values(msg) == [
        ("cpu_throttle", pytest.approx(0.012), "seconds", None),
        ("threads", None, "", "abc"),
        ("big", None, "", "1e999"),
        ("x", 3.0 * 2**30, "bytes", None),
    ]


def test_head_keys_in_another_order_and_other_keys_between_samples() -> None:
    msg = b"dyno=heroku.1 at=info source=run.1234 sample#a=1 note=x sample#b=2widgets"
    rows = parse_metrics(WHEN, "", "run.1234", msg, UnitMemo())
    assert [(r.source, r.dyno, r.name, r.value, r.unit) for r in rows] == [
        ("run.1234", "heroku.1", "a", 1.0, "count"),
        ("run.1234", "heroku.1", "b", 2.0, "widgets"),
    ]


def test_a_line_without_samples_has_no_rows() -> None:
    assert parse_metrics(WHEN, "", "web.1", b"source=web.1 dyno=x", UnitMemo()) == ()


def test_the_memo_keeps_each_sample_apart() -> None:
    memo = UnitMemo()
    first = parse_metrics(WHEN, "", "web.1", b"source=a sample#m=1MB sample#n=1MB", memo)
    second = parse_metrics(WHEN, "", "web.1", b"source=b sample#m=1kB sample#n=1MB", memo)
    assert [(r.source, r.name, r.value) for r in first + second] == [
        ("a", "m", 1048576.0),
        ("a", "n", 1048576.0),
        ("b", "m", 1024.0),
        ("b", "n", 1048576.0),
    ]


@pytest.mark.parametrize(
    ("name", "suffix", "unit"),
    [
        ("hit-rate", "", "ratio"),
        ("db-size-percentage-used", "", "ratio"),
        ("load_avg_15m", "", "load"),
        ("read-iops", "", "per_second"),
        ("bytes-in-per-second", "", "per_second"),
        ("evicted-keys", "", "count"),
        ("x", "Widgets", "widgets"),
    ],
)
def test_units_by_name(name: str, suffix: str, unit: str) -> None:
    assert unit_of(name, suffix)[0] == unit


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_are_read(msg: bytes) -> None:
    for row in parse_metrics(WHEN, "", "p", b"source=s " + msg + b" sample#z=" + msg, UnitMemo()):
        for value in row:
            assert not (isinstance(value, str) and "\x00" in value)
        assert row.value is None or row.value == row.value  # never NaN
