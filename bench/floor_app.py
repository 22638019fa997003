"""The bare HTTP apps of bench/floor.py: what receiving a POST costs before drain does anything.

Two ASGI apps that read the whole request body and answer ``200`` with a JSON object of the
drain's size, and nothing else (no decode, no write, no telemetry):

- :data:`asgi`: a plain ASGI callable, under uvicorn's httptools protocol and uvloop (what
  ``drain serve`` runs on);
- :func:`fastapi_app`: a FastAPI app with one ``POST /logs`` route that reads the body as a
  stream of chunks, as drain.web.body does, and a ``GET /health``;

and :func:`pipeline_app`, the same route that also decodes the body (decode_body) and
writes its rows with drain.store.writer.Writer (to ``DATABASE_URL``), then answers: drain's
stages with none of its glue (no admission, bounds, body budget, ledger headers, telemetry
or log line), in a worker tuned as drain's are (drain.web.worker.tune_gc).

Started by ``python -m uvicorn bench.floor_app:asgi`` (or ``--factory
bench.floor_app:fastapi_app``); bench.service.Service waits for ``GET /health``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request, Response

__all__ = ["asgi", "fastapi_app", "pipeline_app"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]

#: an answer of the size of drain's (a small JSON object)
_ANSWER = b'{"status":"ok","frames":598,"events":521,"stored":521,"quarantined":0}'
_HEADERS = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(_ANSWER))]


async def asgi(
    scope: Scope,
    receive: Callable[[], Awaitable[Message]],
    send: Callable[[Message], Awaitable[None]],
) -> None:
    """Read the whole body (any path, any method), answer 200 with :data:`_ANSWER`."""
    if scope["type"] == "lifespan":
        for _ in range(2):  # startup, then shutdown
            message = await receive()
            await send({"type": message["type"] + ".complete"})
        return
    size = 0
    for _ in range(1 << 20):  # bounded: one message per body chunk
        message = await receive()
        size += len(message.get("body", b""))
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": _ANSWER})


def fastapi_app() -> FastAPI:
    """The FastAPI app: ``POST /logs`` reads the body chunk by chunk, ``GET /health``."""
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @app.post("/logs")
    async def logs(request: Request) -> Response:
        chunks = [chunk async for chunk in request.stream()]
        b"".join(chunks)
        return Response(_ANSWER, media_type="application/json")

    @app.get("/health")
    async def health() -> Response:
        return Response(_ANSWER, media_type="application/json")

    return app


def pipeline_app() -> FastAPI:
    """``POST /logs``: read, decode_body, Writer.submit (wait for COMMIT), answer 200."""
    import os

    from bench.gen import CLIENT_HASH_KEY
    from drain.inputs.logplex import decode_body
    from drain.records import PendingBatch
    from drain.settings import Settings
    from drain.store.database import create_pool
    from drain.store.writer import Writer
    from drain.web.worker import tune_gc

    defaults = Settings.defaults()
    limits, rules = defaults.decode_limits(), defaults.line_rules(CLIENT_HASH_KEY)
    writers: list[Writer] = []

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = await create_pool(os.environ["DATABASE_URL"])
        writer = Writer(pool, defaults.writer_config())
        await writer.start()
        writers.append(writer)
        tune_gc()  # as drain's workers do (drain.web.worker)
        try:
            yield
        finally:
            await writer.close()
            await pool.close()

    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None, lifespan=lifespan)

    @app.post("/logs")
    async def logs(request: Request) -> Response:
        body = b"".join([chunk async for chunk in request.stream()])
        now = datetime.now(UTC)
        token = request.headers.get("logplex-drain-token")
        decoded = decode_body(body, now=now, limits=limits, rules=rules, app=token or "")
        del body
        await writers[0].submit(
            PendingBatch(
                token,
                request.headers.get("logplex-frame-id"),
                now,
                decoded.rows,
                decoded.quarantined,
                decoded.ledger.body_bytes,
            )
        )
        return Response(_ANSWER, media_type="application/json")

    @app.get("/health")
    async def health() -> Response:
        return Response(_ANSWER, media_type="application/json")

    return app
