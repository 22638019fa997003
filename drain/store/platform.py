"""What the web service reads of Heroku's own lines from the database: the key of the
client hash, and the platform errors of the last minutes for ``/health``.

Both are small queries on a pooled connection, bounded by the caller's timeout.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from drain.errors import NotReady
from drain.store.database import Conn

__all__ = ["CLIENT_HASH_KEY", "RecentCode", "load_client_hash_key", "recent_codes"]

#: the name of the client-hash key in table ``drain_secrets`` (migration 0203)
CLIENT_HASH_KEY = "client_hash_key"


async def load_client_hash_key(conn: Conn) -> bytes:
    """The key of ``router_requests.client_hash`` kept in ``drain_secrets`` (32 bytes, made
    by migration 0203): the same for every dyno and every restart.

    Raises:
        NotReady: the table or the key is missing (the migrations were not applied).
        asyncpg.PostgresError: other database errors.
    """
    exists = await conn.fetchval("SELECT to_regclass('drain_secrets') IS NOT NULL")
    value = None
    if exists:
        value = await conn.fetchval(
            "SELECT value FROM drain_secrets WHERE name = $1", CLIENT_HASH_KEY
        )
    if not isinstance(value, bytes) or not 1 <= len(value) <= 64:
        raise NotReady(
            "the client_hash key is missing from drain_secrets: run `drain migrate` "
            "(migration 0203), or set DRAIN_CLIENT_HASH_KEY"
        )
    return value


@dataclass(frozen=True, slots=True)
class RecentCode:
    """How often one Heroku error code was seen for one app in a recent span.

    Fields:
        app: the rows' ``app`` (a DRAIN_APPS name, a drain token, or ``""``).
        code: the code (``R14``).
        count: rows of ``platform_events`` with that code in the span.
        last_at: the latest of their times (UTC).
    """

    app: str
    code: str
    count: int
    last_at: datetime


async def recent_codes(
    conn: Conn, codes: tuple[str, ...], now: datetime, window_s: float
) -> list[RecentCode]:
    """The given codes in ``platform_events`` whose time is within ``window_s`` seconds
    before ``now`` (UTC), by app and code, most recent first (index
    ``platform_events_code_event_time_idx``)."""
    if not codes:
        return []
    rows = await conn.fetch(
        """SELECT app, code, count(*) AS n, max(event_time) AS last_at
             FROM platform_events
            WHERE code = ANY($1::text[]) AND event_time > $2 AND event_time <= $3
            GROUP BY app, code
            ORDER BY last_at DESC
            LIMIT 100""",
        list(codes),
        now - timedelta(seconds=window_s),
        now + timedelta(seconds=60),
    )
    return [RecentCode(r["app"], r["code"], int(r["n"]), r["last_at"]) for r in rows]
