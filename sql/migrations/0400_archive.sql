-- The Parquet archive (drain.archive, docs/archive.md): what was written where, what was
-- verified, what was restored. The files themselves live in DRAIN_ARCHIVE_URL; a manifest
-- file beside them repeats archive_partitions.manifest, so the archive describes itself
-- without this database.
--
-- archive_partitions: one row per archived *generation* of a day-partition. Generation 1 is
-- the partition retention found; a partition made again later for the same day (rows
-- loaded for an old day) is archived as generation 2, and so on. state moves
--   writing -> written -> verified -> dropped
-- and back to writing when a verification fails (its files are deleted and rewritten).
-- partition_oid is the pg_class oid of the partition being archived: a partition dropped
-- and made again has another, so a verified generation is never taken for a new table.
CREATE TABLE archive_partitions (
    table_name      text        NOT NULL,
    day             date        NOT NULL,
    generation      integer     NOT NULL CHECK (generation >= 1),
    partition_name  text        NOT NULL,
    partition_oid   oid         NOT NULL,
    state           text        NOT NULL
                    CHECK (state IN ('writing', 'written', 'verified', 'dropped')),
    destination     text        NOT NULL,
    rows            bigint,
    bytes           bigint,
    files           integer,
    checksum        text,
    min_time        timestamptz,
    max_time        timestamptz,
    manifest_path   text,
    manifest        jsonb,
    failures        integer     NOT NULL DEFAULT 0,
    last_error      text,
    last_error_step text,
    last_error_at   timestamptz,
    started_at      timestamptz NOT NULL DEFAULT now(),
    verified_at     timestamptz,
    dropped_at      timestamptz,
    PRIMARY KEY (table_name, day, generation)
);

-- archive_files: one row per data file, inserted (state 'writing') BEFORE the file is
-- created, so a run killed at any point knows every file it may have left behind; the
-- next run deletes the files of an unfinished generation before writing it again.
CREATE TABLE archive_files (
    path        text        PRIMARY KEY,
    table_name  text        NOT NULL,
    day         date        NOT NULL,
    generation  integer     NOT NULL,
    app         text        NOT NULL,
    state       text        NOT NULL CHECK (state IN ('writing', 'written')),
    rows        bigint,
    bytes       bigint,
    sha256      text,
    checksum    text,
    min_time    timestamptz,
    max_time    timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (table_name, day, generation)
        REFERENCES archive_partitions (table_name, day, generation) ON DELETE CASCADE
);
CREATE INDEX archive_files_partition_idx ON archive_files (table_name, day, generation);

-- archive_restores: the ledger of `drain archive restore`, one row per (table, day, app)
-- loaded back into PostgreSQL, inserted in the transaction that loads the rows (like
-- received_batches for a batch): a second restore finds the row and loads nothing. While a
-- day has rows here, retention keeps its partition; `drain archive release` drops the
-- partition and these rows in one transaction.
CREATE TABLE archive_restores (
    table_name  text        NOT NULL,
    day         date        NOT NULL,
    app         text        NOT NULL,
    rows        bigint      NOT NULL,
    checksum    text        NOT NULL,
    restored_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (table_name, day, app)
);
