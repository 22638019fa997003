"""What a dashboard page and an ``/api/...`` endpoint are: the types of the registry.

A :class:`Page` is an HTML page (a Jinja2 template and the loader that gives it its data); an
:class:`Endpoint` is a JSON (or CSV) answer of a loader under ``/api/``. Both receive one
:class:`Ask`. drain.web.dashboard.registry lists them; drain.web.dashboard.views serves them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from drain.rollups.spec import RollupSpec
from drain.web.dashboard.db import Gate
from drain.web.dashboard.ranges import Filters
from drain.web.state import DrainState

__all__ = ["Ask", "Endpoint", "Loader", "NotFound", "Page"]


class NotFound(Exception):
    """The page or endpoint names something that does not exist (HTTP 404); the message
    says what, and never echoes more than a short, escaped part of the request."""


@dataclass(frozen=True, slots=True)
class Ask:
    """One request to the dashboard, as its loader sees it.

    Fields:
        state: the worker's app state (pool, writer, telemetry, settings).
        gate: the dashboard's read-only access to the pool (drain.web.dashboard.db).
        filters: the time range, the app and the page's own parameters.
        path: the path parameters (``{"name": "payment_history"}``).
        now: the request's time, UTC.
        rollups: every rollup of sql/rollups, by name.
    """

    state: DrainState
    gate: Gate
    filters: Filters
    path: Mapping[str, str]
    now: datetime
    rollups: Mapping[str, RollupSpec]


#: what a page or endpoint runs: its data, JSON-able (datetimes and Decimals allowed)
Loader = Callable[[Ask], Awaitable[dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class Endpoint:
    """``GET path`` answers ``load(ask)`` as JSON (``media="json"``) or as CSV
    (``media="csv"``: the loader returns ``{"filename", "header", "rows"}``).

    ``params`` are the endpoint's own query parameters (besides range, from, to, app);
    ``summary`` is its one-line description (docs/dashboard.md lists them).
    """

    path: str
    load: Loader
    summary: str
    params: tuple[str, ...] = ()
    media: str = "json"


@dataclass(frozen=True, slots=True)
class Page:
    """``GET path`` renders ``template`` with ``load(ask)``.

    Fields:
        path: the route (may have ``{name}`` parameters).
        title: its name in the navigation bar.
        template: a file of drain/web/dashboard/templates.
        load: the template's data.
        nav: the navigation entry it belongs to (its own path when None).
        params: the page's own query parameters.
        endpoints: the JSON endpoints its charts read.
    """

    path: str
    title: str
    template: str
    load: Loader
    nav: str | None = None
    params: tuple[str, ...] = ()
    endpoints: tuple[Endpoint, ...] = field(default=())

    @property
    def nav_path(self) -> str:
        """The navigation entry this page lights up."""
        return self.nav or self.path
