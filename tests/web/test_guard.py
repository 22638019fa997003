"""Who may post, and what the drain says about it: equal work for every refusal, HTTPS behind
Heroku's router, no secret or body in the service's own logs, no self-drain amplification."""

from __future__ import annotations

import asyncio
import base64
import hmac
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from drain.web import auth
from drain.web.auth import check_basic, check_drain_token
from testkit.tcpproxy import TcpProxy
from tests.support.app import NOW, drain, fetch
from tests.support.served import (
    AUTH,
    PASSWORD,
    USER,
    clean_env,
    events_body,
    frame,
    logplex_headers,
    serving,
    start_drain,
)

TOKENS = "d.11111111-1111-4111-8111-111111111111,d.22222222-2222-4222-8222-222222222222"


def basic(user: bytes, password: bytes) -> str:
    return "Basic " + base64.b64encode(user + b":" + password).decode()


def recording(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, bytes]]:
    """Record every hmac.compare_digest the auth module makes: (given length, expected)."""
    calls: list[tuple[int, bytes]] = []
    real: Callable[[Any, Any], bool] = hmac.compare_digest

    def compare(given: bytes, expected: bytes) -> bool:
        calls.append((len(given), bytes(expected)))
        return real(given, expected)

    monkeypatch.setattr(auth.hmac, "compare_digest", compare)
    return calls


@pytest.mark.parametrize(
    "header",
    [
        basic(b"logplex", b"wrong-password"),
        basic(b"wrong-user", b"correct horse"),
        basic(b"wrong-user", b"wrong-password"),
        basic(b"logplex", b"correct horse"),
        None,
        "Basic !!!",
        "Bearer correct horse",
    ],
    ids=["wrong_password", "wrong_user", "both_wrong", "right", "missing", "bad_b64", "scheme"],
)
def test_every_credential_check_does_the_same_comparisons(
    monkeypatch: pytest.MonkeyPatch, header: str | None
) -> None:
    """Right, wrong user, wrong password, malformed: always the user AND the password are
    compared, in constant time, against the expected values (no early return to time)."""
    calls = recording(monkeypatch)
    check_basic(header, username="logplex", password="correct horse")
    assert [expected for _n, expected in calls] == [b"logplex", b"correct horse"]


def test_drain_token_check_compares_with_every_member(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = recording(monkeypatch)
    allowed = frozenset(TOKENS.split(","))
    for token in [*allowed, "d.33333333-3333-4333-8333-333333333333", "x"]:
        calls.clear()
        check_drain_token(token, allowed)
        assert sorted(expected for _n, expected in calls) == sorted(t.encode() for t in allowed)


def test_wrong_user_and_wrong_password_are_both_refused() -> None:
    for header in (basic(b"logplex", b"nope"), basic(b"nope", b"correct horse")):
        assert not check_basic(header, username="logplex", password="correct horse")


# --------------------------------------------------------------------------- HTTPS


async def _post(client: httpx.AsyncClient, proto: str | None, **kw: Any) -> httpx.Response:
    headers = logplex_headers(frame_id=f"proto-{proto}-{kw.get('n', 0)}")
    if proto is not None:
        headers["X-Forwarded-Proto"] = proto
    return await client.post(
        "/logs", content=events_body(NOW, "guard.proto", 1), headers=headers, auth=kw.get("auth")
    )


async def test_plain_http_behind_the_router_is_refused_when_deployed(migrated_url: str) -> None:
    """DATABASE_URL set: X-Forwarded-Proto: http gets 503 (not a 4xx Logplex would drop
    silently), before credentials are looked at; https and no header are served."""
    async with drain(migrated_url, database_url=migrated_url) as client:
        plain = await _post(client, "http", auth=AUTH)
        plain_wrong = await _post(client, "HTTP", auth=(USER, "wrong"), n=1)
        chained = await _post(client, "http, https", auth=AUTH, n=2)
        secure = await _post(client, "https", auth=AUTH)
        direct = await _post(client, None, auth=AUTH)
        counters = (await client.get("/health")).json()["counters"]
    for refused in (plain, plain_wrong, chained):
        assert refused.status_code == 503
        assert "retry-after" not in refused.headers
        assert "https" in refused.text
    assert secure.status_code == 200 and direct.status_code == 200
    assert counters["insecure_refused"] == 3
    assert (await fetch(migrated_url, "SELECT count(*) FROM raw_events"))[0][0] == 2


@pytest.mark.parametrize(
    ("overrides", "refused"),
    [
        ({}, False),  # a local drain: no router in front, the header means nothing
        ({"drain_require_https": True}, True),
        ({"database_url": "postgres://x@db/x", "drain_require_https": False}, False),
    ],
    ids=["local_default", "forced_on", "deployed_turned_off"],
)
async def test_require_https_setting(
    migrated_url: str, overrides: dict[str, Any], refused: bool
) -> None:
    async with drain(migrated_url, **overrides) as client:
        response = await _post(client, "http", auth=AUTH)
    assert response.status_code == (503 if refused else 200)


# --------------------------------------------------------------------------- logs

CANARY_PASSWORD = "canary-drain-password-7f3a"
CANARY_DB_PASSWORD = "canary-db-password-91c2"
CANARY_BODY = "canary-body-secret-5be0"


def _with_password(url: str, password: str) -> str:
    """``url`` with a password in its userinfo (the test servers trust local connections)."""
    scheme, rest = url.split("://", 1)
    userinfo, at, host = rest.rpartition("@")
    user = userinfo.split(":", 1)[0] if at else "postgres"
    return f"{scheme}://{user}:{password}@{host}"


async def test_no_secret_body_or_database_url_in_the_service_log(
    migrated_url: str, tmp_path: Path
) -> None:
    """Run `drain serve`, post what makes it log (wrong credentials carrying secrets, bodies
    with secret-looking lines, framing errors, a Logplex-Msg-Count mismatch, an outage), then
    read everything it wrote."""
    proxy = TcpProxy(_with_password(migrated_url, CANARY_DB_PASSWORD))
    await proxy.start()
    database_url = proxy.url
    assert CANARY_DB_PASSWORD in database_url
    env = clean_env(
        DATABASE_URL=database_url,
        DRAIN_USERNAME=USER,
        DRAIN_PASSWORD=CANARY_PASSWORD,
        DRAIN_BODY_TIMEOUT_S="1",
    )
    now = datetime.now(UTC)
    secret_line = f"<134>1 {now.isoformat()} host app web.1 - password={CANARY_BODY}\n"
    tagged = f'<134>1 {now.isoformat()} host app web.1 - @[x.y] {{"token": "{CANARY_BODY}"}}\n'
    broken = f'<134>1 {now.isoformat()} host app web.1 - @[x.y] {{"pw": "{CANARY_BODY}"\n'
    body = frame(secret_line) + frame(tagged) + frame(broken) + f"99 {CANARY_BODY}".encode()
    served = await asyncio.to_thread(start_drain, tmp_path, env)  # the proxy runs on this loop
    try:
        async with httpx.AsyncClient(base_url=served.base_url, timeout=30) as client:
            right = (USER, CANARY_PASSWORD)
            for creds in [(USER, CANARY_PASSWORD + "x"), (CANARY_BODY, CANARY_PASSWORD)]:
                r = await client.post("/logs", content=body, headers=logplex_headers(), auth=creds)
                assert r.status_code == 401
            headers = {**logplex_headers(msg_count=7, frame_id="mismatch-1")}
            r = await client.post("/logs", content=body, headers=headers, auth=right)
            assert r.status_code == 200
            proxy.cut()
            down = await client.post(
                "/logs", content=body, headers=logplex_headers(frame_id="o"), auth=right
            )
            assert down.status_code == 503
            proxy.restore()
            await client.get("/health")
        assert await asyncio.to_thread(served.stop) == 0
        output = served.output()
    finally:
        if served.proc.poll() is None:
            served.proc.kill()
            served.proc.wait(5)
        await proxy.close()
    assert "database unavailable" in output or "Msg-Count" in output  # it did log things
    for secret in (CANARY_PASSWORD, CANARY_DB_PASSWORD, database_url, migrated_url):
        assert secret not in output
    assert CANARY_BODY not in output  # no body byte, not even of a bad line
    assert "password=" not in output and '"token"' not in output


# --------------------------------------------------------------------------- self-drain


def own_output_as_batch(lines: list[str], at: datetime) -> bytes:
    """The service's own output lines as Logplex would deliver them from app ``drain``."""
    ts = at.strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")
    return b"".join(
        frame(f"<190>1 {ts} host drain web.1 - {line}\n".encode()) for line in lines if line
    )


async def test_a_batch_of_its_own_output_does_not_grow_the_next(
    migrated_url: str, tmp_path: Path
) -> None:
    """Attached to its own app, the drain receives its own log lines. Feed it each batch of
    its output as the next POST, four times: a batch of N lines never makes more than one
    line (the drain's one log line for the POST, like Heroku's router line), and no posted
    line comes back (no raw-line or per-event logging)."""
    env = clean_env(DATABASE_URL=migrated_url, DRAIN_USERNAME=USER, DRAIN_PASSWORD=PASSWORD)
    marker = "SELF-DRAIN-MARKER-4d1e"
    with serving(tmp_path, env) as served:
        async with httpx.AsyncClient(base_url=served.base_url, auth=AUTH, timeout=30) as client:
            seen = 0

            def new_lines() -> list[str]:
                nonlocal seen
                lines = served.output().splitlines()
                fresh, seen = lines[seen:], len(lines)
                return fresh

            # the first batch: start-up output plus events, bad lines and untagged lines
            batch_lines = [
                *new_lines(),
                f'@[drain.selftest] {{"marker": "{marker}"}}',
                f'@[drain.selftest] {{"marker": "{marker}"',
                f"plain line {marker}",
            ]
            sizes = []
            for round_ in range(4):
                body = own_output_as_batch(batch_lines, datetime.now(UTC))
                n = sum(1 for line in batch_lines if line)
                response = await client.post(
                    "/logs",
                    content=body,
                    headers=logplex_headers(msg_count=n, frame_id=f"self-{round_}"),
                )
                assert response.status_code == 200
                sizes.append(n)
                batch_lines = new_lines()
                assert len(batch_lines) <= max(1, n), (round_, batch_lines)
                assert not [line for line in batch_lines if marker in line]
                assert not [line for line in batch_lines if re.search(r"<190>1 ", line)]
        served.stop()
    # after the first batch: one log line per POST in all (however the flushes fall)
    assert sum(sizes[1:]) <= 3, sizes
