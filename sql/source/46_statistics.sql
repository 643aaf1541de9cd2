-- 46_statistics.sql: the cluster's counters, kept in shared memory when the library is preloaded.

CREATE FUNCTION eventsource.statistics(
    OUT appends             bigint,
    OUT events_appended     bigint,
    OUT version_conflicts   bigint,
    OUT idempotent_retries  bigint,
    OUT tombstone_rejections bigint,
    OUT events_scavenged    bigint,
    OUT statistics_reset    timestamptz)
RETURNS record
LANGUAGE c VOLATILE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'eventsource_statistics';

COMMENT ON FUNCTION eventsource.statistics() IS
    'Counters of the whole cluster since statistics_reset (shared memory; NULLs unless eventsource is in shared_preload_libraries).';

CREATE FUNCTION eventsource.reset_statistics()
RETURNS void
LANGUAGE c VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'eventsource_reset_statistics';

COMMENT ON FUNCTION eventsource.reset_statistics() IS
    'Sets the counters of eventsource.statistics() to zero.';
