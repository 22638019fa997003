"""Who may open the dashboard: the viewer's credentials of their own, which never post to
/logs nor scrape /metrics (and the drain's credentials never open the dashboard); off (404)
on a deployed drain without them; only GET; HTTPS through Heroku's router."""

from __future__ import annotations

from datetime import timedelta

import pytest

from drain.errors import SettingsError
from drain.settings import Settings
from tests.support.app import running
from tests.support.dashboard import NOW, dashboard_app
from tests.support.otlp import BEARER, BEARER_HEADER, PROTOBUF, Record, logs_request, nanos
from tests.support.served import AUTH, frame, logplex_headers

VIEWER = ("viewer", "look but do not touch")
VIEWER_SETTINGS = {"drain_viewer_username": VIEWER[0], "drain_viewer_password": VIEWER[1]}


def one_event() -> bytes:
    at = (NOW - timedelta(minutes=1)).isoformat()
    return frame(f'<134>1 {at} host app web.1 - @[a.b] {{"n":1}}\n')


async def test_the_viewer_opens_the_dashboard_and_nothing_else(migrated_url: str) -> None:
    async with running(dashboard_app(migrated_url, **VIEWER_SETTINGS)) as client:
        for path in ("/", "/api/overview", "/static/dashboard.js", "/rollups/payment_history"):
            anonymous = await client.get(path, auth=None)
            assert anonymous.status_code == 401, path
            assert anonymous.headers["www-authenticate"].startswith('Basic realm="drain dashboard"')
            assert anonymous.headers["content-security-policy"]
            drainer = await client.get(path, auth=AUTH)  # the drain's (machines') pair
            assert drainer.status_code == 401, path
            wrong = await client.get(path, auth=(VIEWER[0], VIEWER[1] + "x"))
            assert wrong.status_code == 401, path
            assert (await client.get(path, auth=VIEWER)).status_code == 200, path
        headers = logplex_headers(msg_count=1, frame_id="viewer-1")
        posted = await client.post("/logs", content=one_event(), headers=headers, auth=VIEWER)
        assert posted.status_code == 401
        assert "viewer" in posted.text
        assert (await client.get("/metrics", auth=VIEWER)).status_code == 401
        stored = await client.post("/logs", content=one_event(), headers=headers, auth=AUTH)
        assert stored.status_code == 200
        assert stored.headers["drain-events-stored"] == "1"
        assert (await client.get("/metrics", auth=AUTH)).status_code == 200


async def test_viewers_cannot_post_even_to_an_anonymous_drain(migrated_url: str) -> None:
    app = dashboard_app(migrated_url, drain_username=None, drain_password=None, **VIEWER_SETTINGS)
    async with running(app) as client:
        headers = logplex_headers(msg_count=1, frame_id="anon-1")
        refused = await client.post("/logs", content=one_event(), headers=headers, auth=VIEWER)
        assert refused.status_code == 401
        anonymous = await client.post("/logs", content=one_event(), headers=headers, auth=None)
        assert anonymous.status_code == 200


async def test_the_bearer_token_and_the_viewer_stay_apart(migrated_url: str) -> None:
    """The OTLP bearer token opens no page; the viewer's pair posts no OTLP export."""
    app = dashboard_app(migrated_url, drain_bearer_token=BEARER, **VIEWER_SETTINGS)
    body = logs_request([Record('@[a.b] {"n":1}', nanos(NOW))]).SerializeToString()
    async with running(app) as client:
        for path in ("/", "/api/overview"):
            page = await client.get(path, auth=None, headers=BEARER_HEADER)
            assert page.status_code == 401, path
        viewer = await client.post("/v1/logs", content=body, headers=PROTOBUF, auth=VIEWER)
        assert viewer.status_code == 401
        stored = await client.post(
            "/v1/logs", content=body, headers={**PROTOBUF, **BEARER_HEADER}, auth=None
        )
        assert stored.status_code == 200
        assert (await client.get("/api/overview", auth=VIEWER)).status_code == 200


async def test_the_dashboard_accepts_no_post(migrated_url: str) -> None:
    async with running(dashboard_app(migrated_url)) as client:
        for path in ("/", "/api/overview", "/api/rollups/payment_history", "/tags"):
            assert (await client.post(path, content=b"x")).status_code == 405, path


@pytest.mark.parametrize(
    "overrides",
    [
        # deployed, no viewer credentials: off
        {"database_url": "postgresql://u@h/d"},
        # bound beyond loopback without viewer credentials: off
        {"drain_host": "0.0.0.0"},
        # turned off
        {"drain_dashboard": False, **VIEWER_SETTINGS},
    ],
)
async def test_the_dashboard_is_off_without_viewer_credentials_when_deployed(
    migrated_url: str, overrides: dict[str, object]
) -> None:
    async with running(dashboard_app(migrated_url, **overrides)) as client:
        for path in ("/", "/api/overview", "/static/dashboard.js", "/tags"):
            assert (await client.get(path)).status_code == 404, path
        assert (await client.get("/health")).status_code == 200


async def test_a_deployed_drain_serves_the_dashboard_to_its_viewers(migrated_url: str) -> None:
    app = dashboard_app(migrated_url, database_url="postgresql://u@h/d", **VIEWER_SETTINGS)
    async with running(app) as client:
        assert (await client.get("/", auth=VIEWER)).status_code == 200
        # Heroku's router got it over plain HTTP: to https://, before any credential is read
        plain = await client.get("/tags?range=1h", headers={"X-Forwarded-Proto": "http"}, auth=None)
        assert plain.status_code == 308
        assert plain.headers["location"] == "https://drain/tags?range=1h"


def test_the_viewer_settings_are_checked() -> None:
    with pytest.raises(SettingsError, match="must be set together"):
        Settings.defaults(drain_viewer_username="v").check_serving()
    same = {"drain_username": "u", "drain_password": "p"}
    with pytest.raises(SettingsError, match="a viewer could post"):
        Settings.defaults(
            **same, drain_viewer_username="u", drain_viewer_password="p"
        ).check_serving()
    Settings.defaults(**same, drain_viewer_username="u", drain_viewer_password="q").check_serving()
    with pytest.raises(SettingsError, match="DRAIN_VIEWER_USERNAME"):
        Settings.defaults(drain_viewer_username="a:b")


async def test_a_local_drain_opens_the_dashboard_without_credentials(migrated_url: str) -> None:
    async with running(dashboard_app(migrated_url)) as client:
        for path in ("/", "/api/rollups", "/static/dashboard.css"):
            assert (await client.get(path, auth=None)).status_code == 200, path
