-- drain rollup
-- schedule: 0 * * * *
-- target: payment_history
-- bucket: 1h
-- lateness: 2h
-- tags: production.pay
--
-- Hourly revenue per app and item category, from events like
--   @[production.pay] {"uid":123,"item_id":7326,"item_category":"categoryA","price":321321}
-- This is the seed article's Treasure Data job `pay_hourly` ("0 * * * *"), which summed
-- price per item_category over TD_TIME_RANGE(time, TD_SCHEDULED_TIME() - 1h,
-- TD_SCHEDULED_TIME()). Here a bucket is labelled by its start (the seed labelled it by the
-- scheduled time, one hour later), and each app that shares the drain has its own rows.
-- Events without a numeric price count in `events` only.

-- @setup
CREATE TABLE IF NOT EXISTS payment_history (
    bucket   timestamptz NOT NULL,
    app      text        NOT NULL,
    category text        NOT NULL,
    revenue  numeric     NOT NULL,
    events   bigint      NOT NULL,
    PRIMARY KEY (bucket, app, category)
);
-- a table made before rollups grouped by app: add the column, widen the key
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM information_schema.columns
                    WHERE table_schema = current_schema() AND table_name = 'payment_history'
                      AND column_name = 'app') THEN
        ALTER TABLE payment_history ADD COLUMN app text NOT NULL DEFAULT '';
        ALTER TABLE payment_history DROP CONSTRAINT payment_history_pkey,
            ADD PRIMARY KEY (bucket, app, category);
    END IF;
END $$;

-- @query
SELECT date_trunc('hour', event_time)                        AS bucket,
       app,
       coalesce(payload->>'item_category', '(none)')         AS category,
       coalesce(sum(CASE WHEN jsonb_typeof(payload->'price') = 'number'
                         THEN (payload->>'price')::numeric END), 0) AS revenue,
       count(*)                                              AS events
  FROM raw_events
 WHERE tag = 'production.pay'
   AND event_time >= :window_start
   AND event_time <  :window_end
 GROUP BY 1, 2, 3
