-- drain_secrets: keys drain keeps in its database. client_hash_key is the key of
-- router_requests.client_hash (a keyed BLAKE2b hash of the client's address), made here once
-- from PostgreSQL's strong random source (gen_random_uuid, PostgreSQL 13+: two UUIDs, 244
-- random bits), so that every dyno and every restart hashes an address alike and distinct
-- clients can be counted. DRAIN_CLIENT_HASH_KEY, when set, is used instead (and keeps the
-- key out of the database). Give BI roles no access to this table.
CREATE TABLE drain_secrets (
    name        text        PRIMARY KEY,
    value       bytea       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

INSERT INTO drain_secrets (name, value)
VALUES ('client_hash_key',
        decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex'));
