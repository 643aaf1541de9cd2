-- read.sql: stream reads forwards and backwards, the global log and categories, keyset pages.
-- Start from an empty store.
DROP EXTENSION eventsource;
CREATE EXTENSION eventsource;
\set VERBOSITY default
SELECT eventsource.append_events('shipment-1', jsonb_agg(jsonb_build_object('type', 'Scanned', 'data', jsonb_build_object('n', n))))
  FROM generate_series(1, 10) AS n;
SELECT eventsource.append('shipment-2', 'Created', '{}');
SELECT eventsource.append('parcel-1', 'Created', '{}');
SELECT eventsource.append('shipment-2', 'Delivered', '{}');

-- A stream forwards, from a version, a page at a time.
SELECT stream_version, data->>'n' AS n FROM eventsource.read_stream('shipment-1', max_count => 3);
SELECT stream_version FROM eventsource.read_stream('shipment-1', 4, 3);
SELECT stream_version FROM eventsource.read_stream('shipment-1', 10, 3);
SELECT stream_version FROM eventsource.read_stream('shipment-1', 11, 3);
SELECT stream_version FROM eventsource.read_stream('shipment-1', 0, 2);
-- Backwards: from the end by default, or from a version.
SELECT stream_version FROM eventsource.read_stream('shipment-1', direction => 'backward', max_count => 3);
SELECT stream_version FROM eventsource.read_stream('shipment-1', 2, 5, 'backward');
SELECT stream_version FROM eventsource.read_stream('shipment-1', 0, 5, 'backward');
SELECT stream_version FROM eventsource.read_stream('shipment-1', 1000, 2, 'backward');
-- A stream that does not exist reads as empty.
SELECT count(*) FROM eventsource.read_stream('shipment-404');

-- The global log: every event once, in commit-safe order, each with its checkpoint.
SELECT stream_id, stream_version,
       eventsource.checkpoint_transaction_id(checkpoint) = transaction_id
       AND eventsource.checkpoint_global_position(checkpoint) = global_position AS checkpoint_matches
  FROM eventsource.read_all();
-- Keyset pages: pass the last row's checkpoint back as after.
CREATE TEMP TABLE pages (page int, stream_id text, stream_version bigint);
DO $$
DECLARE
    last eventsource.checkpoint;
    page int := 0;
    row eventsource.event;
    got int;
BEGIN
    LOOP
        page := page + 1;
        got := 0;
        FOR row IN SELECT * FROM eventsource.read_all(last, 4) LOOP
            INSERT INTO pages VALUES (page, row.stream_id, row.stream_version);
            last := row.checkpoint;
            got := got + 1;
        END LOOP;
        EXIT WHEN got = 0;
    END LOOP;
END
$$;
SELECT page, count(*) FROM pages GROUP BY page ORDER BY page;
SELECT (SELECT count(*) FROM pages) = (SELECT count(*) FROM eventsource.events) AS every_event_once,
       (SELECT count(DISTINCT (stream_id, stream_version)) FROM pages) = (SELECT count(*) FROM pages) AS no_duplicates;
-- A checkpoint passed as text, as a client in any language would.
SELECT checkpoint::text AS fifth FROM eventsource.read_all(max_count => 5) OFFSET 4 \gset
SELECT stream_id, stream_version FROM eventsource.read_all(:'fifth', 3);

-- The checkpoint type: text form, constructor, parts, order (operators need eventsource on the search_path).
SELECT '( 742 , 15 )'::eventsource.checkpoint AS parsed, eventsource.checkpoint('742', 15) AS made,
       eventsource.checkpoint_transaction_id('(742,15)'), eventsource.checkpoint_global_position('(742,15)');
SET search_path = public, eventsource;
SELECT '(742,15)'::checkpoint < '(742,16)', '(742,15)'::checkpoint < '(743,1)', '(743,1)'::checkpoint > '(742,99)',
       '(742,15)'::checkpoint = '(742,15)', '(742,15)'::checkpoint <> '(742,16)', '(742,15)'::checkpoint >= '(742,15)',
       '(742,15)'::checkpoint <= '(742,14)';
RESET search_path;
SELECT c FROM (VALUES ('(9,1)'::eventsource.checkpoint), ('(2,30)'), ('(2,4)'), ('(10,0)')) AS v(c) ORDER BY c;
-- Binary form: two big-endian 8-byte integers, read back by COPY's binary format (the file is in the
-- data directory of the cluster under test).
SELECT eventsource.checkpoint_send('(742,15)');
CREATE TEMP TABLE checkpoint_copy (c eventsource.checkpoint);
INSERT INTO checkpoint_copy VALUES ('(742,15)'), ('(18446744073709551615,9223372036854775807)');
DO $$
DECLARE
    file text := current_setting('data_directory') || '/eventsource_checkpoint_copy.bin';
BEGIN
    EXECUTE format('COPY checkpoint_copy TO %L (FORMAT binary)', file);
    TRUNCATE checkpoint_copy;
    EXECUTE format('COPY checkpoint_copy FROM %L (FORMAT binary)', file);
END
$$;
SELECT c FROM checkpoint_copy ORDER BY c;
-- Every checkpoint a read returns is greater than the one before it.
SELECT bool_and(eventsource.checkpoint_cmp(previous, checkpoint) < 0) AS increasing
  FROM (SELECT checkpoint, lag(checkpoint) OVER (ORDER BY returned) AS previous
          FROM eventsource.read_all() WITH ORDINALITY AS r(global_position, transaction_id, stream_id, stream_version,
               event_id, event_type, data, metadata, recorded_at, checkpoint, returned)) AS pairs
 WHERE previous IS NOT NULL;

-- Filters: one category, some event types.
SELECT stream_id, stream_version FROM eventsource.read_all(category => 'shipment', event_types => '{Created,Delivered}');
SELECT stream_id, event_type FROM eventsource.read_all(event_types => ARRAY['Created']);
SELECT stream_id, stream_version FROM eventsource.read_category('shipment', max_count => 3);
SELECT stream_id FROM eventsource.read_category('parcel');
SELECT stream_id, event_type FROM eventsource.read_category('shipment', event_types => '{Delivered}');
SELECT count(*) FROM eventsource.read_category('nothing');
-- read_category resumes from a checkpoint like read_all.
SELECT checkpoint::text AS third FROM eventsource.read_category('shipment', max_count => 3) OFFSET 2 \gset
SELECT stream_id, stream_version FROM eventsource.read_category('shipment', :'third', 2);

-- The log stops below the oldest running transaction: its events, and later ones, wait.
BEGIN;
SELECT eventsource.append('shipment-3', 'Created', '{}');
SELECT count(*) AS visible_in_own_transaction FROM eventsource.read_all() WHERE stream_id = 'shipment-3';
COMMIT;
SELECT count(*) AS visible_after_commit FROM eventsource.read_all() WHERE stream_id = 'shipment-3';

-- The streams table.
SELECT stream_id, category, stream_version, created_at <= updated_at AS times_in_order
  FROM eventsource.streams ORDER BY stream_id;

-- Errors.
SELECT * FROM eventsource.read_stream(NULL);
SELECT * FROM eventsource.read_stream('');
SELECT * FROM eventsource.read_stream(repeat('s', 501));
SELECT * FROM eventsource.read_stream('shipment-1', -1);
SELECT * FROM eventsource.read_stream('shipment-1', max_count => 0);
SELECT * FROM eventsource.read_stream('shipment-1', max_count => 100001);
SELECT * FROM eventsource.read_stream('shipment-1', max_count => NULL);
SELECT * FROM eventsource.read_stream('shipment-1', direction => 'sideways');
SELECT * FROM eventsource.read_stream('shipment-1', direction => NULL);
SELECT * FROM eventsource.read_all(max_count => -1);
SELECT * FROM eventsource.read_all('(,5)');
SELECT * FROM eventsource.read_all('(5,)');
SELECT * FROM eventsource.read_all('garbage');
SELECT * FROM eventsource.read_all('(-1,5)');
SELECT * FROM eventsource.read_all('(18446744073709551616,5)');
SELECT * FROM eventsource.read_all('(1,2) trailing');
SELECT * FROM eventsource.read_all(event_types => '{}');
SELECT * FROM eventsource.read_all(event_types => ARRAY['Created', NULL]);
SELECT * FROM eventsource.read_all(category => '');
SELECT * FROM eventsource.read_category(NULL);
SELECT * FROM eventsource.read_category('');
-- A category never contains '-': a stream id passed as one is an error, not a read of nothing.
SELECT * FROM eventsource.read_all(category => 'shipment-1');
SELECT * FROM eventsource.read_category('shipment-1');
SELECT * FROM eventsource.read_category('-1');
-- The error names the category once, and only its first 64 characters when it is longer (so that a
-- huge argument does not flood the server log); the part before the '-' likewise.
SELECT * FROM eventsource.read_category(repeat('ü', 70) || '-' || repeat('x', 1000));
SELECT * FROM eventsource.read_all(category => 'shipment-' || repeat('x', 55));
SELECT eventsource.stream_version(NULL);
SELECT eventsource.stream_version('');

-- Every row a read returns carries the checkpoint of its own transaction id and global position
-- (the read adds it to the stored columns as it returns them), with null metadata and large data too.
SELECT eventsource.append('wide-1', 'Wide', jsonb_build_object('blob', repeat('w', 300000)));
SELECT eventsource.append('wide-1', 'Narrow', '{}', metadata => NULL);
SELECT r.what, count(*) AS events,
       count(*) FILTER (WHERE r.checkpoint OPERATOR(eventsource.=) eventsource.checkpoint(r.transaction_id, r.global_position)) AS own_checkpoint,
       max(length(r.data::text)) AS longest_data
  FROM (SELECT 'read_stream' AS what, * FROM eventsource.read_stream('wide-1')
        UNION ALL SELECT 'read_stream backward', * FROM eventsource.read_stream('wide-1', direction => 'backward')
        UNION ALL SELECT 'read_all', * FROM eventsource.read_all()
        UNION ALL SELECT 'read_category', * FROM eventsource.read_category('wide')) r
 GROUP BY r.what ORDER BY r.what;
