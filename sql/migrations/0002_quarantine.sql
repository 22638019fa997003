-- quarantine: frames that carry (or may carry) an event but cannot be stored as one.
--
-- reason is a drain.records.QuarantineReason value; raw is the frame's bytes as received
-- (cut to a bound; raw_bytes is the length before the cut). frame_offset is the byte
-- offset of the frame in the request body, NULL for rows PostgreSQL refused at COPY time
-- (reason 'rejected_by_database'), whose raw is rebuilt from the event as `@[tag] payload`.
CREATE TABLE quarantine (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at  timestamptz NOT NULL,
    reason       text        NOT NULL,
    detail       text        NOT NULL DEFAULT '',
    raw          bytea       NOT NULL,
    raw_bytes    integer     NOT NULL,
    frame_offset integer,
    event_time   timestamptz,
    tag          text,
    drain_token  text,
    frame_id     text
);

CREATE INDEX quarantine_received_at_idx ON quarantine (received_at);
