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

Settings is the one source of every default: the parts receive typed configurations built
here (:meth:`Settings.decode_limits`, :meth:`Settings.writer_config`, :meth:`Settings.web_config`,
:meth:`Settings.retention_policy`, :meth:`Settings.clock_config`,
:meth:`Settings.connection_limits`), whose setting-backed fields
have no default of their own. :meth:`Settings.defaults` gives the defaults without reading the
environment (tests, benchmarks).

Errors: :meth:`Settings.load` raises :class:`SettingsError`, whose message names each
offending variable (``PORT: Input should be a valid integer``), without echoing secret values.
:meth:`Settings.check_serving` raises :class:`SettingsError` when a deployed drain
(``DATABASE_URL`` set) would accept anonymous posts without ``DRAIN_ALLOW_ANONYMOUS=true``.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
import sys
from collections.abc import Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import annotated_types
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from drain import speedups
from drain.errors import SettingsError

if TYPE_CHECKING:
    from drain.archive.config import ArchiveConfig
    from drain.decode.limits import DecodeLimits
    from drain.decode.rules import LineRules
    from drain.rollups.clock import ClockConfig
    from drain.store.lifecycle import RetentionPolicy
    from drain.store.writer import WriterConfig
    from drain.web.config import ConnectionLimits, WebConfig

__all__ = [
    "HEROKU_SHUTDOWN_S",
    "REFERENCE_BEGIN",
    "REFERENCE_END",
    "Settings",
    "SettingsError",
    "reference_markdown",
    "splice_reference",
    "unknown_drain_variables",
]

MiB = 2**20

_SECRET_FIELDS = frozenset(
    {
        "database_url",
        "database_connection_pool_url",
        "drain_password",
        "drain_viewer_password",
        "drain_bearer_token",
        "drain_client_hash_key",
    }
)


#: a Logplex drain token: "d." and a UUID (Heroku Dev Center, "Log Drains")
_DRAIN_TOKEN = re.compile(
    r"d\.[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)


#: an RFC 6750 §2.1 b64token (the credential of ``Authorization: Bearer``)
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
#: DRAIN_OTLP_PATH_PREFIX: "/" and path segments (RFC 3986 unreserved characters)
_PATH_PREFIX = re.compile(r"(/[A-Za-z0-9\-._~]+)+")

#: a Heroku error code (Heroku Dev Center, "Heroku Error Codes")
_HEROKU_CODE = re.compile(r"[HRL][0-9]{2}")

#: BLAKE2b personalisation of the client-hash key derived from DRAIN_CLIENT_HASH_KEY
_CLIENT_KEY_PERSON = b"drain-client-fwd"

#: seconds Heroku allows between SIGTERM and SIGKILL (Dev Center, "Dynos: graceful shutdown")
HEROKU_SHUTDOWN_S = 30


class Settings(BaseSettings):
    """Every setting of the drain, one field per environment variable (upper-case name).

    See the module docstring for precedence. Every field has a ``description`` and a
    ``json_schema_extra={"unit": ...}`` (bytes, seconds, rows, ...), and, when the default is
    worked out at run time, a ``"default_text"`` saying how: :func:`reference_markdown`
    renders them as the settings reference (docs/settings.md).
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
            "PostgreSQL to write to (`postgres://` or `postgresql://`; `?sslmode=require` = TLS "
            "without certificate verification, as Heroku Postgres needs). Unset: `drain serve`, "
            "`drain migrate` and the other commands use an embedded PostgreSQL in "
            "`DRAIN_DATA_DIR`."
        ),
        json_schema_extra={"unit": "URL"},
    )
    port: int = Field(
        default=8000,
        ge=1,
        le=65535,
        description="Port to listen on (Heroku sets it); `drain serve --port` overrides it.",
        json_schema_extra={"unit": "TCP port"},
    )
    drain_host: str | None = Field(
        default=None,
        description=(
            "Interface to bind: 127.0.0.1 for a local drain; 0.0.0.0 for a deployed one (Heroku "
            "routes to `$PORT` on all interfaces); `drain serve --host` overrides it."
        ),
        json_schema_extra={
            "unit": "address",
            "default_text": "`127.0.0.1` without `DATABASE_URL`, `0.0.0.0` with it",
        },
    )
    drain_username: str | None = Field(
        default=None,
        description="HTTP Basic user name that `POST /logs` requires (no `:`).",
        json_schema_extra={"unit": "text"},
    )
    drain_password: SecretStr | None = Field(
        default=None,
        description=(
            "HTTP Basic password that `POST /logs` requires. Set both `DRAIN_USERNAME` and "
            "`DRAIN_PASSWORD`, or neither."
        ),
        json_schema_extra={"unit": "secret"},
    )
    drain_allow_anonymous: bool = Field(
        default=False,
        description=(
            "Let a deployed drain (`DATABASE_URL` set), or one bound beyond loopback, run "
            "without `DRAIN_USERNAME` and `DRAIN_PASSWORD`; without it such a drain refuses to "
            "start."
        ),
        json_schema_extra={"unit": "bool"},
    )
    drain_tokens: str | None = Field(
        default=None,
        description=(
            "Allow-list of Logplex drain tokens (`d.<uuid>`; anything else is refused at "
            "start-up). When set, a POST whose `Logplex-Drain-Token` is missing or not listed "
            "gets 403 and the log line names it. log-shuttle sends no token: leave it unset "
            "for log-shuttle."
        ),
        json_schema_extra={"unit": "comma-separated list", "default_text": "unset (any token)"},
    )
    drain_apps: str | None = Field(
        default=None,
        description=(
            "Which Heroku app each Logplex drain token belongs to, for several apps on one "
            "drain: `d.<uuid>=shop,d.<uuid>=api`. Every stored row records its app: this "
            'name, else the drain token, else empty. The names (and "other" for every '
            "other app) label the per-app counters of /health and /metrics."
        ),
        json_schema_extra={"unit": "comma-separated token=app pairs", "default_text": "unset"},
    )
    drain_max_body_bytes: int = Field(
        default=8 * MiB,
        ge=1024,
        description=(
            "Largest request body, after gzip decoding; over it: 413. Logplex sends ~100 KiB, "
            "log-shuttle up to ~5 MB."
        ),
        json_schema_extra={"unit": "bytes"},
    )
    drain_max_frame_bytes: int = Field(
        default=65536,
        ge=64,
        description=(
            "Largest syslog frame (or OTLP log record body); longer ones are quarantined "
            "`frame_too_long`."
        ),
        json_schema_extra={"unit": "bytes"},
    )
    drain_max_frames_per_body: int = Field(
        default=20_000,
        ge=1,
        description=(
            "Most syslog frames (or OTLP log records) in one body; more: 413, counted as "
            "`too_many_frames` in `/health`. Decoding costs CPU per frame whatever the frame "
            "holds, so this bounds the CPU one body of tiny frames can take. Logplex sends "
            "~2,000 frames at most, log-shuttle 500 by default (`-batch-size`), the "
            "OpenTelemetry SDKs 512 log records (`OTEL_BLRP_MAX_EXPORT_BATCH_SIZE`)."
        ),
        json_schema_extra={"unit": "frames"},
    )
    drain_body_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="Time allowed to receive a whole request body; slower: 503 + `Retry-After`.",
        json_schema_extra={"unit": "seconds"},
    )
    drain_max_quarantine_raw_bytes: int = Field(
        default=65536,
        ge=1024,
        description="Bytes of a quarantined line kept in quarantine.raw; the rest is cut off.",
        json_schema_extra={"unit": "bytes"},
    )
    drain_max_id_header_bytes: int = Field(
        default=200,
        ge=16,
        le=8192,
        description=(
            "Longest Logplex-Frame-Id, X-Request-Id or Logplex-Drain-Token accepted, in bytes; "
            "longer: 400."
        ),
        json_schema_extra={"unit": "bytes"},
    )
    drain_write_wait_s: float = Field(
        default=10.0,
        gt=0,
        description=(
            "Seconds a POST waits for its batch to commit before answering 503 (the batch may "
            "still commit: the retry is then a duplicate). Below DRAIN_SHUTDOWN_REQUESTS_S."
        ),
        json_schema_extra={"unit": "seconds"},
    )
    drain_retry_after_s: int = Field(
        default=5,
        ge=1,
        le=300,
        description="Retry-After (s) of a 503 for an unreachable database or a closing writer.",
        json_schema_extra={"unit": "seconds"},
    )
    drain_decode_in_thread_bytes: int = Field(
        default=256 * 1024,
        ge=0,
        description=(
            "Bodies at least this large (bytes) are decoded in a worker thread, so the event "
            "loop keeps answering meanwhile; Logplex's ~100 KiB batches stay on the loop."
        ),
        json_schema_extra={"unit": "bytes"},
    )
    drain_health_probe_timeout_s: float = Field(
        default=2.0,
        gt=0,
        description="Bound (s) on each database probe of GET /health and GET /metrics.",
        json_schema_extra={"unit": "seconds"},
    )
    drain_shutdown_requests_s: int = Field(
        default=12,
        ge=1,
        description=(
            "On SIGTERM, seconds uvicorn waits for requests in flight. With "
            "DRAIN_SHUTDOWN_WRITER_S and DRAIN_SHUTDOWN_POOL_S at most 30 (Heroku's SIGKILL)."
        ),
        json_schema_extra={"unit": "seconds"},
    )
    drain_shutdown_writer_s: float = Field(
        default=8.0,
        gt=0,
        description="On SIGTERM, seconds the writer may take to commit what it queued.",
        json_schema_extra={"unit": "seconds"},
    )
    drain_shutdown_pool_s: float = Field(
        default=4.0,
        gt=0,
        description="On SIGTERM, seconds the pool may take to close (then it is terminated).",
        json_schema_extra={"unit": "seconds"},
    )
    drain_db_command_timeout_s: float = Field(
        default=30.0,
        gt=0,
        description=(
            "Bound (s) on one attempt to write a group: connection, partitions, COPY, COMMIT; "
            "past it the group's POSTs get 503."
        ),
        json_schema_extra={"unit": "seconds"},
    )
    drain_body_budget_bytes: int = Field(
        default=32 * MiB,
        ge=1024,
        description=(
            "Bytes of request bodies (after gzip decoding) being read and decoded at once, for "
            "the whole `drain serve` (each worker gets its share, at least "
            "DRAIN_MAX_BODY_BYTES); past it: 503 + `Retry-After: 1`."
        ),
        json_schema_extra={"unit": "bytes"},
    )
    drain_require_https: bool | None = Field(
        default=None,
        description=(
            "Refuse (503) a POST whose `X-Forwarded-Proto` is `http`: Heroku's router received "
            "it over plain HTTP (an `http://` drain URL, credentials in clear). Requests "
            "without the header are not affected."
        ),
        json_schema_extra={"unit": "bool", "default_text": "on when `DATABASE_URL` is set"},
    )
    drain_flush_max_events: int = Field(
        default=5000,
        ge=1,
        description=(
            "Group commit: most rows per transaction; batches waiting for a group in flight "
            "are written alongside it once they reach this many."
        ),
        json_schema_extra={"unit": "rows"},
    )
    drain_flush_max_delay_s: float = Field(
        default=0.05,
        gt=0,
        description=(
            "Group commit: the longest a batch waits for the group in flight before a second "
            "group is written alongside it; a batch that finds none waits not at all."
        ),
        json_schema_extra={"unit": "seconds"},
    )
    drain_writer_flushers: int = Field(
        default=2,
        ge=1,
        le=8,
        description=(
            "Group commit: groups written at once, each on its own connection (the next "
            "group's COPY while the previous one commits)."
        ),
        json_schema_extra={"unit": "count"},
    )
    drain_queue_max_events: int = Field(
        default=200_000,
        ge=1,
        description=(
            "Write-queue bound for the whole `drain serve`; each of the `WEB_CONCURRENCY` "
            "workers gets its share (100000 each with 2 workers). Past it: 503 + `Retry-After`."
        ),
        json_schema_extra={"unit": "rows"},
    )
    drain_queue_max_wait_s: float = Field(
        default=1.0,
        gt=0,
        description=(
            "Write-queue bound in time: past this much work (queued events, plus those of "
            "bodies being read and decoded, over the measured commit rate): 503 + "
            "`Retry-After`."
        ),
        json_schema_extra={"unit": "seconds"},
    )
    drain_queue_max_bytes: int = Field(
        default=64 * MiB,
        ge=1024,
        description=(
            "Write-queue bound for the whole `drain serve`, divided among the "
            "`WEB_CONCURRENCY` workers like `DRAIN_QUEUE_MAX_EVENTS`; past it: 503 + "
            "`Retry-After`."
        ),
        json_schema_extra={"unit": "bytes"},
    )
    drain_accept_past_s: float = Field(
        default=7 * 86400.0,
        ge=0,
        description="Events older than now minus this are quarantined `out_of_window`.",
        json_schema_extra={"unit": "seconds"},
    )
    drain_accept_future_s: float = Field(
        default=3600.0,
        ge=0,
        description="Events newer than now plus this are quarantined `out_of_window`.",
        json_schema_extra={"unit": "seconds"},
    )
    drain_db_pool_size: int = Field(
        default=5,
        ge=1,
        le=100,
        description=(
            "Most PostgreSQL connections per worker process (fewer when the connection budget "
            "is smaller: docs/operations.md, Connection budget)."
        ),
        json_schema_extra={"unit": "connections"},
    )
    drain_data_dir: Path | None = Field(
        default=None,
        description=(
            "Data directory of the embedded PostgreSQL (used only when `DATABASE_URL` is "
            "unset); kept across runs."
        ),
        json_schema_extra={
            "unit": "path",
            "default_text": (
                "`drain/pgdata` in the per-user data directory (`~/.local/share/drain/pgdata` "
                "on Linux)"
            ),
        },
    )
    # ---- operations (drain.web.metrics, drain.store.lifecycle, drain.store.budget)
    drain_metrics: bool = Field(
        default=True,
        description=(
            "Serve `GET /metrics` (Prometheus text format), behind the same HTTP Basic "
            "credentials as `POST /logs`; `false`: `/metrics` answers 404."
        ),
        json_schema_extra={"unit": "bool"},
    )
    drain_partitions_ahead_days: int = Field(
        default=2,
        ge=0,
        le=60,
        description=(
            "Daily partitions made ahead of today, at start and by maintenance; `/health` "
            "warns when fewer exist."
        ),
        json_schema_extra={"unit": "days"},
    )
    drain_retention_days: int = Field(
        default=30,
        ge=0,
        le=36500,
        description=(
            "Partitions of `raw_events` and of the tables of Heroku's lines whose day is older "
            "(and outside `DRAIN_ACCEPT_PAST_S`) are detached and dropped by maintenance; "
            "`received_batches` and `quarantine` rows received earlier are deleted. `0` keeps "
            "everything."
        ),
        json_schema_extra={"unit": "days"},
    )
    drain_maintenance_interval_s: float = Field(
        default=3600.0,
        ge=10,
        description="How often `drain clock` runs partition maintenance.",
        json_schema_extra={"unit": "seconds"},
    )
    drain_db_max_connections: int | None = Field(
        default=None,
        ge=1,
        description=(
            "Connections the database allows this role, budgeted between the web workers' "
            "pools. With several web dynos: the limit divided by the dynos."
        ),
        json_schema_extra={
            "unit": "connections",
            "default_text": (
                "unset: asked from the server (`max_connections` minus "
                "`superuser_reserved_connections`, capped by the role's own limit)"
            ),
        },
    )
    drain_db_reserved_connections: int = Field(
        default=5,
        ge=0,
        description=(
            "Connections left out of the web pools' budget: `drain clock`'s pool (3), the "
            "release phase's `drain migrate` (1) and one `heroku pg:psql` (1)."
        ),
        json_schema_extra={"unit": "connections"},
    )
    database_connection_pool_url: SecretStr | None = Field(
        default=None,
        description=(
            "Heroku's connection pooler (PgBouncer, transaction mode). When set, the web "
            "workers' pools connect through it; `drain migrate`, `drain clock` and "
            "`drain partitions` keep `DATABASE_URL` (they hold session advisory locks)."
        ),
        json_schema_extra={"unit": "URL"},
    )
    # ---- OTLP input (drain.web.otlp: Fir telemetry drains, docs/otlp.md)
    drain_bearer_token: SecretStr | None = Field(
        default=None,
        description=(
            "A token that every route taking credentials also accepts as "
            "`Authorization: Bearer <token>`, besides `DRAIN_USERNAME`/`DRAIN_PASSWORD`: what a "
            "Fir telemetry drain sends with `heroku telemetry:add ... --headers "
            '\'{"Authorization":"Bearer <token>"}\'`. At least 16 characters.'
        ),
        json_schema_extra={"unit": "secret"},
    )
    drain_otlp_path_prefix: str | None = Field(
        default=None,
        description=(
            "Also serve the OTLP/HTTP routes under this path: `/otlp` adds `/otlp/v1/logs`, "
            "`/otlp/v1/metrics` and `/otlp/v1/traces` to `/v1/logs`, `/v1/metrics` and "
            "`/v1/traces`. Starts with `/`, no trailing `/`."
        ),
        json_schema_extra={"unit": "URL path", "default_text": "unset (only `/v1/...`)"},
    )
    # ---- Heroku's own lines (drain.decode.rules, drain.web.health; docs/lines.md)
    drain_router_requests: bool = Field(
        default=True,
        description=(
            "Store Heroku's router lines (`heroku router`) in `router_requests`; `false`: "
            "they are counted `untagged`, as before."
        ),
        json_schema_extra={"unit": "bool"},
    )
    drain_platform_metrics: bool = Field(
        default=True,
        description=(
            "Store runtime metrics (`heroku web.1 source=… sample#…`) and add-on metrics "
            "(`heroku-postgres`, `heroku-redis`, `heroku-kafka`) in `platform_metrics`, one "
            "row per sample; `false`: `untagged`."
        ),
        json_schema_extra={"unit": "bool"},
    )
    drain_platform_events: bool = Field(
        default=True,
        description=(
            "Store platform errors and state changes (R14, H12, crashes, exits, releases, "
            "L10 … L15) in `platform_events`; `false`: `untagged` (loss lines: "
            "`logplex_error`), and `/health` does not warn on them."
        ),
        json_schema_extra={"unit": "bool"},
    )
    drain_router_fwd: Literal["hash", "raw", "none"] = Field(
        default="hash",
        description=(
            "How a router line's client address (`fwd`, personal data) is kept: `hash` (a "
            "keyed BLAKE2b hash in `client_hash`, for distinct-client counts), `raw` (the "
            "hash, and the address in `fwd`), `none` (neither)."
        ),
        json_schema_extra={"unit": "hash, raw or none"},
    )
    drain_client_hash_key: SecretStr | None = Field(
        default=None,
        min_length=16,
        description=(
            "Secret from which the key of `client_hash` is derived, so that the key is not "
            "in the database; the same on every dyno. Unset: the random key made in table "
            "`drain_secrets` by migration 0203. Changing it changes every hash from then on."
        ),
        json_schema_extra={"unit": "secret (16+ characters)", "default_text": "unset"},
    )
    drain_exclude_lines: str | None = Field(
        default=None,
        description=(
            "Heroku lines not to store, counted as `excluded`: `KIND.FIELD=GLOB` rules, "
            "comma-separated, e.g. `router.path=/health*,router.path=/assets/*` "
            "(docs/lines.md lists the fields)."
        ),
        json_schema_extra={"unit": "comma-separated rules", "default_text": "unset"},
    )
    drain_platform_warn_codes: str = Field(
        default="H10,H12,H13,H20,R10,R14,R15",
        description=(
            "Heroku error codes that `/health` warns about when `platform_events` holds one "
            "of them in the last `DRAIN_PLATFORM_WARN_WINDOW_S`; empty: no such warning."
        ),
        json_schema_extra={"unit": "comma-separated codes"},
    )
    drain_platform_warn_window_s: float = Field(
        default=900.0,
        gt=0,
        le=86400,
        description="How far back `/health` looks for the codes of `DRAIN_PLATFORM_WARN_CODES`.",
        json_schema_extra={"unit": "seconds"},
    )
    web_concurrency: int = Field(
        default=1,
        ge=1,
        le=64,
        description=(
            "uvicorn worker processes, each with its own pool and writer (Heroku's Python "
            "buildpack sets `WEB_CONCURRENCY` from the dyno size); `drain serve --workers` "
            "overrides it. Unset on a deployed drain: min(CPUs, memory limit MiB / 256) from "
            "the cgroup (2 on a 512 MB dyno); on the embedded default: 1."
        ),
        json_schema_extra={"unit": "processes", "default_text": "see meaning"},
    )

    # ---- connections and request heads (drain.web.connections)
    drain_max_head_bytes: int = Field(
        default=16 * 1024,
        ge=1024,
        le=MiB,
        description=(
            "Largest request head (request line, headers and the blank line after them); "
            "over it: 431 and the connection is closed, the rest unread. Heroku's router "
            "passes a request line and each header of up to 8 KiB (Dev Center, HTTP "
            "Routing); Logplex's head with the router's headers is under 2 KiB."
        ),
        json_schema_extra={"unit": "bytes"},
    )
    drain_head_timeout_s: float = Field(
        default=5.0,
        gt=0,
        le=300,
        description=(
            "Time a connection has to send a complete request head, from its start (or from "
            "the first byte of a later request's head); then it is closed without an "
            "answer, which Logplex retries. Heroku's router sends a head at once."
        ),
        json_schema_extra={"unit": "seconds"},
    )
    drain_max_connections: int = Field(
        default=1024,
        ge=1,
        description=(
            "Open connections per worker process. At the cap a new connection closes the one "
            "that has waited longest for a request head; when every connection has a "
            "request in progress, the new one gets 503 + `Retry-After`. Never more than the "
            "worker's file-descriptor limit (`ulimit -n`) minus 64 and the pool's."
        ),
        json_schema_extra={"unit": "connections"},
    )

    # ---- archive (drain.archive, docs/archive.md)
    drain_archive: bool | None = Field(
        default=None,
        description=(
            "Archive each partition that retention would drop as Parquet files in "
            "`DRAIN_ARCHIVE_URL`, verify them, and only then drop it; `false`: retention drops "
            "without archiving. A deployed drain needs `DRAIN_ARCHIVE_URL` (a dyno's disk is "
            "not kept)."
        ),
        json_schema_extra={
            "unit": "bool",
            "default_text": (
                "on when `DRAIN_ARCHIVE_URL` is set, and on the embedded PostgreSQL (no "
                "`DATABASE_URL`); off for a deployed drain without `DRAIN_ARCHIVE_URL`"
            ),
        },
    )
    drain_archive_url: str | None = Field(
        default=None,
        description=(
            "Where the archive goes: a local directory (a path or `file://` URL) or "
            "`s3://bucket/prefix` (S3, Bucketeer or any S3-compatible server; credentials from "
            "`AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`)."
        ),
        json_schema_extra={
            "unit": "URL",
            "default_text": (
                "`drain/archive` in the per-user data directory (`~/.local/share/drain/archive` "
                "on Linux) when archiving is on without it"
            ),
        },
    )
    drain_archive_file_max_bytes: int = Field(
        default=256 * MiB,
        ge=MiB,
        description=(
            "A Parquet file (one app, one day) is closed and the next begun once it holds this "
            "much; it may pass it by one row group (128 Ki rows)."
        ),
        json_schema_extra={"unit": "bytes"},
    )
    aws_endpoint_url: str | None = Field(
        default=None,
        description=(
            "The S3 endpoint for an `s3://` archive on an S3-compatible server (MinIO, moto, "
            "a Bucketeer endpoint); unset: AWS. Path-style addressing."
        ),
        json_schema_extra={"unit": "URL"},
    )
    aws_region: str | None = Field(
        default=None,
        description="The AWS region of the archive's bucket.",
        json_schema_extra={"unit": "text", "default_text": "`us-east-1`"},
    )

    @field_validator("drain_archive_url")
    @classmethod
    def _archive_url_is_a_directory_or_s3(cls, value: str | None) -> str | None:
        if value is None:
            return value
        scheme = value.partition("://")[0].lower() if "://" in value else ""
        if scheme not in ("", "file", "s3"):
            raise ValueError("expected a directory, a file:// URL or s3://bucket/prefix")
        if scheme == "s3" and not value[len("s3://") :].strip("/"):
            raise ValueError("expected s3://bucket/prefix: the bucket is missing")
        return value

    # ---- dashboard (drain.web.dashboard, drain.cli.bi, drain.store.listener)
    drain_dashboard: bool = Field(
        default=True,
        description=(
            "Serve the dashboard (`GET /`, its pages and `/api/...`): behind "
            "`DRAIN_VIEWER_USERNAME`/`DRAIN_VIEWER_PASSWORD`, or open when neither is set and "
            "the drain is local (no `DATABASE_URL`, bound to loopback); otherwise, and with "
            "`false`, those paths answer 404."
        ),
        json_schema_extra={"unit": "bool"},
    )
    drain_viewer_username: str | None = Field(
        default=None,
        description=(
            "HTTP Basic user name of the dashboard's viewers (no `:`). The viewer credentials "
            "open only the dashboard's pages (GET); they never post to `/logs`."
        ),
        json_schema_extra={"unit": "text"},
    )
    drain_viewer_password: SecretStr | None = Field(
        default=None,
        description=(
            "HTTP Basic password of the dashboard's viewers. Set both viewer variables, or "
            "neither; the pair must differ from `DRAIN_USERNAME`/`DRAIN_PASSWORD`."
        ),
        json_schema_extra={"unit": "secret"},
    )
    drain_dashboard_statement_timeout_s: float = Field(
        default=5.0,
        gt=0,
        le=300,
        description=(
            "Bound (s) on each dashboard query (`SET LOCAL statement_timeout` in its read-only "
            "transaction); past it the page shows the time-out and `/api/...` answers 503."
        ),
        json_schema_extra={"unit": "seconds"},
    )
    drain_dashboard_refresh_s: int = Field(
        default=60,
        ge=5,
        le=3600,
        description="How often a dashboard page reloads itself when its auto-refresh is on.",
        json_schema_extra={"unit": "seconds"},
    )
    drain_embedded_pg_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description=(
            "While `drain serve` runs on the embedded PostgreSQL, also accept PostgreSQL "
            "connections on `127.0.0.1:PORT` (for Metabase or Grafana on this machine), for "
            "roles with a password (`drain bi-role`); the superuser `postgres` is refused there."
        ),
        json_schema_extra={"unit": "TCP port", "default_text": "unset (unix socket only)"},
    )

    @field_validator("drain_bearer_token")
    @classmethod
    def _bearer_token_is_a_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return value
        token = value.get_secret_value()
        # RFC 6750 §2.1 b64token: 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
        if len(token) < 16 or not _B64TOKEN.fullmatch(token):
            raise ValueError(
                "expected at least 16 characters of A-Z a-z 0-9 - . _ ~ + / (then = padding), "
                "e.g. the output of `openssl rand -hex 32`"
            )
        return value

    @field_validator("drain_otlp_path_prefix")
    @classmethod
    def _prefix_is_a_path(cls, value: str | None) -> str | None:
        if value is not None and not _PATH_PREFIX.fullmatch(value):
            raise ValueError(
                "expected a path such as /otlp: a leading /, then segments of "
                "A-Z a-z 0-9 - . _ ~ separated by /, no trailing /"
            )
        return value

    @field_validator("drain_username", "drain_viewer_username")
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

    @field_validator("drain_apps")
    @classmethod
    def _apps_are_token_name_pairs(cls, value: str | None) -> str | None:
        if value is None:
            return value
        _app_map(value)  # raises ValueError naming the bad pair
        return value

    @field_validator("drain_exclude_lines")
    @classmethod
    def _exclusions_parse(cls, value: str | None) -> str | None:
        from drain.decode.rules import parse_exclusions

        parse_exclusions(value)  # raises ValueError naming the bad rule
        return value

    @field_validator("drain_platform_warn_codes")
    @classmethod
    def _warn_codes_are_codes(cls, value: str) -> str:
        for code in (c.strip() for c in value.split(",")):
            if code and not _HEROKU_CODE.fullmatch(code):
                raise ValueError(
                    f"{code!r} is not a Heroku error code (H10 … H99, R10 … R99, L10 … L15)"
                )
        return value

    @model_validator(mode="after")
    def _shutdown_fits_herokus_budget(self) -> Settings:
        total = self.drain_shutdown_requests_s + self.drain_shutdown_writer_s
        total += self.drain_shutdown_pool_s
        if total > HEROKU_SHUTDOWN_S:
            raise ValueError(
                f"DRAIN_SHUTDOWN_REQUESTS_S + DRAIN_SHUTDOWN_WRITER_S + DRAIN_SHUTDOWN_POOL_S "
                f"is {total:g} s, over the {HEROKU_SHUTDOWN_S} s Heroku allows after SIGTERM"
            )
        if self.drain_write_wait_s >= self.drain_shutdown_requests_s:
            raise ValueError(
                "DRAIN_WRITE_WAIT_S must be below DRAIN_SHUTDOWN_REQUESTS_S, so that on SIGTERM "
                "every POST waiting on a hung database still gets an answer"
            )
        return self

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

    @cached_property
    def app_names(self) -> dict[str, str]:
        """DRAIN_APPS as a mapping from drain token to app name (empty when unset)."""
        return _app_map(self.drain_apps) if self.drain_apps else {}

    def app_for(self, drain_token: str | None) -> str:
        """The app of a batch sent with ``drain_token``: its DRAIN_APPS name, else the token,
        else ``""`` (see :attr:`drain.records.EventRow.app`)."""
        if drain_token is None:
            return ""
        return self.app_names.get(drain_token, drain_token)

    def app_label(self, app: str) -> str:
        """The value of an ``app`` label in /metrics and /health for ``app``: a name DRAIN_APPS
        gives, else ``"other"``, so the number of series stays bounded whatever the
        senders put in their tokens or service names."""
        return app if app in self.app_names.values() else "other"

    def token_label(self, drain_token: str | None) -> str:
        """The value of a ``drain_token`` label in /metrics: a token DRAIN_TOKENS or
        DRAIN_APPS lists, ``""`` for none, else ``"other"`` (bounded, as :meth:`app_label`)."""
        if drain_token is None:
            return ""
        allowed = self.allowed_drain_tokens or frozenset()
        if drain_token in allowed or drain_token in self.app_names:
            return drain_token
        return "other"

    @property
    def https_required(self) -> bool:
        """True when ``X-Forwarded-Proto: http`` is refused: DRAIN_REQUIRE_HTTPS, else deployed."""
        if self.drain_require_https is not None:
            return self.drain_require_https
        return self.deployed

    @property
    def basic_configured(self) -> bool:
        """True when HTTP Basic credentials are set (DRAIN_USERNAME and DRAIN_PASSWORD)."""
        return self.drain_username is not None and self.drain_password is not None

    @property
    def credentials_required(self) -> bool:
        """True when POST /logs, the OTLP routes and GET /metrics check credentials: HTTP
        Basic (both variables set) or a bearer token (DRAIN_BEARER_TOKEN) is configured."""
        return self.basic_configured or self.drain_bearer_token is not None

    @property
    def viewer_credentials_set(self) -> bool:
        """True when the dashboard checks viewer credentials (both viewer variables set)."""
        return self.drain_viewer_username is not None and self.drain_viewer_password is not None

    @property
    def dashboard_access(self) -> str:
        """Who may open the dashboard: ``"viewer"`` (HTTP Basic, the viewer credentials),
        ``"open"`` (no credentials: a local drain, no DATABASE_URL, bound to loopback), or
        ``"off"`` (DRAIN_DASHBOARD=false, or a deployed or non-loopback drain without viewer
        credentials: its paths answer 404)."""
        if not self.drain_dashboard:
            return "off"
        if self.viewer_credentials_set:
            return "viewer"
        if not self.deployed and _is_loopback(self.host):
            return "open"
        return "off"

    def data_dir(self) -> Path:
        """The embedded PostgreSQL's data directory: DRAIN_DATA_DIR or the per-user default."""
        if self.drain_data_dir is not None:
            return self.drain_data_dir
        from drain.store.embedded import default_data_dir

        return default_data_dir()

    # ----------------------------------------------------------------- configurations

    def decode_limits(self) -> DecodeLimits:
        """The decoder's bounds (drain.decode.limits)."""
        from drain.decode.limits import DecodeLimits

        return DecodeLimits(
            max_frame_bytes=self.drain_max_frame_bytes,
            max_quarantine_raw_bytes=self.drain_max_quarantine_raw_bytes,
            accept_past_s=self.drain_accept_past_s,
            accept_future_s=self.drain_accept_future_s,
            max_frames=self.drain_max_frames_per_body,
        )

    @property
    def needs_database_client_key(self) -> bool:
        """True when the key of ``client_hash`` must be read from the database (table
        ``drain_secrets``): DRAIN_ROUTER_FWD hashes and DRAIN_CLIENT_HASH_KEY is unset."""
        return self.drain_router_fwd != "none" and self.drain_client_hash_key is None

    @property
    def platform_warn_codes(self) -> tuple[str, ...]:
        """DRAIN_PLATFORM_WARN_CODES as a tuple of codes (empty: no warning)."""
        return tuple(c.strip() for c in self.drain_platform_warn_codes.split(",") if c.strip())

    def line_rules(self, database_key: bytes | None) -> LineRules:
        """What the decoder makes of Heroku's own lines (drain.decode.rules).

        Args:
            database_key: the ``client_hash_key`` of table ``drain_secrets`` (1-64 bytes),
                used when DRAIN_CLIENT_HASH_KEY is unset; None is accepted only when no key
                is needed (DRAIN_ROUTER_FWD=none, or the setting is set).

        Raises:
            ValueError: a key is needed and ``database_key`` is None or not 1-64 bytes.
        """
        import hashlib

        from drain.decode.rules import ClientMode, LineRules, parse_exclusions

        client = ClientMode(self.drain_router_fwd)
        if self.drain_client_hash_key is not None:
            secret = self.drain_client_hash_key.get_secret_value().encode("utf-8")
            key = hashlib.blake2b(secret, digest_size=32, person=_CLIENT_KEY_PERSON).digest()
        elif client is ClientMode.NONE:
            key = b""
        elif database_key is None:
            raise ValueError("the client_hash key of drain_secrets is needed (migration 0203)")
        else:
            key = database_key
        return LineRules(
            router=self.drain_router_requests,
            metrics=self.drain_platform_metrics,
            platform=self.drain_platform_events,
            client=client,
            client_key=key,
            exclude=parse_exclusions(self.drain_exclude_lines),
        )

    def writer_config(self) -> WriterConfig:
        """One worker's group-commit configuration (drain.store.writer).

        The write-queue bounds (DRAIN_QUEUE_MAX_EVENTS, DRAIN_QUEUE_MAX_BYTES) are for the
        whole ``drain serve``: each of the WEB_CONCURRENCY workers holds its own queue, so
        each gets its share, and the memory bound does not grow with the number of workers.
        """
        from drain.store.writer import WriterConfig

        workers = self.web_concurrency
        return WriterConfig(
            flush_max_events=self.drain_flush_max_events,
            flush_max_delay_s=self.drain_flush_max_delay_s,
            queue_max_events=max(1, self.drain_queue_max_events // workers),
            queue_max_bytes=max(1, self.drain_queue_max_bytes // workers),
            queue_max_wait_s=self.drain_queue_max_wait_s,
            partitions_ahead_days=self.drain_partitions_ahead_days,
            command_timeout_s=self.drain_db_command_timeout_s,
            max_quarantine_raw_bytes=self.drain_max_quarantine_raw_bytes,
            flushers=self.drain_writer_flushers,
        )

    def web_config(self) -> WebConfig:
        """The web app's bounds and time budgets (drain.web.config)."""
        from drain.web.config import WebConfig

        return WebConfig(
            max_body_bytes=self.drain_max_body_bytes,
            body_budget_bytes=max(
                self.drain_body_budget_bytes // self.web_concurrency, self.drain_max_body_bytes
            ),
            body_timeout_s=self.drain_body_timeout_s,
            max_id_header_bytes=self.drain_max_id_header_bytes,
            write_wait_s=self.drain_write_wait_s,
            retry_after_s=self.drain_retry_after_s,
            decode_in_thread_bytes=self.drain_decode_in_thread_bytes,
            probe_timeout_s=self.drain_health_probe_timeout_s,
            writer_close_timeout_s=self.drain_shutdown_writer_s,
            pool_close_timeout_s=self.drain_shutdown_pool_s,
        )

    def connection_limits(self) -> ConnectionLimits:
        """One worker's bounds on connections and request heads (drain.web.connections)."""
        from drain.web.config import FD_RESERVED, ConnectionLimits

        return ConnectionLimits(
            max_head_bytes=self.drain_max_head_bytes,
            head_timeout_s=self.drain_head_timeout_s,
            max_connections=self.drain_max_connections,
            reserved_fds=FD_RESERVED + self.drain_db_pool_size,
            retry_after_s=self.drain_retry_after_s,
        )

    def retention_policy(self) -> RetentionPolicy:
        """What partition maintenance keeps (drain.store.lifecycle)."""
        from drain.store.lifecycle import RetentionPolicy

        return RetentionPolicy(
            ahead_days=self.drain_partitions_ahead_days,
            retention_days=self.drain_retention_days,
            accept_past_s=self.drain_accept_past_s,
        )

    def clock_config(self) -> ClockConfig:
        """The rollup clock's timing (drain.rollups.clock)."""
        from drain.rollups.clock import ClockConfig

        return ClockConfig(maintenance_every_s=self.drain_maintenance_interval_s)

    def archive_config(self) -> ArchiveConfig | None:
        """Where and how expiring partitions are archived (drain.archive), or None when
        archiving is off (see DRAIN_ARCHIVE).

        Raises:
            SettingsError: DRAIN_ARCHIVE=true on a deployed drain without DRAIN_ARCHIVE_URL.
        """
        from drain.archive.config import ArchiveConfig

        on = self.drain_archive
        if on is None:
            on = self.drain_archive_url is not None or not self.deployed
        if not on:
            return None
        url = self.drain_archive_url
        if url is None:
            if self.deployed:
                raise SettingsError(
                    "DRAIN_ARCHIVE=true on a deployed drain (DATABASE_URL set) needs "
                    "DRAIN_ARCHIVE_URL (s3://bucket/prefix): a dyno's disk is not kept"
                )
            import platformdirs

            url = str(Path(platformdirs.user_data_dir("drain")) / "archive")
        return ArchiveConfig(
            url=url,
            file_max_bytes=self.drain_archive_file_max_bytes,
            endpoint_url=self.aws_endpoint_url,
            region=self.aws_region or "us-east-1",
        )

    # ----------------------------------------------------------------- construction

    @classmethod
    def defaults(cls, **overrides: Any) -> Settings:
        """The defaults (and ``overrides``, validated), without reading the environment: for
        tests and benchmarks, whose results must not depend on the variables of the shell.

        Raises:
            SettingsError: an override does not validate.
        """
        try:
            return _DefaultsOnly(**overrides)
        except ValidationError as error:
            raise SettingsError(describe_validation_error(error)) from None

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
                DRAIN_USERNAME / DRAIN_PASSWORD (or of the two viewer variables) is set; the
                viewer pair equals the drain's pair; or DATABASE_URL
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
        has_viewer = self.drain_viewer_username is not None
        if has_viewer != (self.drain_viewer_password is not None):
            raise SettingsError(
                "DRAIN_VIEWER_USERNAME and DRAIN_VIEWER_PASSWORD must be set together (only "
                + ("DRAIN_VIEWER_USERNAME" if has_viewer else "DRAIN_VIEWER_PASSWORD")
                + " is set)"
            )
        if (
            self.viewer_credentials_set
            and self.credentials_required
            and self.drain_viewer_username == self.drain_username
            and self.drain_viewer_password == self.drain_password
        ):
            raise SettingsError(
                "DRAIN_VIEWER_USERNAME/DRAIN_VIEWER_PASSWORD are the same as DRAIN_USERNAME/"
                "DRAIN_PASSWORD: a viewer could post to /logs; give the viewers their own pair"
            )
        if self.credentials_required or self.drain_allow_anonymous:
            return
        if self.deployed:
            raise SettingsError(
                "DATABASE_URL is set (a deployed drain) but DRAIN_USERNAME and DRAIN_PASSWORD "
                "are not: set both (HTTP Basic credentials for POST /logs), or "
                "DRAIN_BEARER_TOKEN (OTLP), or set DRAIN_ALLOW_ANONYMOUS=true to accept "
                "anonymous posts"
            )
        if not _is_loopback(self.host):
            raise SettingsError(
                f"DRAIN_HOST={self.host} listens beyond this machine but DRAIN_USERNAME and "
                "DRAIN_PASSWORD are not set: set both (or DRAIN_BEARER_TOKEN), or set "
                "DRAIN_ALLOW_ANONYMOUS=true"
            )


#: an app name in DRAIN_APPS: Heroku's app names (lower-case letters, digits, dashes) and
#: Fir service names (which may add dots and underscores), 1-64 characters
_APP_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def _app_map(value: str) -> dict[str, str]:
    """Parse DRAIN_APPS (``d.<uuid>=name,...``).

    Raises:
        ValueError: a pair is not ``d.<uuid>=name``, or a token appears twice.
    """
    found: dict[str, str] = {}
    for pair in (p.strip() for p in value.split(",")):
        if not pair:
            continue
        token, sep, name = (part.strip() for part in pair.partition("="))
        if not sep or not _DRAIN_TOKEN.fullmatch(token) or not _APP_NAME.fullmatch(name):
            raise ValueError(
                f"{pair!r} is not token=app: expected d.<uuid>=name, e.g. "
                "d.fc6b856b-3332-4546-93de-7d0ee272c3bd=shop (`heroku drains --json -a APP` "
                "lists an app's drain tokens)"
            )
        if token in found:
            raise ValueError(f"drain token {token} is listed twice")
        found[token] = name
    if not found:
        raise ValueError("expected comma-separated token=app pairs (d.<uuid>=shop,...)")
    return found


class _DefaultsOnly(Settings):
    """Settings that read only their keyword arguments (:meth:`Settings.defaults`)."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def unknown_drain_variables(environ: Mapping[str, str]) -> list[str]:
    """``DRAIN_*`` names in ``environ`` that are no setting (a typo falls back to a default
    silently otherwise), each with the closest setting name when there is one."""
    known = {name.upper() for name in Settings.model_fields}
    # read before the settings exist: the worker's URL (drain.web.worker), and the decode
    # path's switches (drain.speedups: at start-up, and at build time)
    internal = {"DRAIN_SERVE_DATABASE_URL", speedups.PURE_PYTHON_ENV, speedups.BUILD_ENV}
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


# ----------------------------------------------------------------- the settings reference

#: the lines around the generated table in docs/settings.md (:func:`splice_reference`)
REFERENCE_BEGIN = "<!-- generated by `python -m drain.settings` from drain/settings.py -->"
REFERENCE_END = "<!-- end of the generated table -->"


def reference_markdown() -> str:
    """The settings reference: a Markdown table with one row per :class:`Settings` field.

    Rows in declaration order; columns: variable (the field name in upper case), unit (the
    field's ``json_schema_extra["unit"]``), default (its ``"default_text"``, else the
    default value: ``unset`` for None, ``true``/``false``, numbers with MiB or days spelled
    out), allowed (the field's bounds, from its ``ge``/``gt``/``le``/``lt`` constraints),
    meaning (its ``description``). Ends with a newline. Pure: no I/O.

    Raises:
        ValueError: a field has no description or no unit (the message names the variable).
    """
    lines = [
        "| variable | unit | default | allowed | meaning |",
        "|---|---|---|---|---|",
    ]
    for name, field in Settings.model_fields.items():
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        unit = extra.get("unit")
        if not field.description or not isinstance(unit, str) or not unit:
            raise ValueError(
                f"{name.upper()}: every setting needs a description and "
                'json_schema_extra={"unit": ...} for the settings reference'
            )
        default_text = extra.get("default_text")
        default = default_text if isinstance(default_text, str) else _default_text(field, unit)
        cells = [f"`{name.upper()}`", unit, default, _allowed_text(field), field.description]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines) + "\n"


def splice_reference(page: str) -> str:
    """``page`` (the text of docs/settings.md) with the lines between :data:`REFERENCE_BEGIN`
    and :data:`REFERENCE_END` replaced by :func:`reference_markdown`. Pure.

    Raises:
        ValueError: either marker is missing, or the end marker comes first.
    """
    begin, end = page.find(REFERENCE_BEGIN), page.find(REFERENCE_END)
    if begin < 0 or end < begin:
        raise ValueError(
            f"the page needs the line {REFERENCE_BEGIN!r} and, after it, {REFERENCE_END!r}"
        )
    head = page[: begin + len(REFERENCE_BEGIN)]
    return head + "\n" + reference_markdown() + page[end:]


def _default_text(field: FieldInfo, unit: str) -> str:
    value = field.default
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = f"`{value}`"
    if isinstance(value, int) and value > 0:
        if unit == "bytes" and value % MiB == 0:
            text += f" ({value // MiB} MiB)"
        elif unit == "bytes" and value % 1024 == 0:
            text += f" ({value // 1024} KiB)"
        elif unit == "seconds" and value % 86400 == 0:
            text += f" ({_plural(value // 86400, 'day')})"
        elif unit == "seconds" and value % 3600 == 0:
            text += f" ({_plural(value // 3600, 'hour')})"
    return text


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _allowed_text(field: FieldInfo) -> str:
    if field.annotation in (bool, bool | None):
        return "`true`, `false`"
    ge = gt = le = lt = None
    for constraint in field.metadata:
        if isinstance(constraint, annotated_types.Ge):
            ge = constraint.ge
        elif isinstance(constraint, annotated_types.Gt):
            gt = constraint.gt
        elif isinstance(constraint, annotated_types.Le):
            le = constraint.le
        elif isinstance(constraint, annotated_types.Lt):
            lt = constraint.lt
    if ge is not None and le is not None:
        return f"{ge} to {le}"
    bounds = (("≥", ge), (">", gt), ("≤", le), ("<", lt))
    return ", ".join(f"{sign} {bound}" for sign, bound in bounds if bound is not None) or "-"


def _main(argv: Sequence[str]) -> int:
    """``python -m drain.settings [PAGE]``: regenerate the table in PAGE (docs/settings.md)."""
    path = Path(argv[0] if argv else "docs/settings.md")
    old = path.read_text(encoding="utf-8")
    new = splice_reference(old)
    if new == old:
        print(f"{path}: up to date")
    else:
        path.write_text(new, encoding="utf-8")
        print(f"{path}: settings reference regenerated")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
