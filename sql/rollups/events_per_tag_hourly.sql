-- drain rollup
-- schedule: 5 * * * *
-- target: events_per_tag_hourly
-- bucket: 1h
-- lateness: 2h
-- tags: *
--
-- Hourly event counts per tag and dyno type (web, worker, ...): the first chart a Heroku
-- user wants, to see which events flow and from where, and to spot a tag that went quiet.

-- @setup
CREATE TABLE IF NOT EXISTS events_per_tag_hourly (
    bucket     timestamptz NOT NULL,
    tag        text        NOT NULL,
    dyno_type  text        NOT NULL,
    events     bigint      NOT NULL,
    PRIMARY KEY (bucket, tag, dyno_type)
);

-- @query
SELECT date_trunc('hour', event_time)     AS bucket,
       tag,
       split_part(proc_id, '.', 1)        AS dyno_type,
       count(*)                           AS events
  FROM raw_events
 WHERE event_time >= :window_start
   AND event_time <  :window_end
 GROUP BY 1, 2, 3
