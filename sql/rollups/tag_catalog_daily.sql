-- drain rollup
-- schedule: 20 * * * *
-- target: tag_catalog_daily
-- bucket: 1d
-- lateness: 2h
-- tags: *
--
-- The payload keys of each tag, per app and UTC day, with their JSON types (jsonb_typeof):
-- the dashboard's Tags page and its schema drift warning (a key seen with two types). The
-- keys come from a bounded sample, so the cost does not grow with the events of a day: the
-- tags of a day are found by walking the (tag, event_time) index, one probe per tag, and
-- each tag's first 100 and last 100 events of the day are read from the same index. At
-- most 200 keys of each sampled payload are counted; `sampled` is how many sampled events
-- had the key with that type, `example` the latest such payload of at most 4 KiB.

-- @setup
CREATE TABLE IF NOT EXISTS tag_catalog_daily (
    bucket     timestamptz NOT NULL,
    app        text        NOT NULL,
    tag        text        NOT NULL,
    key        text        NOT NULL,
    json_type  text        NOT NULL,
    sampled    bigint      NOT NULL,
    example    jsonb,
    PRIMARY KEY (bucket, app, tag, key, json_type)
);

-- @query
WITH RECURSIVE days AS (
    SELECT d AS day_start, d + interval '1 day' AS day_end
      FROM generate_series(:window_start::timestamptz,
                           :window_end::timestamptz - interval '1 day',
                           interval '1 day') AS d
), tags AS (
    SELECT d.day_start, d.day_end,
           (SELECT r.tag FROM raw_events r
             WHERE r.event_time >= d.day_start AND r.event_time < d.day_end
             ORDER BY r.tag LIMIT 1) AS tag
      FROM days d
    UNION ALL
    SELECT t.day_start, t.day_end,
           (SELECT r.tag FROM raw_events r
             WHERE r.tag > t.tag AND r.event_time >= t.day_start AND r.event_time < t.day_end
             ORDER BY r.tag LIMIT 1)
      FROM tags t
     WHERE t.tag IS NOT NULL
), sample AS (
    SELECT s.event_time, s.app, s.tag, s.payload
      FROM tags t
     CROSS JOIN LATERAL (
           (SELECT r.event_time, r.app, r.tag, r.payload FROM raw_events r
             WHERE r.tag = t.tag AND r.event_time >= t.day_start AND r.event_time < t.day_end
             ORDER BY r.event_time LIMIT 100)
           UNION
           (SELECT r.event_time, r.app, r.tag, r.payload FROM raw_events r
             WHERE r.tag = t.tag AND r.event_time >= t.day_start AND r.event_time < t.day_end
             ORDER BY r.event_time DESC LIMIT 100)) AS s
     WHERE t.tag IS NOT NULL
)
SELECT date_trunc('day', s.event_time)              AS bucket,
       s.app,
       s.tag,
       k.key,
       jsonb_typeof(k.value)                        AS json_type,
       count(*)                                     AS sampled,
       (array_agg(s.payload ORDER BY s.event_time DESC)
            FILTER (WHERE octet_length(s.payload::text) <= 4096))[1] AS example
  FROM sample s
 CROSS JOIN LATERAL (SELECT e.key, e.value FROM jsonb_each(s.payload) AS e LIMIT 200) AS k
 GROUP BY 1, 2, 3, 4, 5
