-- platform_events: Heroku's platform errors and state changes, one row per line: R10/R14/R15
-- and other error codes, the router's H-code lines, "State changed from up to crashed",
-- "Process exited with status 137", releases and deploys from api, Logplex's and
-- log-shuttle's L10 ... L15 (drain.decode.platform; Heroku Dev Center, "Heroku Error Codes").
-- Partitioned by day (UTC) on event_time like raw_events (no DEFAULT partition). kind names
-- what happened (error, state, exit, start, stop, restart, memory, release, deploy, scale,
-- config, build, other); details holds what was read from text, as JSON.
CREATE TABLE platform_events (
    event_time   timestamptz NOT NULL,
    received_at  timestamptz NOT NULL,
    app          text        NOT NULL DEFAULT '',
    dyno         text        NOT NULL,
    code         text,
    kind         text        NOT NULL,
    text         text        NOT NULL,
    details      jsonb,
    drain_token  text,
    frame_id     text
) PARTITION BY RANGE (event_time);

-- /health's warnings ask for given codes in the last minutes; the rollups ask by time
CREATE INDEX platform_events_code_event_time_idx ON platform_events (code, event_time)
    WHERE code IS NOT NULL;
CREATE INDEX platform_events_event_time_idx ON platform_events (event_time);
