-- app: which Heroku app (or Fir service) a row came from, so that several apps can share
-- one drain. For a Logplex batch it is the name DRAIN_APPS gives its drain token, else the
-- token, else '' (a sender without a token); for an OTLP log record, its resource's
-- service.name. A constant default makes ADD COLUMN a catalog change on every partition
-- (no table rewrite); rows stored before this migration read ''.
ALTER TABLE raw_events ADD COLUMN app text NOT NULL DEFAULT '';
ALTER TABLE quarantine ADD COLUMN app text NOT NULL DEFAULT '';
