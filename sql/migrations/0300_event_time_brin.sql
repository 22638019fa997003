-- A BRIN index on raw_events(event_time), for the dashboard's recent buckets and the
-- rollups that read every tag (events_per_minute, events_per_tag_hourly): a time range of a
-- few hours reads only the blocks whose event times can fall in it, instead of the whole
-- day's partition. Events arrive in about the order of their time, so each range of blocks
-- (pages_per_range 32 = 256 KiB) covers a short span. BRIN costs a few kB per partition
-- and almost nothing per COPY; autosummarize summarizes each range once it is full (the
-- newest, unsummarized range is always read). The index is partitioned: every partition,
-- made now or later by drain_ensure_partition, gets its own.
CREATE INDEX IF NOT EXISTS raw_events_event_time_brin ON raw_events
    USING brin (event_time) WITH (pages_per_range = 32, autosummarize = on);
