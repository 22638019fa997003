"""The connection budget (drain.store.budget) and PgBouncer in transaction mode
(DATABASE_CONNECTION_POOL_URL), on a real PostgreSQL and, when installed, a real PgBouncer."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest

from drain.settings import Settings
from drain.store.budget import MIN_POOL_SIZE, plan_pool, read_limit
from drain.web.app import create_app
from testkit.tcpproxy import TcpProxy
from tests.support.served import (
    AUTH,
    PASSWORD,
    USER,
    events_body,
    free_port,
    logplex_headers,
    served_app,
)


@pytest.mark.parametrize(
    ("limit", "workers", "configured", "reserved", "size", "fits"),
    [
        pytest.param(20, 1, 5, 5, 5, True, id="essential_one_worker"),
        pytest.param(20, 2, 5, 5, 5, True, id="essential_two_workers"),
        pytest.param(20, 4, 5, 5, 3, True, id="essential_four_workers_shrink"),
        pytest.param(20, 8, 5, 5, MIN_POOL_SIZE, False, id="essential_eight_workers_over"),
        pytest.param(500, 4, 5, 5, 5, True, id="big_server_keeps_configured"),
        pytest.param(None, 8, 7, 5, 7, True, id="pgbouncer_no_limit"),
        pytest.param(20, 2, 1, 5, 1, True, id="configured_one_stays_one"),
    ],
)
def test_plan_pool(
    limit: int | None, workers: int, configured: int, reserved: int, size: int, fits: bool
) -> None:
    plan = plan_pool(configured=configured, workers=workers, reserved=reserved, limit=limit)
    assert (plan.pool_size, plan.fits) == (size, fits)
    if limit is not None:
        assert f"of {limit}" in plan.explain


def test_plan_pool_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        plan_pool(configured=0, workers=1, reserved=0, limit=20)


def with_user(url: str, user: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, f"{user}@{host}", parts.path, parts.query, ""))


async def test_read_limit_takes_the_role_limit(migrated_url: str) -> None:
    role = f"drain_budget_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(migrated_url)
    try:
        limit = await read_limit(admin)
        assert limit == int(await admin.fetchval("SHOW max_connections"))  # superuser
        await admin.execute(f"CREATE ROLE {role} LOGIN CONNECTION LIMIT 7")
        conn = await asyncpg.connect(with_user(migrated_url, role))
        try:
            assert await read_limit(conn) == 7
        finally:
            await conn.close()
    finally:
        await admin.execute(f"DROP ROLE IF EXISTS {role}")
        await admin.close()


def settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {"drain_username": USER, "drain_password": PASSWORD}
    values.update(overrides)
    return Settings(**values)


async def test_the_web_pool_follows_the_budget(migrated_url: str) -> None:
    app = create_app(
        settings(drain_db_max_connections=9, web_concurrency=2), database_url=migrated_url
    )
    async with app.router.lifespan_context(app):
        pool = app.state.drain.pool
        assert pool.get_max_size() == 2  # min(5, (9 - 5) // 2)


# --------------------------------------------------------------------------- PgBouncer


def pgbouncer_binary() -> str | None:
    found = shutil.which("pgbouncer")
    if found is None and Path("/usr/sbin/pgbouncer").exists():
        return "/usr/sbin/pgbouncer"
    return found


def start_pgbouncer(
    binary: str, workdir: Path, upstream_port: int, dbname: str, user: str
) -> tuple[subprocess.Popen[bytes], str]:
    """Start PgBouncer (transaction mode, auth_type any) in ``workdir``; (process, URL)."""
    workdir.chmod(0o777)  # PgBouncer may run as nobody
    port = free_port()
    ini = workdir / "pgbouncer.ini"
    ini.write_text(
        f"""[databases]
{dbname} = host=127.0.0.1 port={upstream_port} dbname={dbname} user={user}
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = any
pool_mode = transaction
default_pool_size = 4
max_client_conn = 100
ignore_startup_parameters = extra_float_digits
"""
    )
    ini.chmod(0o644)
    command = [binary, str(ini)]
    if os.geteuid() == 0:  # PgBouncer refuses to run as root
        command[1:1] = ["-u", "nobody"]
    with (workdir / "out.log").open("wb") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    return proc, f"postgresql://{user}@127.0.0.1:{port}/{dbname}?sslmode=disable"


@pytest.fixture
async def pgbouncer(migrated_url: str) -> AsyncIterator[str]:
    """A real PgBouncer (transaction mode) in front of the test database; yields its URL.

    As root it runs as ``nobody`` and reaches the database through a TCP proxy in this
    process (the test server may listen on a private unix socket only).
    """
    binary = pgbouncer_binary()
    if binary is None:
        # CI installs it (.ci/run); only a developer's machine may lack it
        if os.environ.get("CI"):
            pytest.fail("pgbouncer is not installed: .ci/run installs Debian's pgbouncer")
        pytest.skip("pgbouncer is not installed (apt-get install pgbouncer)")
    proxy = TcpProxy(migrated_url)
    await proxy.start()
    workdir = Path(tempfile.mkdtemp(prefix="drain-pgbouncer-"))
    dbname = urlsplit(migrated_url).path.lstrip("/")
    user = urlsplit(migrated_url).username or "postgres"
    proc, url = start_pgbouncer(binary, workdir, proxy.port, dbname, user)
    try:
        deadline = asyncio.get_running_loop().time() + 15
        while True:  # bounded start-up polling
            try:
                conn = await asyncpg.connect(url, statement_cache_size=0)
                await conn.close()
                break
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                assert proc.poll() is None, "pgbouncer exited; see its out.log"
                assert asyncio.get_running_loop().time() < deadline, "pgbouncer did not start"
                await asyncio.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        await asyncio.to_thread(proc.wait, 10)
        await proxy.close()
        shutil.rmtree(workdir, ignore_errors=True)


async def test_the_drain_works_behind_pgbouncer_in_transaction_mode(
    migrated_url: str, pgbouncer: str
) -> None:
    direct = migrated_url
    app = create_app(
        settings(database_url=direct, database_connection_pool_url=pgbouncer, web_concurrency=8),
        database_url=pgbouncer,
    )
    at = datetime.now(UTC).replace(microsecond=0)
    async with served_app(app) as base, httpx.AsyncClient(base_url=base, auth=AUTH) as client:
        assert app.state.drain.pool.get_max_size() == 5  # no server budget behind PgBouncer
        answers = await asyncio.gather(
            *(
                client.post(
                    "/logs",
                    content=events_body(at, "via.pgbouncer", 10, start=10 * n),
                    headers=logplex_headers(msg_count=10, frame_id=f"pgb-{n}"),
                )
                for n in range(12)
            )
        )
        retry = await client.post(
            "/logs",
            content=events_body(at, "via.pgbouncer", 10),
            headers=logplex_headers(msg_count=10, frame_id="pgb-0"),
        )
        health = await client.get("/health")
        metrics = await client.get("/metrics")
    assert [a.status_code for a in answers] == [200] * 12
    assert retry.headers["drain-duplicate"] == "true"
    assert health.status_code == 200 and health.json()["warnings"] == []
    assert 'drain_events_stored_total{app="other"} 120.0' in metrics.text
    conn = await asyncpg.connect(direct)
    try:
        stored = await conn.fetchval("SELECT count(*) FROM raw_events WHERE tag = 'via.pgbouncer'")
        distinct = await conn.fetchval(
            "SELECT count(DISTINCT payload) FROM raw_events WHERE tag = 'via.pgbouncer'"
        )
    finally:
        await conn.close()
    assert stored == distinct == 120


def test_the_pooler_url_needs_the_direct_url() -> None:
    from drain.settings import SettingsError

    with pytest.raises(SettingsError, match="DATABASE_URL"):
        settings(database_connection_pool_url="postgres://u:p@pooler/db").check_serving()
