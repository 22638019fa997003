-- router_requests: one row per Heroku router line (APP-NAME heroku, PROCID router),
-- partitioned by day (UTC) on event_time like raw_events (partitions router_requests_pYYYYMMDD,
-- made by drain_ensure_partition of 0005; no DEFAULT partition). drain.decode.router reads
-- the line (Heroku Dev Center, "HTTP Routing"); docs/lines.md describes every column.
--
-- The client's address (the router's fwd, X-Forwarded-For) is personal data: client_hash
-- holds its keyed BLAKE2b hash (16 bytes; the key: DRAIN_CLIENT_HASH_KEY, else the one in
-- drain_secrets, 0203) for distinct-client counts; fwd holds the address only when
-- DRAIN_ROUTER_FWD=raw. extra holds the keys drain does not know (Router 2.0 adds some).
CREATE TABLE router_requests (
    event_time   timestamptz NOT NULL,
    received_at  timestamptz NOT NULL,
    app          text        NOT NULL DEFAULT '',
    at           text,
    method       text,
    path         text,
    host         text,
    status       smallint,
    connect_ms   integer,
    service_ms   integer,
    bytes        bigint,
    request_id   text,
    dyno         text,
    protocol     text,
    code         text,
    description  text,
    client_hash  bytea,
    fwd          text,
    extra        jsonb,
    drain_token  text,
    frame_id     text
) PARTITION BY RANGE (event_time);

-- Rows arrive in time order: a BRIN index finds a rollup's hours in a day's partition for a
-- few pages of index, and costs the COPY almost nothing.
CREATE INDEX router_requests_event_time_brin ON router_requests USING brin (event_time);
