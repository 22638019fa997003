"""One ``drain serve`` worker process: its app, built from the environment, and its tuning.

uvicorn calls :func:`worker_app` (an app factory) in each worker process. The worker reads
the settings from the environment, takes the database URL that ``drain serve`` handed over
(the embedded server's URL is not in DATABASE_URL), builds the app and tunes glibc's malloc
and the cyclic garbage collector.

The write path allocates many short-lived containers per request (rows, tuples, dicts from
``orjson.loads``) and almost no reference cycles, so CPython's default collector
thresholds (700, 10, 10) run a gen-0 collection every ~700 allocations and a full
collection every ~70,000, each of which walks every object the process holds (the imported
modules of FastAPI, pydantic, asyncpg...). bench/README.md has what that cost under load.

:func:`tune_gc` freezes what exists after start-up (``gc.freeze()``: the objects of the
imports and the app move to a permanent generation the collector no longer walks) and
raises the gen-0 threshold, so collections are rarer and cheap. Cycles are still
collected; memory is bounded by the thresholds (a collection every 50,000 net container
allocations). A reference cycle that holds a request body therefore lives until the next
collection, which with these thresholds can be hundreds of requests later: the decoder and
the writer must not make such cycles (tests/web/test_memory.py checks them).

:func:`tune_malloc` fixes glibc's mmap threshold (mallopt(3), ``M_MMAP_THRESHOLD``). By
default glibc raises the threshold each time a block it had mmapped is freed, up to 32 MiB:
after the first 8 MiB request body is freed, the following ones are carved from the heap,
where a freed body stays resident until the heap's top is free again. With the threshold
fixed at 128 KiB (glibc's starting value) every block from 128 KiB up (large bodies, their
decoded pieces, big lists) gets its own mapping and goes back to the operating system when
freed; Logplex's ~100 KiB bodies stay on the heap. Setting it also turns off the dynamic
trim threshold (mallopt(3), "NOTES"). bench/README.md ("Memory (round 3)") has the figures.
"""

from __future__ import annotations

import ctypes
import gc
import os
import platform
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the master process never imports FastAPI (6 MB): only workers do
    from fastapi import FastAPI

__all__ = [
    "GC_THRESHOLDS",
    "MMAP_THRESHOLD_BYTES",
    "SERVE_DATABASE_URL_ENV",
    "tune_gc",
    "tune_malloc",
    "worker_app",
]

#: Environment variable through which `drain serve` hands the database URL to its uvicorn
#: workers (the embedded server's URL is not in DATABASE_URL). Internal; not a setting.
SERVE_DATABASE_URL_ENV = "DRAIN_SERVE_DATABASE_URL"

#: (gen-0, gen-1, gen-2) thresholds for a worker; CPython's default is (700, 10, 10).
GC_THRESHOLDS = (50_000, 50, 1000)

#: blocks at least this large (bytes) get their own mmap (glibc's default starting value)
MMAP_THRESHOLD_BYTES = 128 * 1024
#: mallopt parameter number of M_MMAP_THRESHOLD (glibc malloc.h)
_M_MMAP_THRESHOLD = -3
#: the environment variable through which glibc takes the same setting (mallopt(3))
_MMAP_THRESHOLD_ENV = "MALLOC_MMAP_THRESHOLD_"


def tune_gc(thresholds: tuple[int, int, int] = GC_THRESHOLDS) -> None:
    """Collect once, freeze the surviving objects, set ``thresholds``. Call once, after
    the app is built (:func:`worker_app`)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*thresholds)


def tune_malloc(threshold: int = MMAP_THRESHOLD_BYTES) -> bool:
    """Fix glibc's mmap threshold at ``threshold`` bytes (see the module docstring).

    Returns True when set; False, doing nothing, when the C library is not glibc (musl,
    macOS) or when ``MALLOC_MMAP_THRESHOLD_`` is in the environment (glibc has taken the
    operator's value at start-up). Call once, at worker start-up (:func:`worker_app`).
    """
    if os.environ.get(_MMAP_THRESHOLD_ENV) or platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(None)
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, threshold))


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
    tune_malloc()
    tune_gc()  # after the imports and the app exist
    return app
