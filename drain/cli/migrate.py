"""``drain migrate``: apply ``sql/migrations`` to DATABASE_URL (or the embedded server)."""

from __future__ import annotations

import argparse
import asyncio

import asyncpg

from drain.cli.common import configure_logging, open_database
from drain.errors import MigrationError, NotReady
from drain.settings import Settings

__all__ = ["register"]


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``migrate`` to the ``drain`` command's subparsers."""
    migrate = commands.add_parser("migrate", help="apply the SQL migrations")
    migrate.set_defaults(func=cmd_migrate)


def cmd_migrate(args: argparse.Namespace) -> int:
    """Apply every pending migration; print what was applied. Exit 1 when the database
    cannot be reached or disagrees with the files (:class:`MigrationError`)."""
    from drain.store.migrate import migrate

    settings = Settings.load()
    configure_logging()
    with open_database(settings) as (url, _embedded):
        try:
            applied = asyncio.run(migrate(url))
        except (OSError, asyncpg.InterfaceError, TimeoutError) as error:
            raise NotReady(f"cannot connect to the database ({type(error).__name__})") from None
        except MigrationError as error:
            raise NotReady(str(error)) from None
    if applied:
        print("applied: " + ", ".join(applied))
    else:
        print("schema up to date")
    return 0
