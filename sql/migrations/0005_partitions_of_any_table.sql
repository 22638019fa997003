-- drain_ensure_partition(parent, day): create <parent>_pYYYYMMDD for [day 00:00 UTC,
-- day+1 00:00 UTC) if it does not exist, for any table partitioned by range on a
-- timestamptz column (raw_events, and the typed tables that later migrations add).
-- Returns true when this call created it. drain.store.partitions.partition_name gives the
-- same name in Python.
--
-- Safe under concurrency, as 0004's one-table version: callers serialize on a
-- transaction-scoped advisory lock (one key per parent table) and re-check, with a fresh
-- view of the catalog, after taking it. CREATE TABLE ... PARTITION OF takes an ACCESS
-- EXCLUSIVE lock on the parent, so call this in its own short transaction, never inside a
-- transaction that writes rows; lock_timeout bounds the wait behind long readers (SQLSTATE
-- 55P03 when it expires; the caller retries later).
CREATE FUNCTION drain_ensure_partition(parent text, day date) RETURNS boolean
LANGUAGE plpgsql
AS $$
DECLARE
    part  text := parent || '_p' || to_char(day, 'YYYYMMDD');
    lo    text := to_char(day, 'YYYY-MM-DD') || ' 00:00:00+00';
    hi    text := to_char(day + 1, 'YYYY-MM-DD') || ' 00:00:00+00';
BEGIN
    IF parent IS NULL OR day IS NULL THEN
        RAISE EXCEPTION 'drain_ensure_partition: parent and day must not be NULL';
    END IF;
    IF to_regclass(format('%I.%I', current_schema(), part)) IS NOT NULL THEN
        RETURN false;
    END IF;
    PERFORM set_config('lock_timeout', '5s', true);
    -- 0x6472_6169 = 'drai': one key per parent table (raw_events keeps 0004's key 1).
    PERFORM pg_advisory_xact_lock(
        1685217641, CASE WHEN parent = 'raw_events' THEN 1 ELSE hashtext(parent) END);
    -- Taking a table lock makes this backend read the catalog changes committed by
    -- whoever held the advisory lock before us. SHARE UPDATE EXCLUSIVE does not block the
    -- writers' INSERT/COPY (ROW EXCLUSIVE) nor readers.
    EXECUTE format('LOCK TABLE %I IN SHARE UPDATE EXCLUSIVE MODE', parent);
    IF to_regclass(format('%I.%I', current_schema(), part)) IS NOT NULL THEN
        RETURN false;
    END IF;
    EXECUTE format(
        'CREATE TABLE IF NOT EXISTS %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
        part, parent, lo, hi);
    RETURN true;
END
$$;

-- The one-table version of 0004 now calls this one.
CREATE OR REPLACE FUNCTION drain_ensure_partition(day date) RETURNS boolean
LANGUAGE sql
AS $$ SELECT drain_ensure_partition('raw_events', day) $$;
