"""Settings of the drain, read from environment variables (pydantic-settings).

One class, :class:`Settings`, built once by the CLI (``Settings.load()``) or by a test
(``Settings(field=value, ...)``) and passed down; nothing reads the environment at import time.

Precedence, highest first:

1. keyword arguments given to ``Settings(...)`` (tests, the CLI's ``--port`` / ``--host``);
2. environment variables, matched case-insensitively (``PORT`` or ``port``); a variable set
   to the empty string counts as unset (Heroku config vars are sometimes left empty);
3. the defaults below.

There is no ``.env`` file. Every field's environment variable is its name in upper case.
Secrets (``DATABASE_URL``, ``DRAIN_PASSWORD``) are :class:`pydantic.SecretStr` so they never
appear in a ``repr``, a log line or an error message.

Errors: :meth:`Settings.load` raises :class:`SettingsError`, whose message names each
offending variable (``PORT: Input should be a valid integer``), without echoing secret values.
:meth:`Settings.check_serving` raises :class:`SettingsError` when a deployed drain
(``DATABASE_URL`` set) would accept anonymous posts without ``DRAIN_ALLOW_ANONYMOUS=true``.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "SettingsError", "unknown_drain_variables"]

MiB = 2**20

_SECRET_FIELDS = frozenset({"database_url", "database_connection_pool_url", "drain_password"})


#: a Logplex drain token: "d." and a UUID (Heroku Dev Center, "Log Drains")
_DRAIN_TOKEN = re.compile(
    r"d\.[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)


class SettingsError(ValueError):
    """The environment does not describe a drain that can run; the message names the variables."""


class Settings(BaseSettings):
    """Every setting of the drain, one field per environment variable (upper-case name).

    See the module docstring for precedence. Units are in the names and descriptions:
    bytes, seconds (``_s``), counts (``_events``).
    """

    model_config = SettingsConfigDict(
        case_sensitive=False,
        env_ignore_empty=True,
        extra="ignore",
        frozen=True,
        validate_default=True,
    )

    database_url: SecretStr | None = Field(
        default=None,
        description=(
            "PostgreSQL URL (postgres:// or postgresql://, ?sslmode=require as Heroku Postgres "
            "sets it). Unset: `drain serve` starts an embedded PostgreSQL in DRAIN_DATA_DIR."
        ),
    )
    port: int = Field(default=8000, ge=1, le=65535, description="TCP port to listen on.")
    drain_host: str | None = Field(
        default=None,
        description=(
            "Interface to bind. Default: 127.0.0.1 when DATABASE_URL is unset (a local drain), "
            "0.0.0.0 when it is set (Heroku routes to $PORT on all interfaces)."
        ),
    )
    drain_username: str | None = Field(
        default=None, description="HTTP Basic user name that POST /logs requires."
    )
    drain_password: SecretStr | None = Field(
        default=None, description="HTTP Basic password that POST /logs requires."
    )
    drain_allow_anonymous: bool = Field(
        default=False,
        description=(
            "Allow a deployed drain (DATABASE_URL set) to run without DRAIN_USERNAME and "
            "DRAIN_PASSWORD. Without it such a drain refuses to start."
        ),
    )
    drain_tokens: str | None = Field(
        default=None,
        description=(
            "Comma-separated allow-list of Logplex drain tokens (d.<uuid>). When set, a POST "
            "whose Logplex-Drain-Token is missing or not listed gets 403."
        ),
    )
    drain_max_body_bytes: int = Field(
        default=8 * MiB,
        ge=1024,
        description="Largest request body accepted, in bytes, after gzip decoding; over it: 413.",
    )
    drain_max_frame_bytes: int = Field(
        default=65536,
        ge=64,
        description="Largest syslog frame, in bytes; longer frames are quarantined frame_too_long.",
    )
    drain_max_frames_per_body: int = Field(
        default=20_000,
        ge=1,
        description=(
            "Most syslog frames in one body; more: 413 (a body of tiny frames costs ~7 us "
            "of CPU per frame). Logplex sends ~2,000 at most, log-shuttle 500 by default."
        ),
    )
    drain_body_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="Seconds allowed to receive a whole request body; slower: 503 + Retry-After.",
    )
    drain_require_https: bool | None = Field(
        default=None,
        description=(
            "Refuse (503) a POST whose X-Forwarded-Proto is http (sent through Heroku's router "
            "to an http:// drain URL, credentials in clear). Default: on when DATABASE_URL is set."
        ),
    )
    drain_flush_max_events: int = Field(
        default=5000,
        ge=1,
        description=(
            "Group commit: most rows per transaction; batches waiting for a group in flight "
            "are written alongside it once they reach this many."
        ),
    )
    drain_flush_max_delay_s: float = Field(
        default=0.05,
        gt=0,
        description=(
            "Group commit: the longest a batch waits for the group in flight (s) before a "
            "second group is written alongside it; a batch that finds none waits not at all."
        ),
    )
    drain_writer_flushers: int = Field(
        default=2,
        ge=1,
        le=8,
        description="Group commit: groups in flight at once (each on its own connection).",
    )
    drain_queue_max_events: int = Field(
        default=200_000,
        ge=1,
        description="Write queue bound in events; past it POST /logs answers 503 + Retry-After.",
    )
    drain_queue_max_wait_s: float = Field(
        default=1.0,
        gt=0,
        description=(
            "Write queue bound in seconds of work (queued events / measured commit rate); "
            "past it POST /logs answers 503 + Retry-After."
        ),
    )
    drain_queue_max_bytes: int = Field(
        default=64 * MiB,
        ge=1024,
        description="Write queue bound in bytes; past it POST /logs answers 503 + Retry-After.",
    )
    drain_accept_past_s: float = Field(
        default=7 * 86400.0,
        ge=0,
        description="Events older than now minus this (s) are quarantined out_of_window.",
    )
    drain_accept_future_s: float = Field(
        default=3600.0,
        ge=0,
        description="Events newer than now plus this (s) are quarantined out_of_window.",
    )
    drain_db_pool_size: int = Field(
        default=5, ge=1, le=100, description="Most PostgreSQL connections per worker process."
    )
    drain_data_dir: Path | None = Field(
        default=None,
        description=(
            "Data directory of the embedded PostgreSQL (used only when DATABASE_URL is unset). "
            "Default: the per-user data directory, drain.embedded.default_data_dir()."
        ),
    )
    # ---- operations (drain.metrics, drain.lifecycle, drain.budget)
    drain_metrics: bool = Field(
        default=True,
        description=(
            "Serve GET /metrics (Prometheus text format), behind the same HTTP Basic "
            "credentials as POST /logs. false: /metrics answers 404."
        ),
    )
    drain_partitions_ahead_days: int = Field(
        default=2,
        ge=0,
        le=60,
        description="Daily partitions kept made ahead of today (days); /health warns when fewer.",
    )
    drain_retention_days: int = Field(
        default=30,
        ge=0,
        le=36500,
        description=(
            "Days of raw_events partitions (by event day), received_batches and quarantine "
            "rows (by received_at) kept; older ones are detached and dropped by maintenance. "
            "0 keeps everything."
        ),
    )
    drain_maintenance_interval_s: float = Field(
        default=3600.0,
        ge=10,
        description="Seconds between partition maintenance runs of `drain clock`.",
    )
    drain_db_max_connections: int | None = Field(
        default=None,
        ge=1,
        description=(
            "Connections the database allows this role; unset: read from the server "
            "(max_connections minus superuser_reserved_connections, and the role's limit)."
        ),
    )
    drain_db_reserved_connections: int = Field(
        default=5,
        ge=0,
        description=(
            "Connections left out of the web pools' budget: the clock's pool (3), the release "
            "phase's `drain migrate` (1) and one `heroku pg:psql` (1)."
        ),
    )
    database_connection_pool_url: SecretStr | None = Field(
        default=None,
        description=(
            "Heroku's connection pooler (PgBouncer, transaction mode). When set, the web "
            "pools connect through it; migrations and maintenance keep DATABASE_URL."
        ),
    )
    web_concurrency: int = Field(
        default=1,
        ge=1,
        le=64,
        description="uvicorn worker processes (Heroku sets WEB_CONCURRENCY).",
    )

    @field_validator("drain_username")
    @classmethod
    def _username_has_no_colon(cls, value: str | None) -> str | None:
        if value is not None and ":" in value:
            raise ValueError("HTTP Basic user names cannot contain ':'")
        return value

    @field_validator("drain_host")
    @classmethod
    def _host_is_an_address_or_name(cls, value: str | None) -> str | None:
        if value is not None and (not value.strip() or any(c.isspace() for c in value)):
            raise ValueError("expected an IP address or host name, e.g. 127.0.0.1 or 0.0.0.0")
        return value

    @field_validator("drain_tokens")
    @classmethod
    def _tokens_not_empty(cls, value: str | None) -> str | None:
        if value is None:
            return value
        tokens = [t.strip() for t in value.split(",") if t.strip()]
        if not tokens:
            raise ValueError("expected a comma-separated list of drain tokens (d.<uuid>,...)")
        for token in tokens:
            if not _DRAIN_TOKEN.fullmatch(token):
                raise ValueError(
                    f"{token!r} is not a Logplex drain token: expected d.<uuid>, e.g. "
                    "d.fc6b856b-3332-4546-93de-7d0ee272c3bd (`heroku drains --json` lists them)"
                )
        return value

    # ----------------------------------------------------------------- derived values

    @property
    def deployed(self) -> bool:
        """True when an external database is configured (DATABASE_URL set)."""
        return self.database_url is not None

    @property
    def host(self) -> str:
        """The interface to bind: DRAIN_HOST, else 0.0.0.0 when deployed, else 127.0.0.1."""
        if self.drain_host is not None:
            return self.drain_host
        return "0.0.0.0" if self.deployed else "127.0.0.1"

    @property
    def allowed_drain_tokens(self) -> frozenset[str] | None:
        """The DRAIN_TOKENS allow-list as a set, or None when every token is accepted."""
        if self.drain_tokens is None:
            return None
        return frozenset(t.strip() for t in self.drain_tokens.split(",") if t.strip())

    @property
    def https_required(self) -> bool:
        """True when ``X-Forwarded-Proto: http`` is refused: DRAIN_REQUIRE_HTTPS, else deployed."""
        if self.drain_require_https is not None:
            return self.drain_require_https
        return self.deployed

    @property
    def credentials_required(self) -> bool:
        """True when POST /logs checks HTTP Basic credentials (both variables are set)."""
        return self.drain_username is not None and self.drain_password is not None

    def data_dir(self) -> Path:
        """The embedded PostgreSQL's data directory: DRAIN_DATA_DIR or the per-user default."""
        if self.drain_data_dir is not None:
            return self.drain_data_dir
        from drain.embedded import default_data_dir

        return default_data_dir()

    # ----------------------------------------------------------------- construction

    @classmethod
    def load(cls, **overrides: Any) -> Settings:
        """Build settings from the environment (and ``overrides``, which win).

        Raises:
            SettingsError: a variable does not validate; the message names every such
                variable and never echoes a secret's value.
        """
        try:
            return cls(**overrides)
        except ValidationError as error:
            raise SettingsError(describe_validation_error(error)) from None

    def check_serving(self) -> None:
        """Refuse configurations that must not serve POST /logs.

        Raises:
            SettingsError: DATABASE_CONNECTION_POOL_URL without DATABASE_URL; only one of
                DRAIN_USERNAME / DRAIN_PASSWORD is set; or DATABASE_URL
                is set (a deployed drain) without both and DRAIN_ALLOW_ANONYMOUS is not true;
                or the drain listens beyond loopback without credentials and without
                DRAIN_ALLOW_ANONYMOUS=true.
        """
        if self.database_connection_pool_url is not None and self.database_url is None:
            raise SettingsError(
                "DATABASE_CONNECTION_POOL_URL is set but DATABASE_URL is not: migrations and "
                "maintenance need the direct DATABASE_URL"
            )
        has_user = self.drain_username is not None
        has_password = self.drain_password is not None
        if has_user != has_password:
            raise SettingsError(
                "DRAIN_USERNAME and DRAIN_PASSWORD must be set together (only "
                + ("DRAIN_USERNAME" if has_user else "DRAIN_PASSWORD")
                + " is set)"
            )
        if self.credentials_required or self.drain_allow_anonymous:
            return
        if self.deployed:
            raise SettingsError(
                "DATABASE_URL is set (a deployed drain) but DRAIN_USERNAME and DRAIN_PASSWORD "
                "are not: set both (HTTP Basic credentials for POST /logs), or set "
                "DRAIN_ALLOW_ANONYMOUS=true to accept anonymous posts"
            )
        if not _is_loopback(self.host):
            raise SettingsError(
                f"DRAIN_HOST={self.host} listens beyond this machine but DRAIN_USERNAME and "
                "DRAIN_PASSWORD are not set: set both, or set DRAIN_ALLOW_ANONYMOUS=true"
            )


def unknown_drain_variables(environ: Mapping[str, str]) -> list[str]:
    """``DRAIN_*`` names in ``environ`` that are no setting (a typo falls back to a default
    silently otherwise), each with the closest setting name when there is one."""
    known = {name.upper() for name in Settings.model_fields}
    internal = {"DRAIN_SERVE_DATABASE_URL"}
    notes = []
    for name in sorted(environ):
        upper = name.upper()
        if not upper.startswith("DRAIN_") or upper in known or upper in internal:
            continue
        close = difflib.get_close_matches(upper, sorted(known), n=1)
        notes.append(f"{name} (did you mean {close[0]}?)" if close else name)
    return notes


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def describe_validation_error(error: ValidationError) -> str:
    """One line per invalid variable, ``NAME: message``; secret inputs are not echoed."""
    lines = []
    for item in error.errors(include_url=False):
        loc = item.get("loc") or ()
        name = str(loc[0]) if loc else ""
        message = str(item.get("msg", "invalid"))
        if name:
            shown = ""
            if name not in _SECRET_FIELDS and "input" in item:
                shown = f" (got {item['input']!r})"
            lines.append(f"{name.upper()}: {message}{shown}")
        else:
            lines.append(message)
    return "invalid settings: " + "; ".join(lines)
