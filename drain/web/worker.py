"""One ``drain serve`` worker process: its app, built from the environment, and its tuning.

uvicorn calls :func:`worker_app` (an app factory) in each worker process. The worker reads
the settings from the environment, takes the database URL that ``drain serve`` handed over
(the embedded server's URL is not in DATABASE_URL), builds the app and tunes the cyclic
garbage collector.

The write path allocates many short-lived containers per request (rows, tuples, dicts from
``orjson.loads``) and almost no reference cycles, so CPython's default collector
thresholds (700, 10, 10) run a gen-0 collection every ~700 allocations and a full
collection every ~70,000, each of which walks every object the process holds (the imported
modules of FastAPI, pydantic, asyncpg...). bench/README.md has what that cost under load.

:func:`tune_gc` freezes what exists after start-up (``gc.freeze()``: the objects of the
imports and the app move to a permanent generation the collector no longer walks) and
raises the gen-0 threshold, so collections are rarer and cheap. Cycles are still
collected; memory is bounded by the thresholds (a collection every 50,000 net container
allocations).
"""

from __future__ import annotations

import gc
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the master process never imports FastAPI (6 MB): only workers do
    from fastapi import FastAPI

__all__ = ["GC_THRESHOLDS", "SERVE_DATABASE_URL_ENV", "tune_gc", "worker_app"]

#: Environment variable through which `drain serve` hands the database URL to its uvicorn
#: workers (the embedded server's URL is not in DATABASE_URL). Internal; not a setting.
SERVE_DATABASE_URL_ENV = "DRAIN_SERVE_DATABASE_URL"

#: (gen-0, gen-1, gen-2) thresholds for a worker; CPython's default is (700, 10, 10).
GC_THRESHOLDS = (50_000, 50, 1000)


def tune_gc(thresholds: tuple[int, int, int] = GC_THRESHOLDS) -> None:
    """Collect once, freeze the surviving objects, set ``thresholds``. Call once, after
    the app is built (:func:`worker_app`)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*thresholds)


def worker_app() -> FastAPI:
    """uvicorn app factory: every worker process builds its own app from the environment.

    Raises:
        RuntimeError: DRAIN_SERVE_DATABASE_URL is not set (the worker was not started by
            ``drain serve``). SettingsError: the settings do not validate.
    """
    from drain.logs import configure_logging
    from drain.settings import Settings
    from drain.web.app import create_app

    url = os.environ.get(SERVE_DATABASE_URL_ENV)
    if not url:
        raise RuntimeError(
            f"{SERVE_DATABASE_URL_ENV} is not set: start the drain with `drain serve`"
        )
    settings = Settings.load()
    configure_logging(stream=sys.stdout)  # again: uvicorn's spawned workers start bare
    if settings.database_connection_pool_url is not None:
        url = settings.database_connection_pool_url.get_secret_value()  # PgBouncer
    app = create_app(settings, database_url=url)
    tune_gc()  # after the imports and the app exist
    return app
