-- The record of every rollup run (drain.rollup_runner): one row per run, written when the
-- run starts and completed when it ends. /health reads the newest rows for each rollup.
CREATE TABLE IF NOT EXISTS rollup_runs (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    rollup        text        NOT NULL,
    kind          text        NOT NULL CHECK (kind IN ('scheduled', 'manual', 'backfill')),
    scheduled_for timestamptz NOT NULL,
    window_start  timestamptz NOT NULL,
    window_end    timestamptz NOT NULL,
    started_at    timestamptz NOT NULL,
    finished_at   timestamptz,
    rows_written  bigint,
    late_events   bigint,
    error         text
);
CREATE INDEX IF NOT EXISTS rollup_runs_rollup_scheduled_idx
    ON rollup_runs (rollup, scheduled_for DESC);
