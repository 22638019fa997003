"""The Quarantine page and ``/api/quarantine``: recent quarantined lines by reason.

Reads ``quarantine`` by its ``received_at`` index, newest first: the counts by reason over
at most :data:`COUNT_CAP` rows of the range (``capped`` says when there were more), and the
newest :data:`ROW_LIMIT` rows that match the filters (``reason``, ``tag``, ``app``). A row's
``raw`` bytes are decoded as UTF-8 with ``\\xNN`` escapes for what is not UTF-8 and cut to
:data:`RAW_SHOWN_CHARS`; the page shows them as text (escaped by the template), never as HTML.
"""

from __future__ import annotations

from typing import Any

from drain.records import QuarantineReason
from drain.web.dashboard.db import Conn, read_only
from drain.web.dashboard.pages import Ask, Endpoint, Page
from drain.web.dashboard.ranges import Filters

__all__ = [
    "COUNT_CAP",
    "ENDPOINT",
    "PAGE",
    "RAW_SHOWN_CHARS",
    "ROW_LIMIT",
    "quarantine_counts",
    "quarantine_data",
    "show_raw",
]

#: the most rows counted by reason for one range
COUNT_CAP = 100_000
#: the most rows listed
ROW_LIMIT = 100
#: characters of a row's raw line shown
RAW_SHOWN_CHARS = 4000


def show_raw(raw: bytes) -> str:
    """A quarantined line's bytes as text: UTF-8, ``\\xNN`` for other bytes, cut to
    :data:`RAW_SHOWN_CHARS` characters (then ``…``)."""
    text = raw.decode("utf-8", "backslashreplace")
    return text if len(text) <= RAW_SHOWN_CHARS else text[:RAW_SHOWN_CHARS] + "…"


def _where(filters: Filters, reason: str | None, tag: str | None) -> tuple[str, list[Any]]:
    clauses = ["received_at >= $1", "received_at < $2"]
    values: list[Any] = [filters.start, filters.end]
    for column, value in (("app", filters.app), ("reason", reason), ("tag", tag)):
        if value is not None:
            values.append(value)
            clauses.append(f"{column} = ${len(values)}::text")
    return " AND ".join(clauses), values


async def quarantine_counts(
    conn: Conn, filters: Filters, tag: str | None = None
) -> tuple[list[dict[str, Any]], bool]:
    """``([{"reason", "count"}], capped)`` over the range, largest count first."""
    where, values = _where(filters, None, tag)
    rows = await conn.fetch(
        f"""SELECT reason, count(*) AS count
              FROM (SELECT reason FROM quarantine WHERE {where} LIMIT {COUNT_CAP + 1}) AS q
             GROUP BY reason ORDER BY count DESC, reason""",
        *values,
    )
    counts = [{"reason": r["reason"], "count": int(r["count"])} for r in rows]
    return counts, sum(c["count"] for c in counts) > COUNT_CAP


async def quarantine_data(ask: Ask) -> dict[str, Any]:
    """The Quarantine page's data (``/api/quarantine``)."""
    filters = ask.filters
    reason, tag = filters.extra.get("reason"), filters.extra.get("tag")
    async with read_only(ask.state.pool, ask.gate) as conn:
        counts, capped = await quarantine_counts(conn, filters, tag)
        where, values = _where(filters, reason, tag)
        rows = await conn.fetch(
            f"""SELECT id, received_at, app, reason, detail, raw, raw_bytes, event_time, tag,
                       frame_id
                  FROM quarantine WHERE {where}
                 ORDER BY received_at DESC, id DESC LIMIT {ROW_LIMIT}""",
            *values,
        )
    return {
        "from": filters.start,
        "to": filters.end,
        "reason": reason,
        "tag": tag,
        "counts_by_reason": counts,
        "counts_capped": capped,
        "reasons": sorted({r.value for r in QuarantineReason} | {c["reason"] for c in counts}),
        "rows": [
            {
                "id": r["id"],
                "received_at": r["received_at"],
                "app": r["app"],
                "reason": r["reason"],
                "detail": r["detail"],
                "tag": r["tag"],
                "event_time": r["event_time"],
                "frame_id": r["frame_id"],
                "raw_bytes": r["raw_bytes"],
                "raw": show_raw(bytes(r["raw"])),
            }
            for r in rows
        ],
        "row_limit": ROW_LIMIT,
    }


ENDPOINT = Endpoint(
    "/api/quarantine",
    quarantine_data,
    "quarantined lines: counts by reason over the range, and the newest 100 rows",
    params=("reason", "tag"),
)
PAGE = Page(
    "/quarantine",
    "Quarantine",
    "quarantine.html",
    quarantine_data,
    params=("reason", "tag"),
    endpoints=(ENDPOINT,),
)
