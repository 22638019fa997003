"""Who may call the drain's endpoints: HTTP Basic credentials, HTTPS, and the refusals.

:func:`check_credentials` is the gate of ``POST /logs`` and ``GET /metrics``; the header
checks themselves are pure functions in :mod:`drain.web.auth`.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from drain.settings import Settings
from drain.web.auth import WWW_AUTHENTICATE, check_basic
from drain.web.report import Refusal
from drain.web.state import DrainState

__all__ = ["INSECURE_WARNING_EVERY_S", "Refused", "check_credentials", "refuse"]

log = logging.getLogger("drain.web")

#: at most one warning about ``X-Forwarded-Proto: http`` per this many seconds (self-drain)
INSECURE_WARNING_EVERY_S = 60.0


def refuse(status_code: int, detail: str, headers: dict[str, str] | None = None) -> Response:
    """A plain-text refusal: ``detail`` and a newline, with ``headers``."""
    return PlainTextResponse(detail + "\n", status_code=status_code, headers=headers)


@dataclass(frozen=True, slots=True)
class Refused:
    """A refusal to answer, and the :class:`~drain.web.report.Refusal` it counts as."""

    response: Response
    reason: str | None = None


def check_credentials(state: DrainState, request: Request) -> Refused | None:
    """None when the request may pass (right HTTP Basic credentials, or none required);
    else the refusal: 503 for ``X-Forwarded-Proto: http`` when DRAIN_REQUIRE_HTTPS is on,
    401 for missing or wrong credentials, and 401 for the dashboard viewer's credentials
    (DRAIN_VIEWER_USERNAME/PASSWORD) even on a drain that takes anonymous posts: a viewer
    never posts."""
    settings = state.settings
    if settings.https_required and _forwarded_http(request.headers.get("x-forwarded-proto")):
        return _insecure(state)
    if settings.viewer_credentials_set and _is_viewer(settings, request):
        return Refused(
            refuse(
                401,
                "the dashboard's viewer credentials cannot post or scrape",
                {"WWW-Authenticate": WWW_AUTHENTICATE},
            )
        )
    if settings.credentials_required:
        assert settings.drain_username is not None and settings.drain_password is not None
        if not check_basic(
            request.headers.get("authorization"),
            username=settings.drain_username,
            password=settings.drain_password.get_secret_value(),
        ):
            return Refused(
                refuse(401, "missing or wrong credentials", {"WWW-Authenticate": WWW_AUTHENTICATE})
            )
    return None


def _is_viewer(settings: Settings, request: Request) -> bool:
    """True when the request carries exactly the dashboard viewer's credentials."""
    assert settings.drain_viewer_username is not None
    assert settings.drain_viewer_password is not None
    return check_basic(
        request.headers.get("authorization"),
        username=settings.drain_viewer_username,
        password=settings.drain_viewer_password.get_secret_value(),
    )


def _forwarded_http(value: str | None) -> bool:
    """True when the (first) X-Forwarded-Proto is ``http``: the client used plain HTTP."""
    return value is not None and value.split(",")[0].strip().lower() == "http"


def _insecure(state: DrainState) -> Refused:
    """503 for a request that reached Heroku's router over plain HTTP: a 4xx would make
    Logplex drop the batches of a drain URL mistyped as http:// silently; a 5xx shows as
    failed deliveries. At most one warning a minute (a self-drain would echo each)."""
    now = asyncio.get_running_loop().time()
    last = state.insecure_warned_at
    if last is None or now - last >= INSECURE_WARNING_EVERY_S:
        state.insecure_warned_at = now
        log.warning(
            "refused a request that arrived over plain HTTP (X-Forwarded-Proto: http): "
            "use an https:// drain URL; %d refused before this one (DRAIN_REQUIRE_HTTPS)",
            state.counters.insecure_refused,
        )
    return Refused(
        refuse(503, "this drain accepts only HTTPS: use an https:// drain URL"), Refusal.INSECURE
    )
