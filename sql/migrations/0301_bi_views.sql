-- Views for BI tools (docs/dashboard.md, "BI tools"): what `drain bi-role` grants besides the
-- rollup tables. Neither shows an event's payload or a quarantined line's bytes.
--
-- rollup_status: one row per rollup that ever ran: until when its runs completed it (the
-- latest end of a successful window), when it last ran, and that run's error (NULL when it
-- succeeded). A BI tool can alert on a rollup that fell behind.
CREATE VIEW rollup_status AS
SELECT rollup,
       max(window_end) FILTER (WHERE error IS NULL)  AS complete_until,
       max(finished_at)                               AS last_run_at,
       (array_agg(error ORDER BY id DESC))[1]         AS last_error
  FROM rollup_runs
 GROUP BY rollup;

-- quarantine_daily: quarantined lines per UTC day, app, reason and tag.
CREATE VIEW quarantine_daily AS
SELECT (date_trunc('day', received_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC') AS day,
       app, reason, tag, count(*) AS lines
  FROM quarantine
 GROUP BY 1, 2, 3, 4;
