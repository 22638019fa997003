"""The ``drain serve`` supervisor, light: uvicorn and the metrics directory, nothing else.

``drain serve`` checks the settings and the database with the whole CLI loaded (pydantic,
asyncpg, the rollup commands: ~50 MB of RSS), then, when DATABASE_URL is set, replaces its
own process image (``os.execv``, same PID) with ``python -P -m drain.web.master HOST PORT
WORKERS GRACEFUL_S``, which imports only uvicorn, drain.logs and drain.web.metrics: the master
process that watches the WEB_CONCURRENCY workers stays small, and the workers import the
app (:func:`drain.web.worker.worker_app`). With the embedded PostgreSQL, ``drain serve`` calls
:func:`run` in process instead, because it must stop that server afterwards.

The master's memory at rest is measured in bench/README.md.
"""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import FrameType
from typing import Any

import uvicorn

__all__ = ["HTTP_PROTOCOL", "WORKER_APP", "main", "run", "uvicorn_options"]

#: the app factory each worker calls
WORKER_APP = "drain.web.worker:worker_app"
#: uvicorn's ``http=``: its httptools protocol with drain's bounds (drain.web.connections)
HTTP_PROTOCOL = "drain.web.connections:GuardedHttpToolsProtocol"

log = logging.getLogger("drain.cli")


class _Stopped(Exception):
    """uvicorn re-raised the SIGTERM/SIGINT it shut down for; the shutdown is complete."""


def _stopped(signum: int, frame: FrameType | None) -> None:
    raise _Stopped(signum)


@contextmanager
def _exit_zero_after_graceful_shutdown() -> Iterator[None]:
    """After a graceful shutdown uvicorn re-raises the signal, which would end the process
    with -SIGTERM before the embedded PostgreSQL is stopped; turn it into a normal return."""
    previous = {sig: signal.signal(sig, _stopped) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    except _Stopped:
        log.info("stopped by signal after a graceful shutdown")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run(host: str, port: int, workers: int, graceful_s: int) -> None:
    """Serve ``drain.web.worker:worker_app`` with uvicorn until SIGTERM/SIGINT (then return),
    with :func:`uvicorn_options`.

    ``graceful_s`` is how long uvicorn waits for requests in flight after SIGTERM
    (DRAIN_SHUTDOWN_REQUESTS_S).

    The environment must already hold what the workers read (drain.cli.serve.cmd_serve sets
    DRAIN_SERVE_DATABASE_URL, PORT, WEB_CONCURRENCY).
    """
    from drain.web.metrics import multiprocess_directory

    with multiprocess_directory(workers), _exit_zero_after_graceful_shutdown():
        uvicorn.run(WORKER_APP, **uvicorn_options(host, port, workers, graceful_s))


def uvicorn_options(host: str, port: int, workers: int, graceful_s: int) -> dict[str, Any]:
    """Every keyword argument ``drain serve`` gives ``uvicorn.run`` (besides the app), in one
    place.

    ``http`` is :data:`HTTP_PROTOCOL`: uvicorn's httptools protocol with drain's bounds on
    request heads and connections, which it reads from the app's lifespan state
    (drain.web.connections; docs/limits.md). uvicorn imports it in the workers only.
    """
    return {
        "factory": True,
        "host": host,
        "port": port,
        "workers": workers,
        "http": HTTP_PROTOCOL,
        "lifespan": "on",  # the lifespan hands the protocol its bounds
        "timeout_graceful_shutdown": graceful_s,
        "server_header": False,
        "log_level": "info",
        "log_config": None,  # drain.logs: JSON lines on stdout
        "access_log": False,  # one line per batch is drain's own (drain.web.report)
    }


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m drain.web.master HOST PORT WORKERS GRACEFUL_S`` (what ``drain serve``
    execs)."""
    from drain.logs import configure_logging

    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 4:
        print("usage: python -m drain.web.master HOST PORT WORKERS GRACEFUL_S", file=sys.stderr)
        return 2
    configure_logging(stream=sys.stdout)
    run(args[0], int(args[1]), int(args[2]), int(args[3]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
