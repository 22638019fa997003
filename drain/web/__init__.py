"""The web service: the app factory, the ingest handler, health, metrics, the process.

- :mod:`drain.web.app`: :func:`create_app`, the lifespan (pool, writer), the routes;
- :mod:`drain.web.ingest`: ``POST /logs``, step by step;
- :mod:`drain.web.access`: who may call (credentials, HTTPS) and the refusals;
- :mod:`drain.web.auth`: HTTP Basic and drain-token checks (pure);
- :mod:`drain.web.body`: the request body, streamed, capped, gzip-decoded;
- :mod:`drain.web.report`: one report per batch, fed to the log, ``/health`` and Prometheus;
- :mod:`drain.web.health`: ``/health``'s counters, probes and warnings;
- :mod:`drain.web.metrics`: Prometheus metrics, correct with several workers;
- :mod:`drain.web.state`, :mod:`drain.web.config`: what one app holds, and its bounds;
- :mod:`drain.web.connections`: bounds on connections and request heads, before the app;
- :mod:`drain.web.master` and :mod:`drain.web.worker`: the ``drain serve`` processes.

The names below are imported on first use, so that the light master process
(drain.web.master) never imports FastAPI.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["WebConfig", "create_app"]

_HOMES = {"WebConfig": "drain.web.config", "create_app": "drain.web.app"}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'drain.web' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
