"""Serving the dashboard: routes, the viewer's credentials, security headers, templates,
static files.

:func:`add_dashboard` adds, for every page and endpoint of drain.web.dashboard.registry, one
``GET`` route to the app, plus ``/static/...``. Every answer:

- passes :meth:`Dashboard.admit` first: with DRAIN_VIEWER_USERNAME/DRAIN_VIEWER_PASSWORD set,
  HTTP Basic with exactly that pair (drain.web.auth.check_basic; otherwise 401 with
  ``WWW-Authenticate: Basic realm="drain dashboard"``); a request that reached Heroku's
  router over plain HTTP (``X-Forwarded-Proto: http``, when DRAIN_REQUIRE_HTTPS is on) is
  redirected (308) to ``https://``. With access ``"open"`` (a local drain) nothing is asked.
  With access ``"off"`` no route is added at all: 404.
- carries :data:`SECURITY_HEADERS`: a Content-Security-Policy that allows scripts, styles,
  images and fetches from this origin only and no inline script or style, no framing
  (``frame-ancestors 'none'``), ``X-Content-Type-Options: nosniff``, no referrer; pages and
  data also ``Cache-Control: no-store``.

Templates are Jinja2 with autoescape on for every file, so a value from the database (a tag,
an app, a payload, a quarantined line) is always text, never markup. The charts' data is
JSON fetched by ``static/dashboard.js``, which writes text only through ``textContent``.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from importlib.resources import files
from typing import Any

import orjson
from fastapi import FastAPI
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response

from drain.rollups.runner import load_rollups
from drain.web.auth import check_basic
from drain.web.dashboard.db import DashboardUnavailable, Gate, read_only
from drain.web.dashboard.pages import Ask, Endpoint, NotFound, Page
from drain.web.dashboard.ranges import PRESETS, Filters, RangeError, parse_filters
from drain.web.dashboard.registry import ENDPOINTS, NAV, PAGES
from drain.web.dashboard.rollups import csv_text
from drain.web.state import DrainState

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "SECURITY_HEADERS",
    "STATIC_FILES",
    "VIEWER_REALM",
    "Dashboard",
    "add_dashboard",
]

log = logging.getLogger("drain.web.dashboard")

#: the Content-Security-Policy of every dashboard answer (CSP Level 3)
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; font-src 'self'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
#: the challenge of a 401 from the dashboard (RFC 7617 §2)
VIEWER_REALM = 'Basic realm="drain dashboard", charset="UTF-8"'

#: the files under /static/, from drain/web/dashboard/static: path -> media type
STATIC_FILES = {
    "dashboard.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
    "vendor/uplot/uPlot.iife.min.js": "text/javascript; charset=utf-8",
    "vendor/uplot/uPlot.min.css": "text/css; charset=utf-8",
    "vendor/uplot/LICENSE": "text/plain; charset=utf-8",
    "vendor/uplot/VENDORED.json": "application/json",
}

#: query parameters every page keeps (besides range, from, to, app)
COMMON_PARAMS = ("refresh",)


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"not JSON: {type(value).__name__}")


def _json(data: Any, status: int = 200) -> Response:
    body = orjson.dumps(data, default=_json_default, option=orjson.OPT_NON_STR_KEYS)
    return Response(body, status_code=status, media_type="application/json")


#: what the templates show for a missing value (an en dash)
_NONE = "\u2013"


def _utc(value: Any) -> str:
    """Template filter: a datetime (or ISO text) as ``2026-12-01 10:00:00 UTC``."""
    if value is None:
        return _NONE
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return str(value)


def _num(value: Any) -> str:
    """Template filter: a number with thousands separators (a dash for None)."""
    if value is None:
        return _NONE
    if isinstance(value, float | Decimal) and value != int(value):
        return f"{value:,.2f}"
    return f"{int(value):,}"


def _per(seconds: int) -> str:
    """Template filter: a bucket width in words (``hour``, ``minute``, ``day``, ``15 min``)."""
    named = {60: "minute", 3600: "hour", 86400: "day", 7 * 86400: "week"}
    if seconds in named:
        return named[seconds]
    if seconds % 86400 == 0:
        return f"{seconds // 86400} days"
    if seconds % 3600 == 0:
        return f"{seconds // 3600} hours"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"


def _pretty(value: Any) -> str:
    """Template filter: a JSON value, indented (for display as text)."""
    if isinstance(value, str):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            return str(value)
    text: str = orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()
    return text


class Dashboard:
    """The dashboard of one web worker: its gate to the pool, its rollups, templates and
    static files (read once, at start)."""

    def __init__(self, state: DrainState) -> None:
        settings = state.settings
        self.state = state
        self.gate = Gate(settings.drain_dashboard_statement_timeout_s)
        self.rollups = load_rollups()
        self.env = Environment(
            loader=PackageLoader("drain.web.dashboard", "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters.update(utc=_utc, num=_num, pretty=_pretty, per=_per)
        static = files("drain.web.dashboard").joinpath("static")
        self.static: dict[str, tuple[bytes, str, str]] = {}
        for name, media in STATIC_FILES.items():
            data = static.joinpath(name).read_bytes()
            self.static[name] = (data, media, '"' + hashlib.sha256(data).hexdigest()[:32] + '"')
        self.version = self.static["dashboard.js"][2].strip('"')[:12]

    # ------------------------------------------------------------------ admission

    def admit(self, request: Request) -> Response | None:
        """None when the request may see the dashboard, else the answer (401, or 308 to
        https://)."""
        settings = self.state.settings
        proto = request.headers.get("x-forwarded-proto", "")
        if settings.https_required and proto.split(",")[0].strip().lower() == "http":
            url = request.url.replace(scheme="https")
            return RedirectResponse(str(url), status_code=308)
        if settings.dashboard_access == "viewer":
            assert settings.drain_viewer_username is not None
            assert settings.drain_viewer_password is not None
            if not check_basic(
                request.headers.get("authorization"),
                username=settings.drain_viewer_username,
                password=settings.drain_viewer_password.get_secret_value(),
            ):
                return PlainTextResponse(
                    "the dashboard needs the viewer's credentials "
                    "(DRAIN_VIEWER_USERNAME / DRAIN_VIEWER_PASSWORD)\n",
                    status_code=401,
                    headers={"WWW-Authenticate": VIEWER_REALM},
                )
        return None

    @staticmethod
    def secure(response: Response, *, cache: bool = False) -> Response:
        """``response`` with :data:`SECURITY_HEADERS` (and ``no-store`` unless ``cache``)."""
        response.headers.update(SECURITY_HEADERS)
        if not cache:
            response.headers["Cache-Control"] = "no-store"
        return response

    def _ask(self, request: Request, params: tuple[str, ...]) -> Ask:
        now = self.state.clock().astimezone(UTC)
        filters = parse_filters(dict(request.query_params), now, (*params, *COMMON_PARAMS))
        return Ask(
            state=self.state,
            gate=self.gate,
            filters=filters,
            path=dict(request.path_params),
            now=now,
            rollups=self.rollups,
        )

    # ------------------------------------------------------------------ handlers

    def api(self, endpoint: Endpoint) -> Callable[[Request], Awaitable[Response]]:
        """The route handler of ``endpoint``."""

        async def handle(request: Request) -> Response:
            refused = self.admit(request)
            if refused is not None:
                return self.secure(refused)
            try:
                ask = self._ask(request, endpoint.params)
                data = await endpoint.load(ask)
            except RangeError as error:
                return self.secure(_json({"error": str(error)}, 400))
            except NotFound as error:
                return self.secure(_json({"error": str(error)}, 404))
            except DashboardUnavailable as error:
                return self.secure(_json({"error": str(error)}, 503))
            if endpoint.media == "csv":
                response: Response = Response(
                    csv_text(data["header"], data["rows"]),
                    media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{data["filename"]}"'},
                )
                return self.secure(response)
            return self.secure(_json(data))

        return handle

    def page(self, page: Page) -> Callable[[Request], Awaitable[Response]]:
        """The route handler of ``page``."""
        template = self.env.get_template(page.template)

        async def handle(request: Request) -> Response:
            refused = self.admit(request)
            if refused is not None:
                return self.secure(refused)
            try:
                ask = self._ask(request, page.params)
            except RangeError as error:
                return self.secure(self._error(request, page, None, 400, str(error)))
            try:
                data = await page.load(ask)
                apps = await self._apps(ask)
            except NotFound as error:
                return self.secure(self._error(request, page, ask.filters, 404, str(error)))
            except DashboardUnavailable as error:
                return self.secure(self._error(request, page, ask.filters, 503, str(error)))
            html = template.render(
                **self._common(request, page, ask.filters, apps), data=data, ask_path=ask.path
            )
            return self.secure(HTMLResponse(html))

        return handle

    def _common(
        self, request: Request, page: Page, filters: Filters | None, apps: list[str]
    ) -> dict[str, Any]:
        settings = self.state.settings
        return {
            "nav": NAV,
            "current": page.nav_path,
            "title": page.title,
            "path": request.url.path,
            "filters": filters,
            "presets": list(PRESETS),
            "apps": apps,
            "refresh_s": settings.drain_dashboard_refresh_s,
            "auto_refresh": filters is not None and filters.extra.get("refresh") == "on",
            "version": self.version,
        }

    def _error(
        self, request: Request, page: Page, filters: Filters | None, status: int, message: str
    ) -> Response:
        html = self.env.get_template("error.html").render(
            **self._common(request, page, filters, []), status=status, message=message
        )
        return HTMLResponse(html, status_code=status)

    async def _apps(self, ask: Ask) -> list[str]:
        """The apps the app filter offers: DRAIN_APPS's names and those of the last 30 days
        of ``events_per_tag_hourly`` (at most 200), and the one asked for."""
        found = set(self.state.settings.app_names.values())
        async with read_only(self.state.pool, self.gate) as conn:
            if await conn.fetchval("SELECT to_regclass('events_per_tag_hourly')") is not None:
                rows = await conn.fetch(
                    """SELECT DISTINCT app FROM events_per_tag_hourly
                        WHERE bucket >= $1::timestamptz - interval '30 days' LIMIT 200""",
                    ask.now,
                )
                found.update(r["app"] for r in rows)
        if ask.filters.app is not None:
            found.add(ask.filters.app)
        return sorted(found)

    async def static_file(self, request: Request) -> Response:
        """``GET /static/{path}``: one of :data:`STATIC_FILES`, with an ETag."""
        refused = self.admit(request)
        if refused is not None:
            return self.secure(refused)
        found = self.static.get(request.path_params.get("path", ""))
        if found is None:
            return self.secure(PlainTextResponse("not found\n", status_code=404))
        data, media, etag = found
        headers = {"ETag": etag, "Cache-Control": "no-cache"}
        if request.headers.get("if-none-match") == etag:
            return self.secure(Response(status_code=304, headers=headers), cache=True)
        return self.secure(Response(data, media_type=media, headers=headers), cache=True)


def add_dashboard(app: FastAPI, state: DrainState) -> Dashboard | None:
    """Add the dashboard's routes to ``app`` (see the module docstring); None, and a log
    line saying how to turn it on, when its access is ``"off"``."""
    settings = state.settings
    access = settings.dashboard_access
    if access == "off":
        if settings.drain_dashboard:
            log.info(
                "dashboard off: a deployed drain serves it only behind DRAIN_VIEWER_USERNAME "
                "and DRAIN_VIEWER_PASSWORD"
            )
        return None
    dashboard = Dashboard(state)
    for endpoint in ENDPOINTS:
        app.add_api_route(endpoint.path, dashboard.api(endpoint), methods=["GET"])
    for page in PAGES:
        app.add_api_route(page.path, dashboard.page(page), methods=["GET"])
    app.add_api_route("/static/{path:path}", dashboard.static_file, methods=["GET"])
    return dashboard
