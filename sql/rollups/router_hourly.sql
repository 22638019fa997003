-- drain rollup
-- schedule: 10 * * * *
-- target: router_hourly
-- bucket: 1h
-- lateness: 2h
-- tags: *
-- source: router_requests
--
-- Hourly traffic per app and route, from Heroku's router lines (router_requests): requests,
-- answers by status class, the service time's median and tail (milliseconds the dyno took,
-- percentile_cont over the hour's rows), bytes sent and the H-code errors. A route is the
-- path without its query string, numbers and UUIDs folded to :id (drain_normalize_path,
-- migration 0204): /users/42?tab=1 and /users/7 are both /users/:id. Traffic that reached
-- no dyno (H10, H14...) counts in requests and h_errors, with no service time.

-- @setup
CREATE TABLE IF NOT EXISTS router_hourly (
    bucket          timestamptz      NOT NULL,
    app             text             NOT NULL,
    path            text             NOT NULL,
    requests        bigint           NOT NULL,
    status_1xx      bigint           NOT NULL,
    status_2xx      bigint           NOT NULL,
    status_3xx      bigint           NOT NULL,
    status_4xx      bigint           NOT NULL,
    status_5xx      bigint           NOT NULL,
    service_p50_ms  double precision,
    service_p95_ms  double precision,
    service_p99_ms  double precision,
    bytes           bigint           NOT NULL,
    h_errors        bigint           NOT NULL,
    PRIMARY KEY (bucket, app, path)
);

-- @query
SELECT date_trunc('hour', event_time)                                  AS bucket,
       app,
       drain_normalize_path(path)                                      AS path,
       count(*)                                                        AS requests,
       count(*) FILTER (WHERE status BETWEEN 100 AND 199)              AS status_1xx,
       count(*) FILTER (WHERE status BETWEEN 200 AND 299)              AS status_2xx,
       count(*) FILTER (WHERE status BETWEEN 300 AND 399)              AS status_3xx,
       count(*) FILTER (WHERE status BETWEEN 400 AND 499)              AS status_4xx,
       count(*) FILTER (WHERE status BETWEEN 500 AND 599)              AS status_5xx,
       percentile_cont(0.50) WITHIN GROUP (ORDER BY service_ms)        AS service_p50_ms,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY service_ms)        AS service_p95_ms,
       percentile_cont(0.99) WITHIN GROUP (ORDER BY service_ms)        AS service_p99_ms,
       coalesce(sum(bytes), 0)                                         AS bytes,
       count(*) FILTER (WHERE code LIKE 'H%')                          AS h_errors
  FROM router_requests
 WHERE event_time >= :window_start
   AND event_time <  :window_end
 GROUP BY 1, 2, 3
