"""DATABASE_URL to asyncpg: connection keyword arguments and the connection pool.

Heroku sets ``DATABASE_URL`` to ``postgres://user:pass@host:5432/dbname``; its server
certificates do not verify against public roots, so ``sslmode=require`` here means
TLS *without* certificate verification, as in libpq (PostgreSQL docs, "libpq SSL
Support", table 34.1). Accepted URL forms::

    postgres://user:pass@host:5432/db                 (Heroku's form)
    postgresql://user:pass@host/db?sslmode=require    (TLS, certificate not verified)
    postgresql://user@host/db?sslmode=verify-full     (TLS, certificate and host verified)
    postgresql://user@/db?host=/var/run/postgresql    (unix socket directory)
    postgresql://user@%2Fvar%2Frun%2Fpostgresql/db    (unix socket, percent-encoded host)

Query parameters understood: ``sslmode`` (disable, allow, prefer, require, verify-ca,
verify-full), ``sslrootcert`` (CA file for verify-ca/verify-full), ``host``, ``port``,
``user``, ``password``, ``dbname``, ``application_name``, ``connect_timeout`` (seconds).
Any other parameter raises ``ValueError`` rather than being silently ignored.
"""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING, Any, TypeAlias, cast
from urllib.parse import parse_qsl, unquote, urlsplit

import asyncpg

from drain.pgwire.timestamptz import TimestamptzEncoder, decode_timestamptz

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

#: a connection, or a pool's proxy for one (what ``pool.acquire()`` gives).
Conn: TypeAlias = "asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]"

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT_S",
    "Conn",
    "connect_kwargs",
    "create_pool",
    "redact_url",
    "use_drain_codecs",
]

#: seconds allowed to open one connection (TCP, TLS and authentication) unless the URL
#: says otherwise with ``connect_timeout``.
DEFAULT_CONNECT_TIMEOUT_S = 10.0

_SCHEMES = ("postgres", "postgresql")
_SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
_KNOWN_PARAMS = frozenset(
    {
        "sslmode",
        "sslrootcert",
        "host",
        "port",
        "user",
        "password",
        "dbname",
        "application_name",
        "connect_timeout",
    }
)


def _ssl_argument(sslmode: str, sslrootcert: str | None) -> ssl.SSLContext | str | bool:
    """The value for asyncpg's ``ssl=`` argument for a libpq ``sslmode``."""
    if sslmode == "disable":
        return False
    if sslmode in ("allow", "prefer"):
        # asyncpg's own handling of these modes: TLS is tried with CERT_NONE and the
        # connection falls back to plain text when the server refuses TLS.
        return sslmode
    if sslmode == "require":
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    # verify-ca / verify-full: the given CA file, else the system's trust store.
    context = ssl.create_default_context(cafile=sslrootcert)
    context.check_hostname = sslmode == "verify-full"
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def connect_kwargs(url: str) -> dict[str, object]:
    """Turn a DATABASE_URL into keyword arguments for ``asyncpg.connect``/``create_pool``.

    Args:
        url: ``postgres://`` or ``postgresql://`` URL (see the module docstring).

    Returns:
        A dict with ``host`` (name, address, or unix socket directory), ``port``, ``user``,
        ``password``, ``database``, ``timeout`` (connect timeout, seconds), and, when the
        URL asks for it, ``ssl`` (an ``ssl.SSLContext``, ``False``, or asyncpg's
        ``"prefer"``/``"allow"``) and ``server_settings`` (``application_name``).
        Without ``sslmode`` no ``ssl`` key is returned and asyncpg's default applies
        (``prefer``: TLS when the server offers it, without certificate verification).

    Raises:
        ValueError: unknown scheme, unknown query parameter, bad ``sslmode`` or port.
    """
    parts = urlsplit(url)
    if parts.scheme not in _SCHEMES:
        raise ValueError(
            f"DATABASE_URL must start with postgres:// or postgresql://, got {parts.scheme!r}"
        )
    params: dict[str, str] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True, strict_parsing=False):
        if key not in _KNOWN_PARAMS:
            known = ", ".join(sorted(_KNOWN_PARAMS))
            raise ValueError(f"DATABASE_URL: unsupported parameter {key!r} (known: {known})")
        params[key] = value

    kwargs: dict[str, object] = {}
    host = params.get("host") or (unquote(parts.hostname) if parts.hostname else None)
    if parts.netloc and "%2f" in parts.netloc.lower() and not params.get("host"):
        # postgresql://user@%2Fvar%2Frun%2Fpostgresql/db: urlsplit lower-cases hostname,
        # which would corrupt a path, so read the raw netloc.
        host = unquote(parts.netloc.rpartition("@")[2].partition(":")[0])
    if host:
        kwargs["host"] = host
    port_text = params.get("port")
    try:
        port = int(port_text) if port_text else parts.port
    except ValueError:
        raise ValueError(f"DATABASE_URL: bad port {port_text or parts.netloc!r}") from None
    if port is not None:
        kwargs["port"] = port
    user = params.get("user") or (unquote(parts.username) if parts.username else None)
    if user:
        kwargs["user"] = user
    password = params.get("password")
    if password is None and parts.password is not None:
        password = unquote(parts.password)
    if password:
        kwargs["password"] = password
    database = params.get("dbname") or unquote(parts.path.lstrip("/"))
    if database:
        kwargs["database"] = database

    sslmode = params.get("sslmode")
    if sslmode is not None:
        if sslmode not in _SSLMODES:
            raise ValueError(
                f"DATABASE_URL: sslmode must be one of {', '.join(_SSLMODES)}, got {sslmode!r}"
            )
        kwargs["ssl"] = _ssl_argument(sslmode, params.get("sslrootcert") or None)
    if "application_name" in params:
        kwargs["server_settings"] = {"application_name": params["application_name"]}
    timeout_text = params.get("connect_timeout")
    try:
        timeout = float(timeout_text) if timeout_text else DEFAULT_CONNECT_TIMEOUT_S
    except ValueError:
        raise ValueError(f"DATABASE_URL: bad connect_timeout {timeout_text!r}") from None
    # libpq treats 0 as "wait forever"; keep a bound anyway.
    kwargs["timeout"] = timeout if timeout > 0 else DEFAULT_CONNECT_TIMEOUT_S
    return kwargs


def redact_url(url: str) -> str:
    """``url`` with its password replaced by ``***`` (for logs and error messages)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


async def create_pool(
    url: str,
    *,
    min_size: int = 1,
    max_size: int = 5,
    command_timeout_s: float | None = None,
) -> asyncpg.Pool:
    """Open an asyncpg pool for ``url``.

    Prepared-statement caching is off (``statement_cache_size=0``) so the pool also works
    behind PgBouncer in transaction mode. Every connection gets :func:`use_drain_codecs`.
    Connecting is bounded by the URL's ``connect_timeout`` (default
    :data:`DEFAULT_CONNECT_TIMEOUT_S` seconds).

    Args:
        url: a DATABASE_URL (see :func:`connect_kwargs`).
        min_size: connections opened at once (and kept open).
        max_size: upper bound of open connections.
        command_timeout_s: default timeout of each statement, seconds; None for none.

    Raises:
        ValueError: bad URL. OSError, asyncio.TimeoutError, asyncpg.PostgresError: the
        first ``min_size`` connections could not be opened.
    """
    kwargs = cast("dict[str, Any]", connect_kwargs(url))
    pool: asyncpg.Pool = await asyncpg.create_pool(
        min_size=min_size,
        max_size=max_size,
        statement_cache_size=0,
        command_timeout=command_timeout_s,
        init=use_drain_codecs,
        **kwargs,
    )
    return pool


async def use_drain_codecs(conn: asyncpg.Connection[asyncpg.Record]) -> None:
    """Register drain's own binary codec of ``timestamptz`` on ``conn``
    (:mod:`drain.pgwire.timestamptz`: asyncpg's values, encoded for less CPU per row; the
    encoder, a :class:`~drain.pgwire.timestamptz.TimestamptzEncoder` of this connection's
    own, converts a batch's ``received_at`` once, not once per row).

    One round trip (asyncpg introspects the type). Raises asyncpg.PostgresError or OSError
    when the connection fails meanwhile.
    """
    await conn.set_type_codec(
        "timestamptz",
        schema="pg_catalog",
        encoder=TimestamptzEncoder(),
        decoder=decode_timestamptz,
        format="binary",
    )
