-- drain rollup
-- schedule: 5 * * * *
-- target: events_per_tag_hourly
-- bucket: 1h
-- lateness: 2h
-- tags: *
--
-- Hourly event counts per app, tag and dyno type (web, worker, ...): the first chart a
-- Heroku user wants, to see which events flow and from where, and to spot a tag that went
-- quiet.

-- @setup
CREATE TABLE IF NOT EXISTS events_per_tag_hourly (
    bucket     timestamptz NOT NULL,
    app        text        NOT NULL,
    tag        text        NOT NULL,
    dyno_type  text        NOT NULL,
    events     bigint      NOT NULL,
    PRIMARY KEY (bucket, app, tag, dyno_type)
);
-- a table made before rollups grouped by app: add the column, widen the key
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM information_schema.columns
                    WHERE table_schema = current_schema()
                      AND table_name = 'events_per_tag_hourly' AND column_name = 'app') THEN
        ALTER TABLE events_per_tag_hourly ADD COLUMN app text NOT NULL DEFAULT '';
        ALTER TABLE events_per_tag_hourly DROP CONSTRAINT events_per_tag_hourly_pkey,
            ADD PRIMARY KEY (bucket, app, tag, dyno_type);
    END IF;
END $$;

-- @query
SELECT date_trunc('hour', event_time)     AS bucket,
       app,
       tag,
       split_part(proc_id, '.', 1)        AS dyno_type,
       count(*)                           AS events
  FROM raw_events
 WHERE event_time >= :window_start
   AND event_time <  :window_end
 GROUP BY 1, 2, 3, 4
