-- drain rollup
-- schedule: 15 * * * *
-- target: dyno_metrics_hourly
-- bucket: 1h
-- lateness: 2h
-- tags: *
-- source: platform_metrics, platform_events
--
-- Hourly memory and load per app and dyno type (web, worker, run...), from Heroku's
-- runtime metrics (platform_metrics rows of log-runtime-metrics, bytes and load averages
-- as drain.decode.metrics converted them), with the hour's R14 errors (Memory quota
-- exceeded) from platform_events: to see which process type outgrows its dyno. Add-on
-- metrics (rows with an addon) are not in it.

-- @setup
CREATE TABLE IF NOT EXISTS dyno_metrics_hourly (
    bucket                timestamptz      NOT NULL,
    app                   text             NOT NULL,
    dyno_type             text             NOT NULL,
    rss_samples           bigint           NOT NULL,
    memory_rss_mean_bytes double precision,
    memory_rss_max_bytes  double precision,
    memory_quota_bytes    double precision,
    load_avg_1m_mean      double precision,
    load_avg_1m_max       double precision,
    r14_errors            bigint           NOT NULL,
    PRIMARY KEY (bucket, app, dyno_type)
);

-- @query
WITH metrics AS (
    SELECT date_trunc('hour', event_time)                           AS bucket,
           app,
           split_part(source, '.', 1)                               AS dyno_type,
           count(*) FILTER (WHERE name = 'memory_rss')              AS rss_samples,
           avg(value) FILTER (WHERE name = 'memory_rss')            AS memory_rss_mean_bytes,
           max(value) FILTER (WHERE name = 'memory_rss')            AS memory_rss_max_bytes,
           max(value) FILTER (WHERE name = 'memory_quota')          AS memory_quota_bytes,
           avg(value) FILTER (WHERE name = 'load_avg_1m')           AS load_avg_1m_mean,
           max(value) FILTER (WHERE name = 'load_avg_1m')           AS load_avg_1m_max
      FROM platform_metrics
     WHERE event_time >= :window_start
       AND event_time <  :window_end
       AND addon IS NULL
       AND source IS NOT NULL
     GROUP BY 1, 2, 3
), r14 AS (
    SELECT date_trunc('hour', event_time)   AS bucket,
           app,
           split_part(dyno, '.', 1)         AS dyno_type,
           count(*)                         AS r14_errors
      FROM platform_events
     WHERE event_time >= :window_start
       AND event_time <  :window_end
       AND code = 'R14'
     GROUP BY 1, 2, 3
)
SELECT coalesce(m.bucket, e.bucket)         AS bucket,
       coalesce(m.app, e.app)               AS app,
       coalesce(m.dyno_type, e.dyno_type)   AS dyno_type,
       coalesce(m.rss_samples, 0)           AS rss_samples,
       m.memory_rss_mean_bytes,
       m.memory_rss_max_bytes,
       m.memory_quota_bytes,
       m.load_avg_1m_mean,
       m.load_avg_1m_max,
       coalesce(e.r14_errors, 0)            AS r14_errors
  FROM metrics m
  FULL JOIN r14 e ON e.bucket = m.bucket AND e.app = m.app AND e.dyno_type = m.dyno_type
