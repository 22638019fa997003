"""The drain's app in process (httpx's ASGI transport), with a real writer on a real
PostgreSQL: the lifespan runs, only the socket is skipped."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
from fastapi import FastAPI

from drain.settings import Settings
from drain.web.app import create_app
from tests.support.served import AUTH, app_settings

#: the in-process app's clock
NOW = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)


def settings(**overrides: Any) -> Settings:
    """Settings for the in-process app: test credentials, a 5 s body time-out, ``overrides``."""
    return app_settings(**{"drain_body_timeout_s": 5.0, **overrides})


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Run the app's lifespan (pool + writer) and give a client talking to it in process."""
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://drain", auth=AUTH
        ) as client,
    ):
        yield client


@asynccontextmanager
async def drain(url: str, **overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A running app on the database at ``url`` whose clock reads :data:`NOW`, and a client."""
    app = create_app(settings(**overrides), database_url=url, clock=lambda: NOW)
    async with running(app) as client:
        yield client


async def fetch(url: str, query: str) -> list[asyncpg.Record]:
    """The rows of ``query`` on the database at ``url``."""
    conn = await asyncpg.connect(url)
    try:
        return list(await conn.fetch(query))
    finally:
        await conn.close()
