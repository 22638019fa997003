"""Who may call the drain's endpoints: HTTP Basic credentials, a bearer token, HTTPS, and the
refusals.

:func:`authenticate` is the gate of ``POST /logs``, the OTLP routes (drain.web.otlp) and
``GET /metrics``; the header checks themselves are pure functions in :mod:`drain.web.auth`.
A refusal is a :class:`Refused` (status, detail, headers): each route renders it in its own
wire format (plain text for Logplex and /metrics, a ``google.rpc.Status`` for OTLP).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from drain.settings import Settings
from drain.web.auth import (
    BEARER_CHALLENGE,
    WWW_AUTHENTICATE,
    auth_scheme,
    check_basic,
    check_bearer,
)
from drain.web.report import Refusal
from drain.web.state import DrainState

__all__ = [
    "ANONYMOUS",
    "INSECURE_WARNING_EVERY_S",
    "Refused",
    "authenticate",
    "check_credentials",
    "refuse",
]

log = logging.getLogger("drain.web")

#: at most one warning about ``X-Forwarded-Proto: http`` per this many seconds (self-drain)
INSECURE_WARNING_EVERY_S = 60.0

#: the credential identity of a request when the drain requires no credentials
ANONYMOUS = "anonymous"


def refuse(status_code: int, detail: str, headers: dict[str, str] | None = None) -> Response:
    """A plain-text refusal: ``detail`` and a newline, with ``headers``."""
    return PlainTextResponse(detail + "\n", status_code=status_code, headers=headers)


@dataclass(frozen=True, slots=True)
class Refused:
    """A refusal, before it is rendered: the HTTP status, a human ``detail`` (English, no
    secret), the response headers (``Retry-After``, ``WWW-Authenticate``), and the
    :class:`~drain.web.report.Refusal` it counts as (None: counted by its status only)."""

    status_code: int
    detail: str
    headers: dict[str, str] = field(default_factory=dict)
    reason: str | None = None

    def plain(self) -> Response:
        """The refusal as plain text (POST /logs, GET /metrics)."""
        return refuse(self.status_code, self.detail, self.headers or None)


def authenticate(state: DrainState, request: Request) -> str | Refused:
    """Who is calling: the credential identity that passed, or the refusal.

    Identities: ``basic:<user>`` (the right HTTP Basic credentials, RFC 7617), ``bearer``
    (the right ``Authorization: Bearer`` token, DRAIN_BEARER_TOKEN, RFC 6750), or
    :data:`ANONYMOUS` when no credentials are configured. Refusals: 503 for
    ``X-Forwarded-Proto: http`` when DRAIN_REQUIRE_HTTPS is on, 401 (with the challenges
    of the configured schemes) for missing or wrong credentials, and 401 for the dashboard
    viewer's credentials (DRAIN_VIEWER_USERNAME/PASSWORD) even on a drain that takes
    anonymous posts: a viewer never posts or scrapes. Either configured scheme passes; the
    one the header names is checked, in constant time.
    """
    settings = state.settings
    if settings.https_required and _forwarded_http(request.headers.get("x-forwarded-proto")):
        return _insecure(state)
    if settings.viewer_credentials_set and _is_viewer(settings, request):
        return Refused(
            401,
            "the dashboard's viewer credentials cannot post or scrape",
            {"WWW-Authenticate": WWW_AUTHENTICATE},
        )
    if not settings.credentials_required:
        return ANONYMOUS
    header = request.headers.get("authorization")
    bearer = settings.drain_bearer_token
    user, password = settings.drain_username, settings.drain_password
    if bearer is not None and (auth_scheme(header) == "bearer" or password is None):
        if check_bearer(header, token=bearer.get_secret_value()):
            return "bearer"
    elif (
        user is not None
        and password is not None
        and check_basic(header, username=user, password=password.get_secret_value())
    ):
        return f"basic:{user}"
    challenges = [WWW_AUTHENTICATE] if settings.basic_configured else []
    if bearer is not None:
        challenges.append(BEARER_CHALLENGE)
    return Refused(401, "missing or wrong credentials", {"WWW-Authenticate": ", ".join(challenges)})


def check_credentials(state: DrainState, request: Request) -> Refused | None:
    """None when the request may pass (:func:`authenticate`), else the refusal."""
    identity = authenticate(state, request)
    return identity if isinstance(identity, Refused) else None


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
    Logplex (or an OTLP exporter) drop the batches of a drain URL mistyped as http://
    silently; a 5xx shows as failed deliveries. At most one warning a minute (a self-drain
    would echo each)."""
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
        503, "this drain accepts only HTTPS: use an https:// drain URL", reason=Refusal.INSECURE
    )
