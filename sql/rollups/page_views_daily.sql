-- drain rollup
-- schedule: 20 0 * * *
-- target: page_views_daily
-- bucket: 1d
-- lateness: 2h
-- tags: *
-- source: router_requests
--
-- Daily page views per app and route, and the distinct clients that viewed them, from
-- Heroku's router lines: the seed article's first question ("page views") answered with no
-- change to the app. A page view is a GET answered 2xx whose path names a page, not a file
-- (drain_is_page_path, migration 0204: no extension, or .html): the router does not log
-- the Content-Type. Clients are told apart by the keyed hash of their address
-- (router_requests.client_hash; 0 with DRAIN_ROUTER_FWD=none). Routes as in router_hourly
-- (drain_normalize_path). The day is UTC; the run at 00:20 recomputes the last two days.

-- @setup
CREATE TABLE IF NOT EXISTS page_views_daily (
    bucket   timestamptz NOT NULL,
    app      text        NOT NULL,
    path     text        NOT NULL,
    views    bigint      NOT NULL,
    clients  bigint      NOT NULL,
    PRIMARY KEY (bucket, app, path)
);

-- @query
SELECT date_trunc('day', event_time)           AS bucket,
       app,
       drain_normalize_path(path)              AS path,
       count(*)                                AS views,
       count(DISTINCT client_hash)             AS clients
  FROM router_requests
 WHERE event_time >= :window_start
   AND event_time <  :window_end
   AND method = 'GET'
   AND status BETWEEN 200 AND 299
   AND drain_is_page_path(path)
 GROUP BY 1, 2, 3
