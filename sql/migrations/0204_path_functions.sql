-- Two functions of a router line's path, for the rollups (sql/rollups/router_hourly.sql,
-- page_views_daily.sql). They run when a rollup reads router_requests, not when a line is
-- decoded: the hot path stays cheap, the raw path is kept, and a changed rule needs no
-- rewrite of stored rows (backfill the rollup).
--
-- drain_normalize_path(path): the path without its query string, each segment that is a
-- number or a UUID folded to :id, so that one route is one row:
--   /users/42/orders/7?page=2                     -> /users/:id/orders/:id
--   /items/3f2b9c1e-8a4d-4b5e-9c6f-0123456789ab    -> /items/:id
-- NULL and '' give '' (a router line without a path).
CREATE FUNCTION drain_normalize_path(path text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
SELECT regexp_replace(
    regexp_replace(
        split_part(coalesce(path, ''), '?', 1),
        '/[0-9]+(?=/|$)', '/:id', 'g'),
    '/[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}(?=/|$)',
    '/:id', 'g')
$$;

-- drain_is_page_path(path): true when the path (query string aside) names a page rather
-- than a file: its last segment has no extension, or .html/.htm. The router does not log
-- the Content-Type, so this is how page_views_daily tells "HTML GETs" from assets.
CREATE FUNCTION drain_is_page_path(path text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
SELECT split_part(coalesce(path, ''), '?', 1) !~ '\.[A-Za-z0-9]{1,10}$'
    OR split_part(coalesce(path, ''), '?', 1) ~* '\.html?$'
$$;
