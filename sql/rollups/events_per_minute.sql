-- drain rollup
-- schedule: */10 * * * *
-- target: events_per_minute
-- bucket: 1m
-- lateness: 10m
-- tags: *
--
-- Events per minute, app and tag: the dashboard's overview chart (docs/dashboard.md). Every
-- ten minutes the last eleven minutes are recomputed; the dashboard computes the minutes
-- since the last run from raw_events itself.

-- @setup
CREATE TABLE IF NOT EXISTS events_per_minute (
    bucket  timestamptz NOT NULL,
    app     text        NOT NULL,
    tag     text        NOT NULL,
    events  bigint      NOT NULL,
    PRIMARY KEY (bucket, app, tag)
);

-- @query
SELECT date_trunc('minute', event_time) AS bucket,
       app,
       tag,
       count(*)                         AS events
  FROM raw_events
 WHERE event_time >= :window_start
   AND event_time <  :window_end
 GROUP BY 1, 2, 3
