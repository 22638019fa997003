"""The Rollups pages and ``/api/rollups...``: any rollup of ``sql/rollups`` as a chart and a
table, with a CSV download.

The columns are read from the catalog (drain.web.dashboard.rollupdata): ``bucket`` on the x
axis, the chosen measure (``measure``, default the first numeric column) on the y axis, one
series per combination of the dimensions (text columns other than ``app``; with no app filter
and rows from several apps, the app too). Each point is one row of the rollup.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime
from decimal import Decimal
from typing import Any

from drain.rollups.spec import RollupSpec
from drain.web.dashboard.charts import build_chart
from drain.web.dashboard.db import read_only
from drain.web.dashboard.pages import Ask, Endpoint, NotFound, Page
from drain.web.dashboard.rollupdata import (
    Coverage,
    RollupTable,
    Window,
    coverage,
    describe,
    fetch,
    plan_window,
)

__all__ = [
    "CSV",
    "DETAIL",
    "LIST",
    "LIST_PAGE",
    "PAGE",
    "ROW_CAP",
    "TABLE_ROWS_SHOWN",
    "csv_text",
    "rollup_csv",
    "rollup_data",
    "rollups_list",
]

#: the most rows one rollup read returns (the chart, the table and the CSV)
ROW_CAP = 20_000
#: rows shown in the page's table (newest first); the CSV has them all
TABLE_ROWS_SHOWN = 200


def _spec(ask: Ask) -> RollupSpec:
    name = ask.path.get("name", "")
    spec = ask.rollups.get(name)
    if spec is None:
        raise NotFound(f"no rollup named {name[:64]!r}")
    return spec


def _describe_json(table: RollupTable, covered: Coverage) -> dict[str, Any]:
    spec = table.spec
    return {
        "name": spec.name,
        "target": spec.target,
        "schedule": spec.schedule,
        "bucket_s": spec.bucket_s,
        "lateness_s": spec.lateness_s,
        "table_exists": table.exists,
        "columns": [{"name": c.name, "type": c.type_name} for c in table.columns],
        "measures": table.measures,
        "dimensions": table.dimensions,
        "chartable": table.chartable,
        "complete_until": covered.complete_until,
        "last_run_at": covered.last_run_at,
    }


async def rollups_list(ask: Ask) -> dict[str, Any]:
    """Every rollup with its columns and how far its runs have completed it (``/api/rollups``)."""
    found = []
    async with read_only(ask.state.pool, ask.gate) as conn:
        for spec in ask.rollups.values():
            table = await describe(conn, spec)
            found.append(_describe_json(table, await coverage(conn, spec)))
    return {"rollups": found}


async def _read(ask: Ask) -> tuple[RollupTable, Coverage, Window, list[dict[str, Any]], bool]:
    spec = _spec(ask)
    async with read_only(ask.state.pool, ask.gate) as conn:
        table = await describe(conn, spec)
        covered = await coverage(conn, spec)
        window = plan_window(spec, ask.filters, covered)
        order = ", ".join(str(i + 1) for i in range(len(table.columns)))
        records = await fetch(
            conn, table, window, ask.filters.app, order_by=order, limit=ROW_CAP + 1
        )
    rows = [dict(r) for r in records[:ROW_CAP]]
    return table, covered, window, rows, len(records) > ROW_CAP


def _cell(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    return value


async def rollup_data(ask: Ask) -> dict[str, Any]:
    """One rollup's chart and rows over the range (``/api/rollups/{name}``)."""
    table, covered, window, rows, truncated = await _read(ask)
    measures = table.measures
    measure = ask.filters.extra.get("measure") or (measures[0] if measures else None)
    if measure is not None and measure not in measures:
        raise NotFound(f"{table.spec.name} has no measure {measure[:64]!r}")
    keys = list(table.dimensions)
    if ask.filters.app is None and table.has_app and len({r["app"] for r in rows}) > 1:
        keys.insert(0, "app")
    chart = None
    if table.chartable and measure is not None:
        chart = build_chart(
            rows,
            measure=measure,
            keys=keys,
            bucket_s=table.spec.bucket_s,
            span=(ask.filters.start, ask.filters.end),
        )
    names = [c.name for c in table.columns]
    shown = sorted(rows, key=lambda r: r.get("bucket") or datetime.min, reverse=True)
    return {
        "rollup": _describe_json(table, covered),
        "measure": measure,
        "window": {
            "from": window.start,
            "to": window.end,
            "live_from": window.live_start if window.live else None,
        },
        "chart": chart,
        "columns": names,
        "rows": [[_cell(r[n]) for n in names] for r in shown[:TABLE_ROWS_SHOWN]],
        "row_count": len(rows),
        "truncated": truncated,
    }


def _csv_value(value: Any) -> Any:
    """A value as a spreadsheet reads it safely: a text that would start a formula
    (``=``, ``+``, ``-``, ``@``, tab, CR) is prefixed with ``'`` (OWASP, CSV injection)."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def csv_text(header: list[str], rows: list[list[Any]]) -> str:
    """RFC 4180 CSV (CRLF line ends) of ``header`` and ``rows``."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([_csv_value(v) for v in row])
    return out.getvalue()


async def rollup_csv(ask: Ask) -> dict[str, Any]:
    """Every row of one rollup over the range, oldest first (``/api/rollups/{name}.csv``)."""
    table, _, _, rows, truncated = await _read(ask)
    names = [c.name for c in table.columns]
    return {
        "filename": f"{table.spec.name}.csv",
        "header": names,
        "rows": [[r[n] for n in names] for r in rows],
        "truncated": truncated,
    }


LIST = Endpoint(
    "/api/rollups", rollups_list, "every rollup: columns, measures, dimensions, coverage"
)
CSV = Endpoint(
    "/api/rollups/{name}.csv",
    rollup_csv,
    "one rollup's rows over the range as CSV (at most 20,000 rows)",
    media="csv",
)
DETAIL = Endpoint(
    "/api/rollups/{name}",
    rollup_data,
    "chart and rows of one rollup over the range; measure= picks the y column",
    params=("measure",),
)
LIST_PAGE = Page("/rollups", "Rollups", "rollups.html", rollups_list, endpoints=(LIST,))
PAGE = Page(
    "/rollups/{name}",
    "Rollup",
    "rollup.html",
    rollup_data,
    nav="/rollups",
    params=("measure",),
    endpoints=(CSV, DETAIL),
)
