"""Deterministic generator of realistic Logplex request bodies, and the rows they become.

A Logplex HTTPS drain POST carries ``application/logplex-1``: syslog lines framed by
octet counting (RFC 6587 §3.4.1), each ``LEN SP <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID
MSGID MSG`` with the LF counted in LEN (Heroku's dialect has no STRUCTURED-DATA field; see
../shared/samples/README.md). Logplex sends batches of about 100 KiB.

The bodies built here look like a Heroku app that follows the Treasure Data ``@[tag]``
convention of the seed article (register, login, pay, access), e.g.::

    143 <190>1 2026-12-01T01:25:11.123456+00:00 host app web.2 - @[production.pay] \
{"uid":48213,"item_id":7326,"item_category":"categoryA","price":321321}

mixed with about 10 % Heroku router lines (``<158>1 ... host heroku router - at=info
method=GET path=... status=200 bytes=...``), which the drain stores in ``router_requests``,
and a few untagged app lines, which it counts but does not store.

Everything is a pure function of ``seed`` and ``now``: the same arguments give the same
bytes. Timestamps lie in the minute before ``now``, well inside the drain's 7-day
acceptance window. :func:`ceiling_rows` gives the exact ``raw_events`` rows the service
writes for these bodies, in :data:`RAW_EVENTS_COLUMNS` order; :func:`ceiling_transactions`
gives, for the ceiling figure, every row of every table the service writes for them, cut
into transactions. :func:`make_otlp_body` gives the same lines as an OTLP/HTTP log export
(what a Fir app's telemetry drain sends), for the OTLP figure beside the Logplex one.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from drain.decode.framing import split_frames
from drain.decode.syslog import split_line
from drain.records import EventRow

#: the columns of ``raw_events`` the writer fills, in the order of :func:`ceiling_rows`.
RAW_EVENTS_COLUMNS: tuple[str, ...] = (
    "event_time",
    "received_at",
    "tag",
    "payload",
    "facility",
    "severity",
    "hostname",
    "app_name",
    "proc_id",
    "drain_token",
    "frame_id",
    "app",
)

#: A drain token as Logplex sends it in ``Logplex-Drain-Token``.
DRAIN_TOKEN = "d.fc6b856b-3332-4546-93de-7d0ee272c3bd"

#: Logplex's target batch size in bytes.
BODY_BYTES = 100 * 1024

_APP_PRI = 190  # facility 23 (local7), severity 6 (info): Heroku app output
_ROUTER_PRI = 158  # facility 19 (local3), severity 6: Heroku router
_CATEGORIES = ("categoryA", "categoryB", "categoryC", "categoryD", "categoryE")
_PATHS = ("/", "/items", "/items/{n}", "/cart", "/checkout", "/api/v1/items/{n}", "/login")
_METHODS = ("GET", "GET", "GET", "GET", "POST")


@dataclass(frozen=True, slots=True)
class Body:
    """One generated request body and what the drain should make of it.

    Fields:
        body: the ``application/logplex-1`` bytes, at most ``target_bytes`` long.
        frames: number of syslog frames (what Logplex puts in ``Logplex-Msg-Count``).
        events: the ``@[tag]`` events it holds, as the decoder returns them, in order.
    """

    body: bytes
    frames: int
    events: tuple[EventRow, ...]
    #: frames by kind (event, router, runtime_metrics, addon_metrics, platform, plain), for
    #: the bodies of :func:`make_mix_body`
    kinds: tuple[tuple[str, int], ...] = ()


def _timestamp(t: datetime) -> str:
    """RFC 3339 with microseconds and ``+00:00``, as Logplex writes TIMESTAMP."""
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f") + "+00:00"


def _frame(msg: bytes) -> bytes:
    """Octet-count one syslog message with its LF (RFC 6587 §3.4.1; LEN includes the LF)."""
    line = msg + b"\n"
    return str(len(line)).encode("ascii") + b" " + line


def _event_payload(rng: random.Random) -> tuple[str, str]:
    """Return (tag, JSON object text) for one event, shaped like the seed article's."""
    uid = rng.randrange(1, 500_000)
    r = rng.random()
    if r < 0.45:
        item = rng.randrange(1000, 99_999)
        return "production.access", (
            f'{{"uid":{uid},"url":"https://shop.example.com/items/{item}",'
            f'"referer":"https://www.example.com/","status":200}}'
        )
    if r < 0.70:
        return "production.pay", (
            f'{{"uid":{uid},"item_id":{rng.randrange(1000, 99_999)},'
            f'"item_category":"{rng.choice(_CATEGORIES)}","price":{rng.randrange(100, 500_000)}}}'
        )
    if r < 0.90:
        return "production.login", (
            f'{{"uid":{uid},"method":"{rng.choice(("password", "oauth", "token"))}",'
            f'"ok":{"true" if rng.random() < 0.97 else "false"}}}'
        )
    return "production.register", (
        f'{{"uid":{uid},"plan":"{rng.choice(("free", "basic", "pro"))}",'
        f'"source":"{rng.choice(("ads", "organic", "referral"))}"}}'
    )


def _router_line(rng: random.Random, ts: str, dyno: str) -> bytes:
    """One Heroku router line (not an event)."""
    path = rng.choice(_PATHS).format(n=rng.randrange(1000, 99_999))
    rid = "%08x-%04x-4%03x-a%03x-%012x" % (  # noqa: UP031 - fixed-width hex
        rng.getrandbits(32),
        rng.getrandbits(16),
        rng.getrandbits(12),
        rng.getrandbits(12),
        rng.getrandbits(48),
    )
    fwd = ".".join(str(rng.randrange(1, 255)) for _ in range(4))
    return (
        f"<{_ROUTER_PRI}>1 {ts} host heroku router - at=info method={rng.choice(_METHODS)} "
        f'path="{path}" host=shop.example.com request_id={rid} fwd="{fwd}" dyno={dyno} '
        f"connect={rng.randrange(0, 3)}ms service={rng.randrange(1, 250)}ms status=200 "
        f"bytes={rng.randrange(200, 40_000)} protocol=https"
    ).encode("ascii")


def make_body(
    rng: random.Random,
    now: datetime,
    *,
    target_bytes: int = BODY_BYTES,
    router_fraction: float = 0.10,
    plain_fraction: float = 0.03,
) -> Body:
    """Build one body of at most ``target_bytes`` bytes of whole frames.

    Args:
        rng: the source of randomness (advanced by the call).
        now: UTC, tz-aware; TIMESTAMPs fall in [now - 60 s, now), increasing.
        target_bytes: the body stops at the last frame that fits in this many bytes.
        router_fraction: share of router lines (counted, not stored by the drain).
        plain_fraction: share of untagged app lines (counted, not stored).
    """
    if now.tzinfo is None:
        raise ValueError("now must be tz-aware (UTC)")
    now = now.astimezone(UTC)
    parts: list[bytes] = []
    events: list[EventRow] = []
    size = 0
    t = now - timedelta(seconds=60)
    for _ in range(target_bytes):  # bounded: every frame is > 1 byte
        t += timedelta(microseconds=rng.randrange(1, 60))
        ts = _timestamp(t)
        dyno = f"web.{rng.randrange(1, 5)}"
        r = rng.random()
        event: EventRow | None = None
        if r < router_fraction:
            msg = _router_line(rng, ts, dyno)
        elif r < router_fraction + plain_fraction:
            msg = (
                f"<{_APP_PRI}>1 {ts} host app {dyno} - Completed 200 OK in "
                f"{rng.randrange(1, 300)}ms (Views: {rng.randrange(1, 90)}.1ms)"
            ).encode("ascii")
        else:
            tag, payload = _event_payload(rng)
            msg = f"<{_APP_PRI}>1 {ts} host app {dyno} - @[{tag}] {payload}".encode()
            event = EventRow(
                event_time=t,
                tag=tag,
                payload=payload,
                facility=_APP_PRI // 8,
                severity=_APP_PRI % 8,
                hostname="host",
                app_name="app",
                proc_id=dyno,
                app="",
            )
        frame = _frame(msg)
        if size + len(frame) > target_bytes:
            break
        parts.append(frame)
        size += len(frame)
        if event is not None:
            events.append(event)
    return Body(body=b"".join(parts), frames=len(parts), events=tuple(events))


#: the realistic mix of a Heroku app's drain (the issue "Heroku's own lines become data"):
#: share of frames by kind
MIX = (("router", 0.60), ("event", 0.20), ("metrics", 0.15), ("other", 0.05))
_STATUSES = (200, 200, 200, 200, 200, 200, 201, 204, 301, 302, 304, 404, 500)
_DYNO_ID = "heroku.2808254.d97d0ea7-cf3d-411b-b453-d2943a50b456"
_PLATFORM = (
    "State changed from starting to up",
    "Error R14 (Memory quota exceeded)",
    "Process exited with status 0",
    "Starting process with command `bundle exec puma`",
    "Stopping all processes with SIGTERM",
)


#: clients of one body of the mix: a page view is several requests from one client (the
#: page, its assets, its API calls), so a body of ~260 router lines holds far fewer
#: addresses than lines; 150 is a busy minute of a small shop
_CLIENTS = 150


def _mix_router_line(rng: random.Random, ts: str, dyno: str) -> bytes:
    """A router line of the mix: status codes of a real app, 1 in 100 an H12, the client
    one of :data:`_CLIENTS` addresses."""
    if rng.random() < 0.01:
        return (
            f'<158>1 {ts} host heroku router - at=error code=H12 desc="Request timeout" '
            f'method=GET path="/reports/{rng.randrange(1, 999)}" host=shop.example.com '
            f'request_id={rng.getrandbits(64):016x} fwd="198.51.100.{rng.randrange(1, 255)}" '
            f"dyno={dyno} connect=1ms service=30000ms status=503 bytes=0 protocol=https"
        ).encode("ascii")
    line = _router_line(rng, ts, dyno)
    fwd = line.index(b'fwd="') + 5
    client = b"203.0.113.%d" % rng.randrange(_CLIENTS)
    line = line[:fwd] + client + line[line.index(b'"', fwd) :]
    return line.replace(b"status=200", b"status=%d" % rng.choice(_STATUSES))


def _metrics_line(rng: random.Random, ts: str, dyno: str) -> tuple[str, bytes]:
    """(kind, line): a runtime memory or load line (9 in 10), else a Postgres metrics line."""
    if rng.random() < 0.1:
        return "addon_metrics", (
            f"<134>1 {ts} host app heroku-postgres - source=DATABASE addon=postgresql-x-1 "
            f"sample#current_transaction={rng.randrange(10**6, 10**8)} "
            f"sample#db_size={rng.randrange(10**8, 10**10)}bytes sample#tables=42 "
            f"sample#active-connections={rng.randrange(1, 40)} sample#waiting-connections=0 "
            f"sample#index-cache-hit-rate=0.9{rng.randrange(100, 999)} "
            f"sample#table-cache-hit-rate=0.9{rng.randrange(100, 999)} sample#load-avg-1m=0.1 "
            f"sample#load-avg-5m=0.1 sample#load-avg-15m=0.1 sample#read-iops=1.5 "
            f"sample#write-iops=2.5 sample#memory-total=8036340kB sample#memory-free=80640kB "
            f"sample#memory-cached=7319340kB sample#memory-postgres=23380kB"
        ).encode("ascii")
    if rng.random() < 0.5:
        rss = rng.uniform(100, 500)
        return "runtime_metrics", (
            f"<134>1 {ts} host heroku {dyno} - source={dyno} dyno={_DYNO_ID} "
            f"sample#memory_total={rss:.2f}MB sample#memory_rss={rss:.2f}MB "
            f"sample#memory_cache=0.38MB sample#memory_swap=0.00MB "
            f"sample#memory_pgpgin={rng.randrange(10**4, 10**6)}pages "
            f"sample#memory_pgpgout={rng.randrange(10**4, 10**6)}pages "
            f"sample#memory_quota=512.00MB"
        ).encode("ascii")
    return "runtime_metrics", (
        f"<134>1 {ts} host heroku {dyno} - source={dyno} dyno={_DYNO_ID} "
        f"sample#load_avg_1m={rng.uniform(0, 4):.2f} sample#load_avg_5m={rng.uniform(0, 4):.2f} "
        f"sample#load_avg_15m={rng.uniform(0, 4):.2f}"
    ).encode("ascii")


def make_mix_body(rng: random.Random, now: datetime, *, target_bytes: int = BODY_BYTES) -> Body:
    """One body of the realistic mix (:data:`MIX`): router lines, events, runtime and add-on
    metrics, and the rest split between platform lines and plain app output. Times as
    :func:`make_body`'s; ``Body.kinds`` counts the frames by kind."""
    if now.tzinfo is None:
        raise ValueError("now must be tz-aware (UTC)")
    now = now.astimezone(UTC)
    parts: list[bytes] = []
    events: list[EventRow] = []
    kinds: dict[str, int] = {}
    size = 0
    t = now - timedelta(seconds=60)
    for _ in range(target_bytes):  # bounded: every frame is > 1 byte
        t += timedelta(microseconds=rng.randrange(1, 60))
        ts = _timestamp(t)
        dyno = f"web.{rng.randrange(1, 5)}"
        r = rng.random()
        event: EventRow | None = None
        if r < 0.60:
            kind, msg = "router", _mix_router_line(rng, ts, dyno)
        elif r < 0.80:
            tag, payload = _event_payload(rng)
            kind = "event"
            msg = f"<{_APP_PRI}>1 {ts} host app {dyno} - @[{tag}] {payload}".encode()
            event = EventRow(t, tag, payload, _APP_PRI // 8, _APP_PRI % 8, "host", "app", dyno, "")
        elif r < 0.95:
            kind, msg = _metrics_line(rng, ts, dyno)
        elif r < 0.975:
            kind = "platform"
            msg = f"<45>1 {ts} host heroku {dyno} - {rng.choice(_PLATFORM)}".encode("ascii")
        else:
            kind = "plain"
            msg = f"<{_APP_PRI}>1 {ts} host app {dyno} - Completed 200 OK in 12ms".encode("ascii")
        frame = _frame(msg)
        if size + len(frame) > target_bytes:
            break
        parts.append(frame)
        size += len(frame)
        kinds[kind] = kinds.get(kind, 0) + 1
        if event is not None:
            events.append(event)
    return Body(
        body=b"".join(parts),
        frames=len(parts),
        events=tuple(events),
        kinds=tuple(sorted(kinds.items())),
    )


def make_kind_body(kind: str, rng: random.Random, now: datetime, *, frames: int = 600) -> Body:
    """A body of ``frames`` frames of one kind of line, as :func:`make_mix_body` makes
    them: ``event``, ``router``, ``runtime_metrics``, ``addon_metrics``, ``platform`` or
    ``plain`` (for the decode cost per line of each kind, bench/lines.py).

    Raises:
        ValueError: an unknown ``kind``.
    """
    parts: list[bytes] = []
    events: list[EventRow] = []
    t = now.astimezone(UTC) - timedelta(seconds=60)
    for _ in range(frames):
        t += timedelta(microseconds=rng.randrange(1, 60))
        ts, dyno = _timestamp(t), f"web.{rng.randrange(1, 5)}"
        if kind == "event":
            tag, payload = _event_payload(rng)
            msg = f"<{_APP_PRI}>1 {ts} host app {dyno} - @[{tag}] {payload}".encode()
            events.append(
                EventRow(t, tag, payload, _APP_PRI // 8, _APP_PRI % 8, "host", "app", dyno, "")
            )
        elif kind == "router":
            msg = _mix_router_line(rng, ts, dyno)
        elif kind in ("runtime_metrics", "addon_metrics"):
            for _attempt in range(1000):  # bounded: 1 in 10 is an add-on line
                found, msg = _metrics_line(rng, ts, dyno)
                if found == kind:
                    break
        elif kind == "platform":
            msg = f"<45>1 {ts} host heroku {dyno} - {rng.choice(_PLATFORM)}".encode("ascii")
        elif kind == "plain":
            msg = f"<{_APP_PRI}>1 {ts} host app {dyno} - Completed 200 OK in 12ms".encode("ascii")
        else:
            raise ValueError(f"unknown kind of line {kind!r}")
        parts.append(_frame(msg))
    return Body(b"".join(parts), frames, tuple(events), ((kind, frames),))


def make_bodies(
    n: int, *, now: datetime, seed: int = 1, target_bytes: int = BODY_BYTES
) -> list[Body]:
    """Return ``n`` distinct bodies, deterministic in (``n``, ``now``, ``seed``)."""
    rng = random.Random(seed)
    return [make_body(rng, now, target_bytes=target_bytes) for _ in range(n)]


def make_event_body(n_events: int, *, now: datetime, tag: str = "bench.latency") -> Body:
    """One small body of ``n_events`` event frames ``@[tag] {"n":i}`` and nothing else.

    For the latency figure at low load (bench/latency.py): one short POST, as an app that
    logs little gets from Logplex. TIMESTAMPs are ``now`` minus ``n_events - i``
    microseconds (UTC, tz-aware ``now`` required).
    """
    if now.tzinfo is None:
        raise ValueError("now must be tz-aware (UTC)")
    now = now.astimezone(UTC)
    parts: list[bytes] = []
    events: list[EventRow] = []
    for i in range(n_events):
        t = now - timedelta(microseconds=n_events - i)
        payload = f'{{"n":{i}}}'
        msg = f"<{_APP_PRI}>1 {_timestamp(t)} host app web.1 - @[{tag}] {payload}"
        parts.append(_frame(msg.encode("ascii")))
        events.append(
            EventRow(
                event_time=t,
                tag=tag,
                payload=payload,
                facility=_APP_PRI // 8,
                severity=_APP_PRI % 8,
                hostname="host",
                app_name="app",
                proc_id="web.1",
                app="",
            )
        )
    return Body(body=b"".join(parts), frames=n_events, events=tuple(events))


#: the ``service.name`` of the OTLP bodies (the ``app`` of their rows)
OTLP_SERVICE = "bench-shop"
#: the OTLP ``SeverityNumber`` of each syslog severity (the inverse of
#: drain.inputs.otlp.syslog_severity: 6 informational is INFO, 9)
_SEVERITY_NUMBERS = {0: 21, 1: 19, 2: 18, 3: 17, 4: 13, 5: 10, 6: 9, 7: 5}


@dataclass(frozen=True, slots=True)
class OtlpBody:
    """One Logplex body's lines as an ``ExportLogsServiceRequest`` (binary protobuf).

    Fields:
        body: the serialized request.
        records: log records (one per frame of the Logplex body).
        events: the ``@[tag]`` events among them.
        id_at: byte offset of a placeholder (the value of the resource attribute
            ``bench.request``, ``id_len`` bytes of ``~``) that the load generator replaces
            with each request's id: OTLP has no frame id, the drain's ledger key is the
            body's digest, so each request must differ to be stored.
    """

    body: bytes
    records: int
    events: int
    id_at: int


def make_otlp_body(body: Body, *, id_len: int = 24) -> OtlpBody:
    """The lines of ``body`` as an OTLP log export, one resource per dyno (PROCID): each
    frame a log record whose ``time_unix_nano`` is its TIMESTAMP, whose severity is its
    PRI's and whose body is its MSG; ``service.name`` is :data:`OTLP_SERVICE` and
    ``service.instance.id`` the dyno. The drain makes the same events of it as of the
    Logplex body (with ``app`` = :data:`OTLP_SERVICE` and the dyno as PROCID)."""
    request = ExportLogsServiceRequest()
    resources: dict[bytes, object] = {}
    spans, _error = split_frames(body.body, limit=None)
    for _offset, start, stop in spans:
        pri, when, _host, _app, proc, _msgid, _sd, msg = split_line(body.body[start:stop])
        scope = resources.get(proc)
        if scope is None:
            resource_logs = request.resource_logs.add()
            for key, value in (
                ("service.name", OTLP_SERVICE),
                ("service.instance.id", proc.decode("ascii")),
                ("bench.request", "~" * id_len),
            ):
                attribute = resource_logs.resource.attributes.add()
                attribute.key, attribute.value.string_value = key, value
            scope = resources[proc] = resource_logs.scope_logs.add()
        record = scope.log_records.add()  # type: ignore[attr-defined]
        delta = when - datetime(1970, 1, 1, tzinfo=UTC)
        record.time_unix_nano = (delta.days * 86400 + delta.seconds) * 10**9 + (
            delta.microseconds * 1000
        )
        record.severity_number = _SEVERITY_NUMBERS[pri & 7]
        record.body.string_value = msg.decode("utf-8")
    data = request.SerializeToString()
    placeholder = b"~" * id_len
    at = data.find(placeholder)
    if at < 0:
        raise RuntimeError("the placeholder is not in the serialized request")
    # only the first resource's placeholder is replaced: one differing byte run suffices
    return OtlpBody(body=data, records=len(spans), events=len(body.events), id_at=at)


#: the client-hash key of the router rows :func:`decoded_rows` makes (any key gives rows
#: of the same size)
CLIENT_HASH_KEY = b"bench: a fixed client-hash key"
#: the length of a ``Logplex-Frame-Id`` the load generator sends (bench.loadgen: 12 hex
#: digits of prefix, 12 of counter)
FRAME_ID_LEN = 24

Row = tuple[object, ...]


@dataclass(frozen=True, slots=True)
class CeilingTransaction:
    """The COPY records of one ceiling transaction, by table (drain.store.tables.TABLES
    order), each record the decoded row followed by the batch columns (``received_at``,
    ``drain_token``, ``frame_id``), as the writer sends it; ``events``: its ``raw_events``
    records."""

    records: dict[str, list[tuple[object, ...]]]
    events: int


def ceiling_transactions(
    bodies: list[Body],
    n_events: int,
    *,
    now: datetime,
    chunk: int = 5000,
    frame_prefix: str = "ceil",
) -> list[CeilingTransaction]:
    """Every data-table row the service stores for ``n_events`` events of these bodies
    (every data table (``raw_events``, and ``router_requests`` for the router lines), cut into
    transactions of whole body uses holding at least ``chunk`` events each (the last may
    hold fewer).

    Each body is decoded once (:func:`decoded_rows`); bodies are used round-robin, each use
    with its own frame id of the load generator's length (:data:`FRAME_ID_LEN`
    characters: ``frame_prefix`` and the use's number), as the load generator sends them;
    ``received_at`` is ``now``. The last use is cut so that exactly ``n_events`` events
    are stored, with the router rows of its whole body. The ledger's ``received_batches``
    rows are not included (one per body: a few bytes per event).

    Raises:
        ValueError: the bodies hold no events, a line is quarantined, or ``now`` is naive.
    """
    from drain.store.tables import TABLES

    decoded = decoded_rows(bodies, now=now)
    if not any(rows["raw_events"] for rows in decoded):
        raise ValueError("no events in the bodies")
    out: list[CeilingTransaction] = []
    records: dict[str, list[tuple[object, ...]]] = {name: [] for name in TABLES}
    events = total = 0
    # bounded: every round of the bodies adds at least one event
    for i in range(n_events * len(decoded)):
        if total >= n_events:
            break
        rows = decoded[i % len(decoded)]
        digits = FRAME_ID_LEN - len(frame_prefix)
        tail = (now, DRAIN_TOKEN, f"{frame_prefix}{i:0{digits}d}")
        for name, table_rows in rows.items():
            if name == "raw_events":
                table_rows = table_rows[: n_events - total]
                events += len(table_rows)
                total += len(table_rows)
            records[name].extend(tuple(row) + tail for row in table_rows)
        if events >= chunk or total >= n_events:
            out.append(CeilingTransaction({k: v for k, v in records.items() if v}, events))
            records = {name: [] for name in TABLES}
            events = 0
    if any(records.values()):
        out.append(CeilingTransaction({k: v for k, v in records.items() if v}, events))
    return out


def decoded_rows(bodies: list[Body], *, now: datetime) -> list[dict[str, list[Row]]]:
    """Each body's rows by table, as the service's decoder makes them for the load
    generator's requests (:func:`drain.inputs.logplex.decode_body`, default limits and line
    rules, :data:`CLIENT_HASH_KEY`, app :data:`DRAIN_TOKEN` as for a token that DRAIN_APPS
    does not name).

    Raises:
        ValueError: a body has a line the decoder quarantines (the generated bodies have
            none), or ``now`` is naive.
    """
    from drain.inputs.logplex import decode_body
    from drain.settings import Settings

    defaults = Settings.defaults()
    limits, rules = defaults.decode_limits(), defaults.line_rules(CLIENT_HASH_KEY)
    out = []
    for b in bodies:
        batch = decode_body(b.body, now=now, limits=limits, rules=rules, app=DRAIN_TOKEN)
        if batch.quarantined:
            raise ValueError(f"the decoder quarantined {len(batch.quarantined)} lines of a body")
        out.append(batch.rows)
    return out


def ceiling_rows(
    bodies: list[Body],
    n_events: int,
    *,
    received_at: datetime,
    drain_token: str = DRAIN_TOKEN,
    frame_prefix: str = "ceil",
) -> list[tuple[object, ...]]:
    """The ``raw_events`` rows the service writes for ``n_events`` events of these bodies.

    Bodies are used round-robin, each use with its own frame id (``{frame_prefix}{i:08d}``),
    as the load generator sends them. Rows are tuples in :data:`RAW_EVENTS_COLUMNS` order.
    """
    rows: list[tuple[object, ...]] = []
    if not bodies or not any(b.events for b in bodies):
        raise ValueError("no events in the bodies")
    for i in range(n_events):  # bounded: at least one row per body use with events
        b = bodies[i % len(bodies)]
        frame_id = f"{frame_prefix}{i:08d}"
        for e in b.events:
            rows.append(
                (
                    e.event_time,
                    received_at,
                    e.tag,
                    e.payload,
                    e.facility,
                    e.severity,
                    e.hostname,
                    e.app_name,
                    e.proc_id,
                    drain_token,
                    frame_id,
                    drain_token,  # the app of a token DRAIN_APPS does not name
                )
            )
        if len(rows) >= n_events:
            break
    return rows[:n_events]


if __name__ == "__main__":  # a look at one body: python -m bench.gen | head
    import sys

    one = make_bodies(1, now=datetime.now(UTC))[0]
    sys.stdout.buffer.write(one.body[:1500])
    print(
        f"\n... {len(one.body)} bytes, {one.frames} frames, {len(one.events)} events",
        file=sys.stderr,
    )
