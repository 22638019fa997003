"""`drain bi-role NAME` (a read-only role for a BI tool, and its URL) and the embedded
PostgreSQL on 127.0.0.1:PORT (DRAIN_EMBEDDED_PG_PORT): roles with a password get in, the
superuser does not, a wrong password does not."""

from __future__ import annotations

import os
import re
import subprocess
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import asyncpg
import pytest

from drain.cli.bi import role_url
from drain.store.listener import HBA_BEGIN, LoopbackListener, startup_user, with_password_rule
from drain.store.migrate import migrate
from tests.support.served import clean_env, drain_command, free_port, serving


def bi_role(env: dict[str, str], name: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*drain_command(), "bi-role", name, *extra],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def drop_role(admin_url: str, database_url: str, name: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(f'DROP OWNED BY "{name}"')
    finally:
        await conn.close()
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP ROLE IF EXISTS "{name}"')
    finally:
        await conn.close()


async def test_the_bi_role_reads_rollups_and_views_only(
    pg_admin_url: str, database_url: str
) -> None:
    await migrate(database_url)
    name = f"bi_{uuid.uuid4().hex[:10]}"
    env = clean_env(DATABASE_URL=database_url)
    try:
        made = bi_role(env, name)
        assert made.returncode == 0, made.stderr
        assert "payment_history" in made.stdout and "rollup_status" in made.stdout
        url = made.stdout.strip().splitlines()[-1]
        assert url.startswith("postgresql://" + name + ":")
        conn = await asyncpg.connect(url)
        try:
            assert await conn.fetch("SELECT * FROM payment_history") == []
            assert await conn.fetch("SELECT * FROM tag_catalog_daily") == []
            assert await conn.fetch("SELECT * FROM rollup_status") == []
            for table in ("raw_events", "quarantine", "received_batches"):
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await conn.fetch(f"SELECT * FROM {table} LIMIT 1")
            with pytest.raises(asyncpg.PostgresError):  # read-only, and no INSERT grant
                await conn.execute("INSERT INTO payment_history VALUES (now(), '', '', 1, 1)")
        finally:
            await conn.close()
        again = bi_role(env, name)
        assert again.returncode == 0, again.stderr
        assert "password is unchanged" in again.stdout
        assert again.stdout.strip().endswith(role_url(database_url, name, None))
        assert bi_role(env, "postgres").returncode == 2
        assert bi_role(env, 'x"; DROP TABLE raw_events; --').returncode == 2
    finally:
        await drop_role(pg_admin_url, database_url, name)


def test_role_urls() -> None:
    heroku = "postgres://u:secret@ec2.example.com:5432/d1?sslmode=require"
    assert (
        role_url(heroku, "bi", "p@ss")
        == "postgres://bi:p%40ss@ec2.example.com:5432/d1?sslmode=require"
    )
    embedded = "postgresql://postgres:@/drain?host=/home/you/pgdata"
    assert (
        role_url(embedded, "bi", "pw", tcp_port=5433) == "postgresql://bi:pw@127.0.0.1:5433/drain"
    )
    assert role_url(embedded, "bi", None) == "postgresql://bi:PASSWORD@/drain?host=/home/you/pgdata"


def test_pg_hba_gets_the_password_rule_once() -> None:
    initdb = "local all all trust\nhost all all 127.0.0.1/32 trust\n"
    once = with_password_rule(initdb)
    assert once.splitlines()[:4] == [
        HBA_BEGIN,
        "local all postgres trust",
        "local all all scram-sha-256",
        "# drain: end",
    ]
    assert once.endswith(initdb) and with_password_rule(once) == once
    assert startup_user(b"user\x00bi\x00database\x00drain\x00\x00") == "bi"
    assert startup_user(b"database\x00drain\x00\x00") is None


def _socket_path(admin_url: str) -> str | None:
    host = parse_qs(urlsplit(admin_url).query).get("host")
    folder = host[0] if host else "/var/run/postgresql"
    port = urlsplit(admin_url).port or 5432
    path = os.path.join(folder, f".s.PGSQL.{port}")
    return path if os.path.exists(path) else None


async def test_the_loopback_listener_forwards_roles_and_refuses_the_superuser(
    pg_admin_url: str,
) -> None:
    socket_path = _socket_path(pg_admin_url)
    if socket_path is None:
        assert not os.environ.get("CI"), "CI's embedded PostgreSQL has a unix socket"
        pytest.skip("this PostgreSQL has no unix socket here")
    name = f"bi_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(pg_admin_url)
    listener = LoopbackListener(socket_path, 0)
    await listener.start()
    try:
        await admin.execute(f"CREATE ROLE \"{name}\" LOGIN PASSWORD 'pw'")
        with pytest.raises(asyncpg.InvalidAuthorizationSpecificationError, match="superuser"):
            await asyncpg.connect(host="127.0.0.1", port=listener.port, user="postgres")
        conn = await asyncpg.connect(
            host="127.0.0.1", port=listener.port, user=name, password="pw", database="postgres"
        )
        try:
            assert await conn.fetchval("SELECT current_user") == name
        finally:
            await conn.close()
    finally:
        await listener.close()
        await admin.execute(f'DROP ROLE IF EXISTS "{name}"')
        await admin.close()


async def test_drain_serve_opens_the_embedded_database_to_bi_roles(tmp_path: Path) -> None:
    port = free_port()
    env = clean_env(DRAIN_DATA_DIR=str(tmp_path / "pgdata"), DRAIN_EMBEDDED_PG_PORT=str(port))
    with serving(tmp_path, env) as served:
        assert f"database (TCP, for BI tools): 127.0.0.1:{port}" in served.output()
        assert f"dashboard: {served.base_url}/" in served.output()
        made = bi_role(env, "metabase")
        assert made.returncode == 0, made.stderr
        url = made.stdout.strip().splitlines()[-1]
        assert re.fullmatch(rf"postgresql://metabase:[\w-]+@127\.0\.0\.1:{port}/drain", url), url
        conn = await asyncpg.connect(url)
        try:
            assert await conn.fetchval("SELECT count(*) FROM payment_history") == 0
        finally:
            await conn.close()
        wrong = url.replace("metabase:", "metabase:x", 1)
        with pytest.raises(asyncpg.InvalidPasswordError):
            await asyncpg.connect(wrong)
        with pytest.raises(asyncpg.InvalidAuthorizationSpecificationError):
            await asyncpg.connect(host="127.0.0.1", port=port, user="postgres", database="drain")
    assert served.proc.returncode == 0, served.output()
