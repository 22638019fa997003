-- raw_events: one row per `@[tag] {json}` event, partitioned by day (UTC) on event_time.
--
-- event_time is the syslog TIMESTAMP (RFC 5424 §6.2.3) converted to UTC; received_at is
-- when the drain received the request. Partitions are named raw_events_pYYYYMMDD and
-- cover [YYYY-MM-DD 00:00 UTC, next day 00:00 UTC); drain_ensure_partition() (0004)
-- creates them. There is deliberately no DEFAULT partition: a row for a day without a
-- partition must fail loudly, not land in a catch-all that later blocks creating that day.
CREATE TABLE raw_events (
    event_time  timestamptz NOT NULL,
    received_at timestamptz NOT NULL,
    tag         text        NOT NULL,
    payload     jsonb       NOT NULL,
    facility    smallint,
    severity    smallint,
    hostname    text,
    app_name    text,
    proc_id     text,
    drain_token text,
    frame_id    text
) PARTITION BY RANGE (event_time);

-- A partitioned index: every partition gets its own copy automatically.
CREATE INDEX raw_events_tag_event_time_idx ON raw_events (tag, event_time);
