-- eventsource--0.6.0--0.7.0.sql: upgrade from 0.6.0 to 0.7.0 (also part of a fresh install).
--
-- Log integrity: the log stays readable and in order after a restore into another cluster, a
-- crash that loses commits and pg_upgrade; lifecycle markers follow the events they cover; an
-- acknowledgement is accepted only from the lease it acknowledges; projections never silently
-- stop; snapshots never bring deleted data back; a category is never a stream id.

\echo Use "ALTER EXTENSION eventsource UPDATE TO '0.7.0'" to load this file. \quit

-- ---------------------------------------------------------------------------------------------
-- Item 3: lifecycle markers in log order. Each stream's row records the log transaction id of the
-- last transaction that appended to, deleted or tombstoned it; the statement that writes the row
-- refuses (40001) a transaction whose id is older, whose events or $stream-deleted /
-- $stream-tombstoned marker would come before that transaction's in the global log.
-- ---------------------------------------------------------------------------------------------

ALTER TABLE eventsource.streams ADD COLUMN last_transaction_id xid8;

COMMENT ON COLUMN eventsource.streams.last_transaction_id IS
    'The log transaction id of the last transaction that appended to, deleted or tombstoned the stream (its events and markers carry it as transaction_id); a later writer with an older one gets 40001. NULL: not known.';

-- Streams written before 0.7.0: the newest id among their events and their markers in $streams
-- (a deleted stream's events may have been scavenged).
UPDATE eventsource.streams s
   SET last_transaction_id = w.last_transaction_id
  FROM (SELECT x.stream_id, pg_catalog.max(x.transaction_id) AS last_transaction_id
          FROM (SELECT e.stream_id, e.transaction_id FROM eventsource.events e
                UNION ALL
                SELECT e.data OPERATOR(pg_catalog.->>) 'stream_id', e.transaction_id
                  FROM eventsource.events e
                 WHERE e.stream_id OPERATOR(pg_catalog.=) '$streams'
                   AND e.event_type OPERATOR(pg_catalog.=) ANY ('{$stream-deleted,$stream-tombstoned}'::text[])) AS x
         GROUP BY x.stream_id) AS w
 WHERE w.stream_id OPERATOR(pg_catalog.=) s.stream_id;

CREATE FUNCTION eventsource.stream_log_transaction_id(stream_id text, latest_transaction_id xid8, operation text)
RETURNS xid8
LANGUAGE c VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'eventsource_stream_log_transaction_id';

COMMENT ON FUNCTION eventsource.stream_log_transaction_id(text, xid8, text) IS
    'Internal to the statements that append to, delete or tombstone a stream: this transaction''s log transaction id, or 40001 if latest_transaction_id (the stream''s last_transaction_id) is newer. Granted to nobody.';

REVOKE ALL ON FUNCTION eventsource.stream_log_transaction_id(text, xid8, text) FROM PUBLIC;
