-- platform_metrics: one row per sample#NAME=VALUE of a Heroku runtime-metrics line (APP-NAME
-- heroku, PROCID the dyno) or add-on metrics line (PROCID heroku-postgres, heroku-redis,
-- heroku-kafka), partitioned by day (UTC) on event_time like raw_events (no DEFAULT
-- partition). drain.decode.metrics reads the line and converts the value to a base unit
-- named in unit (bytes, pages, ratio, load, per_second, seconds, count); an unknown metric
-- is kept; a value that is not a number has value NULL and its text in raw.
CREATE TABLE platform_metrics (
    event_time   timestamptz      NOT NULL,
    received_at  timestamptz      NOT NULL,
    app          text             NOT NULL DEFAULT '',
    process      text             NOT NULL,
    source       text,
    dyno         text,
    addon        text,
    name         text             NOT NULL,
    value        double precision,
    unit         text             NOT NULL,
    raw          text,
    drain_token  text,
    frame_id     text
) PARTITION BY RANGE (event_time);

CREATE INDEX platform_metrics_event_time_brin ON platform_metrics USING brin (event_time);
