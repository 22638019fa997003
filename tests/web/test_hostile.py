"""Hostile clients against the real service (`drain serve` subprocesses on 127.0.0.1, real
sockets, real PostgreSQL): request heads over the cap, heads that never end, connections
that never send one, more connections than descriptors, bodies trickled after a refusal,
many drain tokens, control characters in headers. Each loop is bounded in count and time;
the bounds asserted are generous (behaviour, never speed)."""

from __future__ import annotations

import base64
import json
import select
import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx
import pytest

from drain.store.migrate import migrate
from drain.web.connections import LINGER_S
from testkit.pg import create_database, drop_database
from tests.support.served import (
    AUTH,
    PASSWORD,
    SAMPLES,
    USER,
    Served,
    clean_env,
    events_body,
    logplex_headers,
    serving,
)

HEAD_TIMEOUT_S = 1.0
MAX_CONNECTIONS = 8
BODY_TIMEOUT_S = 2.0
#: the soft fd limit of the exhaustion test's service
FD_LIMIT = 128
#: its connection cap: FD_LIMIT - (64 reserved + a pool of 5)
FD_CAP = FD_LIMIT - 64 - 5
#: the longest a step may take to be seen here, on a busy machine
SLACK_S = 4.0
BASIC = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


@pytest.fixture(scope="module")
async def module_db(pg_admin_url: str) -> AsyncIterator[str]:
    """One migrated database for the module's services."""
    name, url = await create_database(pg_admin_url)
    try:
        await migrate(url)
        yield url
    finally:
        await drop_database(pg_admin_url, name)


@pytest.fixture(scope="module")
def guarded(module_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """`drain serve` with a 1 s head time-out, 8 connections, a 2 s body time-out."""
    env = clean_env(
        DATABASE_URL=module_db,
        DRAIN_USERNAME=USER,
        DRAIN_PASSWORD=PASSWORD,
        DRAIN_HEAD_TIMEOUT_S=str(HEAD_TIMEOUT_S),
        DRAIN_MAX_CONNECTIONS=str(MAX_CONNECTIONS),
        DRAIN_BODY_TIMEOUT_S=str(BODY_TIMEOUT_S),
    )
    with serving(tmp_path_factory.mktemp("guarded"), env) as served:
        yield served


@pytest.fixture(scope="module")
def few_fds(module_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """`drain serve` with the defaults, started under ``ulimit -n 128``."""
    env = clean_env(DATABASE_URL=module_db, DRAIN_USERNAME=USER, DRAIN_PASSWORD=PASSWORD)
    with serving(tmp_path_factory.mktemp("few-fds"), env, fd_limit=FD_LIMIT) as served:
        yield served


def connect(served: Served) -> socket.socket:
    parts = urlsplit(served.base_url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def read_until_closed(sock: socket.socket, limit_s: float) -> tuple[bytes, float]:
    """Everything the service sends until it closes, and when (monotonic); fails when the
    connection is still open after ``limit_s``."""
    data = b""
    deadline = time.monotonic() + limit_s
    while True:
        left = deadline - time.monotonic()
        assert left > 0, f"still open after {limit_s} s; received {data[:200]!r}"
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return data, time.monotonic()
        except TimeoutError:
            continue
        if not chunk:
            return data, time.monotonic()
        data += chunk


def is_open(sock: socket.socket) -> bool:
    """True when the service has neither closed ``sock`` nor sent anything on it."""
    readable, _, _ = select.select([sock], [], [], 0)
    return not readable


def head(path: str = "/health", method: str = "GET", extra: str = "") -> bytes:
    return f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}".encode()


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def post_logs(served: Served, extra: dict[str, bytes] | None = None) -> httpx.Response:
    """A good POST /logs with the credentials, and ``extra`` headers (raw bytes)."""
    body = events_body(datetime.now(UTC), "hostile.ok", 2)
    all_headers: dict[str, str | bytes] = {**logplex_headers(frame_id=str(uuid.uuid4()))}
    all_headers.update(extra or {})
    return httpx.post(
        served.base_url + "/logs", content=body, headers=all_headers, auth=AUTH, timeout=10
    )


def scrape(served: Served) -> str:
    response = httpx.get(served.base_url + "/metrics", auth=AUTH, timeout=10)
    assert response.status_code == 200
    return response.text


def metric(text: str, name: str, **labels: str) -> float:
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(name + ("{" + wanted + "}" if labels else " ")):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


# --------------------------------------------------------------------------- head size


@pytest.mark.parametrize("write", [65536, 2048], ids=["one_write", "2KiB_writes"])
def test_a_head_over_the_cap_is_431_and_the_socket_closed(guarded: Served, write: int) -> None:
    """No credentials, a 64 KiB header that never ends: 431 with Connection: close, then
    the service closes; nothing past the cap is parsed."""
    with connect(guarded) as sock:
        sock.sendall(head(method="POST", path="/logs") + b"X-Pad: ")
        pad = b"a" * write
        for _ in range(65536 // write):
            try:
                sock.sendall(pad)
            except (BrokenPipeError, ConnectionResetError):
                break
            if not is_open(sock):
                break  # the answer is there
        response, _closed_at = read_until_closed(sock, LINGER_S + SLACK_S)
    assert response.startswith(b"HTTP/1.1 431 "), response[:200]
    assert b"connection: close" in response.lower()
    assert b"DRAIN_MAX_HEAD_BYTES" in response
    assert metric(scrape(guarded), "drain_connections_closed_total", reason="head_too_large") >= 1


def test_a_head_under_the_cap_is_served(guarded: Served) -> None:
    with connect(guarded) as sock:
        sock.sendall(head(extra="X-Pad: " + "a" * 15_000 + "\r\nConnection: close\r\n\r\n"))
        response, _ = read_until_closed(sock, SLACK_S)
    assert status_of(response) == 200


def test_pipelined_heads_each_under_the_cap_are_served(guarded: Served) -> None:
    """Two 10 KiB heads in one write (20 KiB, over the cap together): each head is counted
    on its own, both are answered."""
    pad = "X-Pad: " + "a" * 10_000 + "\r\n"
    with connect(guarded) as sock:
        sock.sendall(head(extra=pad + "\r\n") + head(extra=pad + "Connection: close\r\n\r\n"))
        responses, _ = read_until_closed(sock, SLACK_S)
    assert responses.count(b"HTTP/1.1 200 ") == 2, responses[:300]


# --------------------------------------------------------------------------- head time-out


def test_silent_and_half_sent_heads_are_closed_after_the_time_out(guarded: Served) -> None:
    """A connection that sends nothing and one that sends half a head are closed without an
    answer after DRAIN_HEAD_TIMEOUT_S, while a normal POST and /health are served."""
    started = time.monotonic()
    with connect(guarded) as silent, connect(guarded) as half:
        half.sendall(head(method="POST", path="/logs") + b"Content-Type: applic")
        assert post_logs(guarded).status_code == 200
        assert httpx.get(guarded.base_url + "/health", timeout=10).status_code == 200
        assert is_open(silent) and is_open(half)
        silent_data, silent_at = read_until_closed(silent, HEAD_TIMEOUT_S + SLACK_S)
        half_data, half_at = read_until_closed(half, HEAD_TIMEOUT_S + SLACK_S)
    assert silent_data == b"" and half_data == b""  # no answer: what Logplex retries
    assert min(silent_at, half_at) - started >= HEAD_TIMEOUT_S * 0.8
    text = scrape(guarded)
    assert metric(text, "drain_connections_closed_total", reason="head_timeout") >= 2
    assert "request head within DRAIN_HEAD_TIMEOUT_S" in guarded.output()


def test_a_stalled_head_on_a_kept_alive_connection_is_closed(guarded: Served) -> None:
    """After a first request, half of a second head: closed by the head time-out (uvicorn's
    keep-alive timer stops at the first byte of the next request)."""
    with connect(guarded) as sock:
        sock.sendall(head() + b"\r\n")
        first = sock.recv(65536)
        assert status_of(first) == 200
        sock.sendall(head()[:20])
        sent_at = time.monotonic()
        data, closed_at = read_until_closed(sock, HEAD_TIMEOUT_S + SLACK_S)
    assert b"HTTP/1.1" not in data
    assert closed_at - sent_at >= HEAD_TIMEOUT_S * 0.8


def test_a_body_trickled_after_a_refusal_does_not_hold_the_connection(guarded: Served) -> None:
    """No credentials, a 10 MB body announced: 401 at once, then the connection is closed
    even though the client keeps sending body bytes."""
    with connect(guarded) as sock:
        sock.sendall(
            head(method="POST", path="/logs")
            + b"Content-Type: application/logplex-1\r\nContent-Length: 10000000\r\n\r\n"
            + b"x" * 1000
        )
        deadline = time.monotonic() + LINGER_S + SLACK_S
        received = b""
        closed = False
        while time.monotonic() < deadline:  # one byte every 0.1 s until it closes
            readable, _, _ = select.select([sock], [], [], 0.1)
            if readable:
                try:
                    chunk = sock.recv(65536)
                except ConnectionResetError:
                    chunk = b""
                if not chunk:
                    closed = True
                    break
                received += chunk
            try:
                sock.sendall(b"x")
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
    assert status_of(received) == 401
    assert closed, "the service still holds the connection"


# --------------------------------------------------------------------------- connection cap


def test_at_the_cap_with_every_connection_busy_a_new_one_gets_503(guarded: Served) -> None:
    """Eight requests in progress (heads complete, bodies pending) fill the cap: a ninth
    connection is answered 503 + Retry-After and closed; after the body time-out the eight
    are answered and the drain serves again."""
    busy = [connect(guarded) for _ in range(MAX_CONNECTIONS)]
    try:
        for sock in busy:
            sock.sendall(
                head(method="POST", path="/logs")
                + f"Authorization: {BASIC}\r\nContent-Type: application/logplex-1\r\n".encode()
                + b"Expect: 100-continue\r\nContent-Length: 100\r\n\r\n"
            )
        for sock in busy:  # 100 Continue: the app is reading the body, the head is done
            sock.settimeout(SLACK_S)
            assert sock.recv(65536).startswith(b"HTTP/1.1 100 ")
        with connect(guarded) as extra:
            refused, _ = read_until_closed(extra, SLACK_S)
        assert status_of(refused) == 503, refused[:200]
        assert b"retry-after: " in refused.lower()
        for sock in busy:  # the body time-out answers each
            answer, _ = read_until_closed(sock, BODY_TIMEOUT_S + LINGER_S + SLACK_S)
            assert answer.startswith(b"HTTP/1.1 503 "), answer[:200]
    finally:
        for sock in busy:
            sock.close()
    assert httpx.get(guarded.base_url + "/health", timeout=10).status_code == 200
    assert metric(scrape(guarded), "drain_connections_closed_total", reason="connection_cap") >= 1
    assert "new connection refused with 503 at the connection cap" in guarded.output()


def test_more_connections_than_descriptors_leave_health_and_posts_answered(
    few_fds: Served,
) -> None:
    """Under ``ulimit -n 128`` the cap is 128 - 69 = 59 connections. 200 silent
    connections (more than the descriptors): the longest waiting are closed to admit the
    new ones, /health and a POST are answered, and the cap is logged and counted."""
    socks = []
    try:
        for _ in range(200):
            socks.append(connect(few_fds))
        assert httpx.get(few_fds.base_url + "/health", timeout=10).status_code == 200
        assert post_logs(few_fds).status_code == 200
        first, _ = read_until_closed(socks[0], SLACK_S)  # evicted, without an answer
        assert first == b""
        assert is_open(socks[-1])  # the newest wait for their heads
    finally:
        for sock in socks:
            sock.close()
    text = scrape(few_fds)
    evicted = metric(text, "drain_connections_closed_total", reason="idle_evicted")
    assert evicted >= 200 - FD_CAP
    assert f"this worker holds at most {FD_CAP} connections" in few_fds.output()
    assert "connection cap" in few_fds.output()


# --------------------------------------------------------------------------- labels, /health


def test_metrics_stay_flat_with_many_drain_tokens(guarded: Served) -> None:
    """DRAIN_TOKENS unset: loss reports under 200 new drain tokens add no series to
    /metrics and no token to /metrics or /health."""
    l10 = (SAMPLES / "logplex-issue105-l10-no-lf.body").read_bytes()

    def post_losses(count: int) -> list[str]:
        tokens = [f"d.{uuid.uuid4()}" for _ in range(count)]
        with httpx.Client(base_url=guarded.base_url, auth=AUTH, timeout=10) as client:
            for token in tokens:
                headers = logplex_headers(frame_id=str(uuid.uuid4()), token=token)
                assert client.post("/logs", content=l10, headers=headers).status_code == 200
        return tokens

    post_losses(10)
    before = scrape(guarded)
    tokens = post_losses(200)
    after = scrape(guarded)
    health = httpx.get(guarded.base_url + "/health", timeout=10).text
    # the same series; only digits of the counts grow
    assert len(after) - len(before) < 400, (len(before), len(after))
    assert not [t for t in tokens if t in after or t in health]
    lost = metric(after, "drain_upstream_lost_messages_total", drain_token="other", source="L10")
    assert lost >= 210
    (warning,) = [w for w in json.loads(health)["warnings"] if w["kind"] == "upstream_loss"]
    assert warning["app"] == "other" and "drain_token" not in warning


def test_a_c1_control_in_a_header_is_escaped_in_the_log_line(guarded: Served) -> None:
    """A header byte 0x85 (NEL once decoded as latin-1) is logged as the JSON escape
    ``\\u0085``, never as the raw character a line splitter would break the line at."""
    marker = uuid.uuid4().hex[:8]
    request_id = f"req-{marker}-\x85-end"
    response = post_logs(guarded, {"X-Request-Id": request_id.encode("latin-1")})
    assert response.status_code == 200
    deadline = time.monotonic() + SLACK_S
    raw = b""
    while marker.encode() not in raw and time.monotonic() < deadline:
        raw = guarded.stdout_path.read_bytes()
        time.sleep(0.05)  # the log line is written as the response is sent
    (line,) = [line for line in raw.splitlines() if marker.encode() in line]
    assert "\x85".encode() not in line  # U+0085 in UTF-8: C2 85
    assert b"\\u0085" in line
    assert json.loads(line)["request_id"] == request_id
