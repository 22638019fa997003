"""A small asyncio TCP proxy on 127.0.0.1 that can cut every connection, for failure tests.

``TcpProxy(url)`` forwards 127.0.0.1:<port> to the PostgreSQL server of ``url`` (TCP or
unix socket). :meth:`cut` aborts every open connection (RST) and makes new ones fail at
once, as if the database had gone away; :meth:`restore` lets connections through again.
:meth:`stall` keeps every connection open but forwards nothing (a database that hangs, a
network that drops packets) until :meth:`restore`.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, cast
from urllib.parse import urlsplit, urlunsplit

from drain.store.database import connect_kwargs


class TcpProxy:
    """Forward 127.0.0.1:``port`` to the server of ``upstream_url``; see the module docstring."""

    def __init__(self, upstream_url: str) -> None:
        self._upstream_url = upstream_url
        kwargs = cast("dict[str, Any]", connect_kwargs(upstream_url))
        self._host = str(kwargs.get("host", "127.0.0.1"))
        self._port = int(kwargs.get("port", 5432))
        self._server: asyncio.Server | None = None
        self._transports: set[asyncio.WriteTransport] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.cut_active = False
        self.port = 0
        self._flowing = asyncio.Event()
        self._flowing.set()

    @property
    def url(self) -> str:
        """``upstream_url`` pointed at the proxy (TCP, no TLS)."""
        parts = urlsplit(self._upstream_url)
        userinfo = parts.netloc.rpartition("@")[0]
        netloc = f"{userinfo}@127.0.0.1:{self.port}" if userinfo else f"127.0.0.1:{self.port}"
        return urlunsplit((parts.scheme, netloc, parts.path, "sslmode=disable", ""))

    async def start(self) -> None:
        """Listen on an ephemeral port of 127.0.0.1."""
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    def cut(self) -> None:
        """Abort every open connection; refuse new ones until :meth:`restore`."""
        self.cut_active = True
        for transport in list(self._transports):
            transport.abort()
        self._transports.clear()

    def restore(self) -> None:
        """Let new connections through again; end a :meth:`stall`."""
        self.cut_active = False
        self._flowing.set()

    def stall(self) -> None:
        """Forward no more bytes in either direction (connections stay open) until restore."""
        self._flowing.clear()

    async def close(self) -> None:
        """Stop listening and abort every connection."""
        self._flowing.set()
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks)

    async def _open_upstream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._host.startswith("/"):
            return await asyncio.open_unix_connection(f"{self._host}/.s.PGSQL.{self._port}")
        return await asyncio.open_connection(self._host, self._port)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.cut_active:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await self._open_upstream()
        except OSError:
            writer.transport.abort()
            return
        pair = (writer.transport, up_writer.transport)
        self._transports.update(pair)
        forward = asyncio.create_task(self._pipe(reader, up_writer))
        backward = asyncio.create_task(self._pipe(up_reader, writer))
        for task in (forward, backward):
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        await asyncio.wait({forward, backward})
        for transport in pair:
            self._transports.discard(transport)
            transport.abort()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Ends when either side closes or is aborted; each read is bounded by the socket.
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                await self._flowing.wait()
                writer.write(data)
                await writer.drain()
        writer.transport.abort()
