"""Every real sample body through POST /logs over real HTTP, compared with its golden file.

The app runs in this process under uvicorn on a real 127.0.0.1 port, with the golden files'
fixed clock (GOLDEN_NOW), so the acceptance window decides exactly as it did when the goldens
were written. The stored rows (raw_events, quarantine) must be the golden's events and
quarantined frames, and the response's Drain-* headers its summary.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import asyncpg
import httpx
import orjson
import pytest

from drain.settings import Settings
from drain.store.migrate import migrate
from drain.web.app import create_app
from tests.support.samples import GOLDEN_NOW, SampleCase, sample_cases
from tests.support.served import AUTH, PASSWORD, USER, async_chunks, served_app

CASES = sample_cases()


@pytest.fixture
async def golden_drain(database_url: str) -> AsyncIterator[str]:
    """Base URL of the app served by uvicorn on a free port, clock fixed at GOLDEN_NOW."""
    await migrate(database_url)
    settings = Settings(database_url=None, drain_username=USER, drain_password=PASSWORD)
    app = create_app(settings, database_url=database_url, clock=lambda: GOLDEN_NOW)
    async with served_app(app) as base_url:
        yield base_url


def golden_lines(case: SampleCase) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in case.golden_path.read_bytes().splitlines() if line]


def frame_id_of(headers: dict[str, str]) -> str | None:
    lowered = {k.lower(): v for k, v in headers.items()}
    return lowered.get("logplex-frame-id") or lowered.get("x-request-id")


def iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


async def test_samples_through_http_match_their_goldens(
    golden_drain: str, database_url: str
) -> None:
    assert len(CASES) >= 30
    conn = await asyncpg.connect(database_url)
    try:
        async with httpx.AsyncClient(base_url=golden_drain, auth=AUTH, timeout=10) as client:
            for case in CASES:
                headers = case.replay_headers()
                headers.pop("Authorization", None)
                headers.setdefault("Content-Type", "application/logplex-1")
                if frame_id_of(headers) is None:
                    headers["Logplex-Frame-Id"] = f"golden-{case.name}"
                frame_id = frame_id_of(headers)
                chunked = any(
                    k.lower() == "transfer-encoding" and "chunked" in v.lower()
                    for k, v in case.headers.items()
                )
                content = async_chunks(case.body()) if chunked else case.body()
                response = await client.post("/logs", content=content, headers=headers)
                assert response.status_code == 200, (case.name, response.text)
                await compare(conn, case, frame_id, response)
    finally:
        await conn.close()


async def compare(
    conn: asyncpg.Connection, case: SampleCase, frame_id: str | None, response: httpx.Response
) -> None:
    lines = golden_lines(case)
    summary = lines[-1]
    assert summary["type"] == "summary"
    frames = lines[:-1]

    expected_events = sorted(
        (
            line["timestamp"],
            line["tag"],
            orjson.dumps(orjson.loads(line["payload"]), option=orjson.OPT_SORT_KEYS),
            line["facility"],
            line["severity"],
            line["hostname"],
            line["app_name"],
            line["proc_id"],
        )
        for line in frames
        if line["outcome"] == "event"
    )
    rows = await conn.fetch(
        "SELECT event_time, tag, payload, facility, severity, hostname, app_name, proc_id"
        " FROM raw_events WHERE frame_id = $1",
        frame_id,
    )
    got_events = sorted(
        (
            iso(r["event_time"]),
            r["tag"],
            orjson.dumps(orjson.loads(r["payload"]), option=orjson.OPT_SORT_KEYS),
            r["facility"],
            r["severity"],
            r["hostname"],
            r["app_name"],
            r["proc_id"],
        )
        for r in rows
    )
    assert got_events == expected_events, case.name

    expected_quarantine = sorted(
        (line["offset"], line["reason"], line["tag"], line["timestamp"])
        for line in frames
        if line["outcome"] == "quarantined"
    )
    quarantined = await conn.fetch(
        "SELECT frame_offset, reason, tag, event_time FROM quarantine WHERE frame_id = $1",
        frame_id,
    )
    got_quarantine = sorted(
        (
            r["frame_offset"],
            r["reason"],
            r["tag"],
            iso(r["event_time"]) if r["event_time"] is not None else None,
        )
        for r in quarantined
    )
    assert got_quarantine == expected_quarantine, case.name

    h = response.headers
    assert int(h["drain-frames"]) == summary["frames"], case.name
    assert int(h["drain-events-stored"]) == summary["events"], case.name
    assert int(h["drain-quarantined"]) == len(expected_quarantine), case.name
    assert int(h["drain-not-events"]) == summary["not_events"], case.name
    sent = {k.lower(): v for k, v in case.headers.items()}.get("logplex-msg-count")
    mismatch = sent is not None and int(sent) != summary["frames"]
    assert ("drain-msg-count-mismatch" in h) == mismatch, case.name
