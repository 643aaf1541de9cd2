#!/usr/bin/env bash
# stress_gap_safe.sh: many writers whose transactions commit out of global-position order, and
# readers that resume from a durable checkpoint after every batch. Every reader must receive every
# committed event of what it reads exactly once, in checkpoint order, and no rolled-back one.
# A reader that checkpoints the global position alone runs beside them; what it misses is reported.
# Runs against the cluster that PGHOST/PGPORT/PGUSER name (test/run starts a throwaway one).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
seconds=${STRESS_SECONDS:-15}
writers=${STRESS_WRITERS:-8}
db=es_stress

psql_db() { psql -X -q -v ON_ERROR_STOP=1 -At -d "$db" "$@"; }

dropdb --if-exists "$db"
createdb "$db"
psql_db <<'SQL'
CREATE EXTENSION eventsource;
CREATE TABLE writers (done boolean NOT NULL);
INSERT INTO writers VALUES (false);
CREATE TABLE checkpoints (reader text PRIMARY KEY, checkpoint eventsource.checkpoint, last_position bigint NOT NULL DEFAULT 0);
CREATE TABLE received (
    reader          text NOT NULL,
    received_order  bigint GENERATED ALWAYS AS IDENTITY,
    global_position bigint NOT NULL,
    checkpoint      eventsource.checkpoint);

-- A subscriber: read a batch after the stored checkpoint, record it and the new checkpoint in one
-- transaction, repeat; stop once the writers are done and a read finds nothing more.
-- by_position reads the unsafe way, for contrast: everything after the last global position seen.
CREATE PROCEDURE subscribe(reader text, batch_size int, only_category text DEFAULT NULL,
                           by_position boolean DEFAULT false)
LANGUAGE plpgsql AS $$
DECLARE
    writers_done boolean;
    got int;
    last eventsource.checkpoint;
    seen_position bigint;
    item record;
    batch refcursor;
BEGIN
    INSERT INTO checkpoints (reader) VALUES (reader);
    COMMIT;
    LOOP
        writers_done := (SELECT done FROM writers);
        SELECT c.checkpoint, c.last_position INTO item FROM checkpoints c WHERE c.reader = subscribe.reader;
        last := item.checkpoint;
        seen_position := item.last_position;
        IF by_position THEN
            OPEN batch FOR SELECT e.global_position, NULL::eventsource.checkpoint AS checkpoint FROM eventsource.events e
                            WHERE e.global_position > seen_position ORDER BY e.global_position LIMIT batch_size;
        ELSE
            OPEN batch FOR SELECT e.global_position, e.checkpoint
                             FROM eventsource.read_all(last, batch_size, only_category) e;
        END IF;
        got := 0;
        LOOP
            FETCH batch INTO item;
            EXIT WHEN NOT FOUND;
            INSERT INTO received (reader, global_position, checkpoint) VALUES (reader, item.global_position, item.checkpoint);
            last := item.checkpoint;
            seen_position := item.global_position;
            got := got + 1;
        END LOOP;
        CLOSE batch;
        UPDATE checkpoints c SET checkpoint = last, last_position = seen_position
         WHERE c.reader = subscribe.reader AND got > 0;
        COMMIT;
        EXIT WHEN writers_done AND got = 0;
        IF got < batch_size THEN
            PERFORM pg_sleep(0.002);
        END IF;
    END LOOP;
END
$$;
SQL

psql_db -c "CALL subscribe('all, pages of 7', 7)" &
readers=($!)
psql_db -c "CALL subscribe('all, pages of 500', 500)" &
readers+=($!)
psql_db -c "CALL subscribe('category stress1, pages of 20', 20, 'stress1')" &
readers+=($!)
psql_db -c "CALL subscribe('by position alone, pages of 7', 7, by_position => true)" &
readers+=($!)

echo "# $writers writers for ${seconds}s; 4 readers"
pgbench -n -c "$writers" -j 2 -T "$seconds" \
  -f "$here/stress/append_one.pgbench@5" \
  -f "$here/stress/append_batch.pgbench@3" \
  -f "$here/stress/append_rolled_back.pgbench@1" "$db" > "${TMPDIR:-/tmp}/es_stress_pgbench.log" 2>&1 \
  || { cat "${TMPDIR:-/tmp}/es_stress_pgbench.log"; exit 1; }
grep -E "^number of (transactions|failed)" "${TMPDIR:-/tmp}/es_stress_pgbench.log" | sed 's/^/# /'
psql_db -c "UPDATE writers SET done = true"
for pid in "${readers[@]}"; do
  wait "$pid"
done

results=$(psql_db -v test=stress_gap_safe -v lib="$here/lib" <<'SQL'
SET search_path = public, eventsource;
\echo # events committed, streams, positions spanned:
SELECT '# ' || count(*) || ' events in ' || count(DISTINCT stream_id) || ' streams; positions 1..' || max(global_position)
  FROM eventsource.events;

CREATE TEMP TABLE checks (name text, passed boolean, detail text);

-- What each safe reader should have received: every committed event (of its category).
CREATE TEMP VIEW expected AS
SELECT r.reader, e.global_position
  FROM (SELECT DISTINCT reader FROM received WHERE reader NOT LIKE 'by position%') AS r
  JOIN eventsource.events e
    ON r.reader NOT LIKE 'category%' OR eventsource.category(e.stream_id) = 'stress1';

CREATE TEMP VIEW received_safely AS
SELECT reader, global_position FROM received WHERE reader NOT LIKE 'by position%';
CREATE TEMP TABLE differences AS
(SELECT reader, global_position, 'missed' AS kind FROM expected
 EXCEPT SELECT reader, global_position, 'missed' FROM received_safely)
UNION ALL
(SELECT reader, global_position, 'unexpected' FROM received_safely
 EXCEPT SELECT reader, global_position, 'unexpected' FROM expected);

INSERT INTO checks
SELECT format('reader "%s" %s', r.reader, k.label), count(d.*) = 0, count(d.*) || ' events'
  FROM (SELECT DISTINCT reader FROM expected) AS r
 CROSS JOIN (VALUES ('missed', 'missed no event'),
                    ('unexpected', 'received only committed events of what it reads')) AS k(kind, label)
  LEFT JOIN differences d ON d.reader = r.reader AND d.kind = k.kind
 GROUP BY r.reader, k.label;

INSERT INTO checks
SELECT 'reader "' || reader || '" received nothing twice', count(*) = count(DISTINCT global_position),
       (count(*) - count(DISTINCT global_position)) || ' duplicates'
  FROM received_safely GROUP BY reader;

INSERT INTO checks
SELECT 'reader "' || reader || '" received in checkpoint order', bool_and(in_order), count(*) FILTER (WHERE NOT in_order) || ' out of order'
  FROM (SELECT reader, coalesce(checkpoint > lag(checkpoint) OVER (PARTITION BY reader ORDER BY received_order), true) AS in_order
          FROM received WHERE reader NOT LIKE 'by position%') AS ordered
 GROUP BY reader;

INSERT INTO checks
SELECT 'no rolled-back event was recorded', count(*) = 0, count(*) || ' recorded'
  FROM eventsource.events WHERE event_type = 'RolledBack';

INSERT INTO checks
SELECT 'every batch is whole: its events are consecutive in one transaction',
       count(*) = 0, count(*) || ' broken batches'
  FROM (SELECT transaction_id, stream_id
          FROM eventsource.events WHERE event_type IN ('Ticked', 'Tocked')
         GROUP BY transaction_id, stream_id
        HAVING count(*) NOT IN (1, 3) OR max(stream_version) - min(stream_version) <> count(*) - 1) AS broken;

SELECT '# the reader that checkpoints the global position alone missed '
       || (SELECT count(*) FROM (SELECT global_position FROM eventsource.events
                                 EXCEPT SELECT global_position FROM received WHERE reader LIKE 'by position%') AS missed)
       || ' events (the failure the checkpoint design prevents)';
\i :lib/stress_checks.sql
SQL
)
echo "$results"
dropdb "$db"
[[ "$results" == *" 0 failed" ]]
