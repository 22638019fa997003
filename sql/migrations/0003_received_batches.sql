-- received_batches: the exactly-once ledger.
--
-- Logplex resends a failed POST with the same Logplex-Frame-Id (log-shuttle: the same
-- X-Request-Id). The writer inserts (drain_token, frame_id) in the same transaction as
-- the batch's rows, with ON CONFLICT DO NOTHING; a key that already exists marks the
-- batch as a duplicate and its rows are not written again. A missing drain token is ''.
CREATE TABLE received_batches (
    drain_token text        NOT NULL DEFAULT '',
    frame_id    text        NOT NULL,
    received_at timestamptz NOT NULL,
    events      integer     NOT NULL,
    quarantined integer     NOT NULL,
    PRIMARY KEY (drain_token, frame_id)
);

-- For pruning old ledger rows by age.
CREATE INDEX received_batches_received_at_idx ON received_batches (received_at);
