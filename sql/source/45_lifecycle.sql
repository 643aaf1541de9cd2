-- 45_lifecycle.sql: the stream lifecycle: deletes, tombstones, retention and scavenge.
--
-- Deletes and retention settings (the columns of eventsource.streams) hide events from stream
-- reads at once; scavenge removes them from the log once no subscription or async projection is
-- owed them. delete_stream, tombstone_stream and set_stream_metadata record an audit event in
-- the $streams stream naming their caller, so they are SECURITY INVOKER (with a pinned search
-- path) and act as the extension's owner themselves once they have noted it, even when called
-- from a SECURITY DEFINER function.

CREATE FUNCTION eventsource.first_visible_version(stream eventsource.streams)
RETURNS bigint
LANGUAGE c STABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'eventsource_first_visible_version';

COMMENT ON FUNCTION eventsource.first_visible_version(eventsource.streams) IS
    'The lowest stream version stream reads show: after a delete, from truncate_before, the newest max_count events, from the first event recorded within max_age.';

-- max_age in ISO 8601 (P1DT2H), whatever the session's IntervalStyle: the same text everywhere.
CREATE FUNCTION eventsource.stream_metadata(stream_id text)
RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE
SET IntervalStyle = iso_8601
BEGIN ATOMIC
    SELECT pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
               'truncate_before', s.truncate_before,
               'max_count', s.max_count,
               'max_age', s.max_age::text))
      FROM eventsource.streams s
     WHERE s.stream_id OPERATOR(pg_catalog.=) stream_metadata.stream_id;
END;

COMMENT ON FUNCTION eventsource.stream_metadata(text) IS
    'The retention settings of a stream as set_stream_metadata takes them ({} when it has none, NULL when the stream does not exist).';

CREATE FUNCTION eventsource.set_stream_metadata(stream_id text, metadata jsonb)
RETURNS jsonb
LANGUAGE c VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'eventsource_set_stream_metadata_0_8';

COMMENT ON FUNCTION eventsource.set_stream_metadata(text, jsonb) IS
    'Replaces a stream''s retention settings ({"truncate_before": N, "max_count": N, "max_age": "30 days" or seconds}, {} for none); stream reads honour them at once, scavenge removes what they hide. Recorded in the $streams stream.';

CREATE FUNCTION eventsource.delete_stream(stream_id text, expected_version bigint DEFAULT NULL)
RETURNS bigint
LANGUAGE c VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'eventsource_delete_stream_0_8';

COMMENT ON FUNCTION eventsource.delete_stream(text, bigint) IS
    'Soft-deletes a stream: its events disappear from stream reads and its snapshots are deleted; a later append continues the version numbering. Returns the version deleted through. Recorded in the $streams stream.';

CREATE FUNCTION eventsource.tombstone_stream(stream_id text, expected_version bigint DEFAULT NULL)
RETURNS bigint
LANGUAGE c VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'eventsource_tombstone_stream_0_8';

COMMENT ON FUNCTION eventsource.tombstone_stream(text, bigint) IS
    'Deletes a stream for ever: as delete_stream, and every later append to it fails with SE005. Returns the version deleted through. Recorded in the $streams stream.';

CREATE FUNCTION eventsource.scavenge(max_events integer DEFAULT 1000)
RETURNS bigint
LANGUAGE c VOLATILE PARALLEL UNSAFE
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'eventsource_scavenge';

COMMENT ON FUNCTION eventsource.scavenge(integer) IS
    'Removes up to max_events rows: events that deletes and retention settings hide, except those a subscription or async projection has not passed yet, then snapshots the loads no longer use, skipping what other transactions hold; returns how many events and snapshots it removed (call again until 0).';

CREATE PROCEDURE eventsource.scavenge_all(batch_size integer DEFAULT 1000)
LANGUAGE plpgsql
AS $procedure$
BEGIN
    -- A transaction per batch: every batch's locks and dead rows are released as it goes.
    WHILE eventsource.scavenge(batch_size) OPERATOR(pg_catalog.>) 0 LOOP
        COMMIT;
    END LOOP;
END
$procedure$;

COMMENT ON PROCEDURE eventsource.scavenge_all(integer) IS
    'Runs scavenge in batches of batch_size, committing after each, until nothing more can be removed (CALL it outside a transaction block).';
