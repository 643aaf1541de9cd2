-- plans.sql: the read paths are index-backed keyset scans, in their generic (kept) plans.
-- Start from an empty store.
DROP EXTENSION eventsource;
CREATE EXTENSION eventsource;
-- The plans are those of a log of realistic size with statistics, not of a tiny one.
SELECT count(*) FROM (
    SELECT eventsource.append('load' || n % 10 || '-' || n % 2000, 'Loaded', jsonb_build_object('n', n))
      FROM generate_series(1, 20000) AS n) AS appended;
SELECT count(*) FROM (
    SELECT eventsource.append('rare-' || n, 'Loaded', '{}') FROM generate_series(1, 20) AS n) AS appended;
ANALYZE eventsource.events;
SET plan_cache_mode = force_generic_plan;

-- The horizon: the reads pass log_horizon() as a parameter (transaction ids carry the epoch's offset).
PREPARE read_all(xid8, bigint, int, text[]) AS
SELECT e.global_position FROM eventsource.events e
 WHERE (e.transaction_id, e.global_position) > ($1, $2)
   AND e.transaction_id < eventsource.log_horizon()
   AND ($4::text[] IS NULL OR e.event_type = ANY ($4))
 ORDER BY e.transaction_id, e.global_position LIMIT $3;
EXPLAIN (COSTS OFF) EXECUTE read_all('0', 0, 1000, NULL);

PREPARE read_category(xid8, bigint, int, text[], text) AS
SELECT e.global_position FROM eventsource.events e
 WHERE (e.transaction_id, e.global_position) > ($1, $2)
   AND e.transaction_id < eventsource.log_horizon()
   AND ($4::text[] IS NULL OR e.event_type = ANY ($4))
   AND pg_catalog.split_part(e.stream_id, '-', 1) = $5
 ORDER BY e.transaction_id, e.global_position LIMIT $3;
-- The category read is planned with its category (a custom plan): a rare one uses its index.
SET plan_cache_mode = force_custom_plan;
EXPLAIN (COSTS OFF) EXECUTE read_category('0', 0, 1000, NULL, 'rare');
SET plan_cache_mode = force_generic_plan;

-- Stream reads start at the stream's first visible version (one lookup of its row, run once as an
-- InitPlan) and use it as an index bound, so events a delete or retention hides are not scanned.
PREPARE read_forward(text, bigint, int) AS
SELECT e.global_position FROM eventsource.events e
 WHERE e.stream_id = $1
   AND e.stream_version >= GREATEST($2, (SELECT eventsource.first_visible_version(v) FROM eventsource.streams v WHERE v.stream_id = $1))
 ORDER BY e.stream_version LIMIT $3;
EXPLAIN (COSTS OFF) EXECUTE read_forward('order-1', 1, 1000);

PREPARE read_backward(text, bigint, int) AS
SELECT e.global_position FROM eventsource.events e
 WHERE e.stream_id = $1 AND e.stream_version <= $2
   AND e.stream_version >= (SELECT eventsource.first_visible_version(v) FROM eventsource.streams v WHERE v.stream_id = $1)
 ORDER BY e.stream_version DESC LIMIT $3;
EXPLAIN (COSTS OFF) EXECUTE read_backward('order-1', 1, 1000);
