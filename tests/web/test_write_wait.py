"""A request whose batch does not commit in time is answered 503; the retry is stored once."""

from __future__ import annotations

import asyncio

from testkit.tcpproxy import TcpProxy
from tests.support.app import NOW, drain, fetch
from tests.support.served import events_body, logplex_headers


async def test_hung_database_gets_503_in_bounded_time_and_the_retry_is_stored_once(
    migrated_url: str,
) -> None:
    """The database hangs (the proxy forwards nothing): the POST is answered 503 with
    Retry-After after DRAIN_WRITE_WAIT_S instead of waiting on, which is also what lets every
    waiting request be answered within uvicorn's graceful period on SIGTERM. The batch stays
    queued; when the database is back, Logplex's retry (same frame id) is stored once."""
    proxy = TcpProxy(migrated_url)
    await proxy.start()
    body = events_body(NOW, "wait.hung", 5)
    headers = logplex_headers(frame_id="hung-1")
    try:
        async with drain(proxy.url, drain_write_wait_s=0.5) as client:
            proxy.stall()
            hung = await client.post("/logs", content=body, headers=headers)
            proxy.restore()
            retried = await client.post("/logs", content=body, headers=headers)
            for _ in range(3):  # a retry that races the first commit may get 503 again
                if retried.status_code == 200:
                    break
                await asyncio.sleep(0.5)  # Logplex's back-off between attempts (bounded)
                retried = await client.post("/logs", content=body, headers=headers)
    finally:
        await proxy.close()
    assert hung.status_code == 503 and hung.headers["retry-after"] == "5"
    assert "not committed within" in hung.text
    assert retried.status_code == 200
    rows = await fetch(migrated_url, "SELECT count(*) FROM raw_events WHERE tag = 'wait.hung'")
    assert rows[0][0] == 5
