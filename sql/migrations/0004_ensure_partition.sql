-- drain_ensure_partition(day): create raw_events_pYYYYMMDD for [day 00:00 UTC, day+1 00:00 UTC)
-- if it does not exist. Returns true when this call created it.
--
-- Safe under concurrency: callers serialize on a transaction-scoped advisory lock and
-- re-check, with a fresh view of the catalog, after taking it. The bounds are written as explicit '+00' literals, so the
-- session TimeZone does not matter. CREATE TABLE ... PARTITION OF takes an ACCESS
-- EXCLUSIVE lock on raw_events, so call this in its own short transaction, never inside
-- a transaction that writes rows; lock_timeout bounds the wait behind long readers
-- (SQLSTATE 55P03 when it expires; the caller retries later).
CREATE FUNCTION drain_ensure_partition(day date) RETURNS boolean
LANGUAGE plpgsql
AS $$
DECLARE
    part  text := 'raw_events_p' || to_char(day, 'YYYYMMDD');
    lo    text := to_char(day, 'YYYY-MM-DD') || ' 00:00:00+00';
    hi    text := to_char(day + 1, 'YYYY-MM-DD') || ' 00:00:00+00';
BEGIN
    IF day IS NULL THEN
        RAISE EXCEPTION 'drain_ensure_partition: day must not be NULL';
    END IF;
    IF to_regclass(format('%I.%I', current_schema(), part)) IS NOT NULL THEN
        RETURN false;
    END IF;
    PERFORM set_config('lock_timeout', '5s', true);
    -- 0x6472_6169 = 'drai': one key for every partition of raw_events.
    PERFORM pg_advisory_xact_lock(1685217641, 1);
    -- Taking a table lock makes this backend read the catalog changes committed by
    -- whoever held the advisory lock before us (an advisory lock alone does not, and
    -- to_regclass would still miss their partition). SHARE UPDATE EXCLUSIVE does not
    -- block the writers' INSERT/COPY (ROW EXCLUSIVE) nor readers.
    LOCK TABLE raw_events IN SHARE UPDATE EXCLUSIVE MODE;
    IF to_regclass(format('%I.%I', current_schema(), part)) IS NOT NULL THEN
        RETURN false;
    END IF;
    EXECUTE format(
        'CREATE TABLE IF NOT EXISTS %I PARTITION OF raw_events FOR VALUES FROM (%L) TO (%L)',
        part, lo, hi);
    RETURN true;
END
$$;
