-- bench/report.sql: turns bench.results into the markdown report: throughput of every variant,
-- its ratio to the baseline measured in the same run, WAL bytes per event, and the targets.

CREATE TEMP VIEW measured AS
SELECT workload, variant, clients, synchronous_commit,
       avg(transactions / seconds) AS transactions_per_second,
       avg(events / seconds) AS events_per_second,
       avg(latency_ms) AS latency_ms,
       avg(p99_ms) AS p99_ms,
       sum(wal_bytes) / nullif(sum(events), 0) AS wal_bytes_per_event,
       avg(conflicts / seconds) AS conflicts_per_second
  FROM bench.results
 GROUP BY workload, variant, clients, synchronous_commit;

-- Each eventsource (and PL/pgSQL) figure beside the baseline of its workload.
CREATE TEMP VIEW compared AS
SELECT c.workload, c.clients, c.synchronous_commit, c.variant,
       c.events_per_second, c.wal_bytes_per_event, c.latency_ms,
       b.variant AS baseline, b.events_per_second AS baseline_events_per_second,
       b.wal_bytes_per_event AS baseline_wal_bytes_per_event,
       c.events_per_second / b.events_per_second AS ratio
  FROM measured c
  JOIN measured b
    ON b.clients = c.clients AND b.synchronous_commit = c.synchronous_commit
   AND b.workload = CASE WHEN c.workload LIKE 'append one event%' THEN 'append one event, any version' ELSE c.workload END
   AND b.variant IN ('raw INSERT', 'raw multi-row INSERT', 'plain SELECT')
 WHERE c.variant IN ('eventsource', 'PL/pgSQL reference');

\echo '## Appends: events per second against a raw INSERT into the same table shape'
\echo
\echo '| workload | clients | synchronous_commit | raw INSERT | eventsource | ratio | PL/pgSQL reference | ratio | eventsource / PL/pgSQL | WAL bytes per event (raw, eventsource) |'
\echo '|---|---:|---|---:|---:|---:|---:|---:|---:|---|'
SELECT format('| %s | %s | %s | %s | %s | **%sx** | %s | %sx | %sx | %s, %s |',
              e.workload, e.clients, e.synchronous_commit,
              round(e.baseline_events_per_second), round(e.events_per_second), round(e.ratio, 2),
              round(p.events_per_second), round(p.ratio, 2), round(e.events_per_second / p.events_per_second, 2),
              round(e.baseline_wal_bytes_per_event), round(e.wal_bytes_per_event))
  FROM compared e
  JOIN compared p USING (workload, clients, synchronous_commit)
 WHERE e.variant = 'eventsource' AND p.variant = 'PL/pgSQL reference'
 ORDER BY e.workload, e.clients, e.synchronous_commit DESC;
\echo
\echo '## Batches: events per second against a raw multi-row INSERT of the same JSON array'
\echo
\echo '| workload | clients | synchronous_commit | raw multi-row INSERT | eventsource | ratio | WAL bytes per event (raw, eventsource) |'
\echo '|---|---:|---|---:|---:|---:|---|'
SELECT format('| %s | %s | %s | %s | %s | **%sx** | %s, %s |',
              workload, clients, synchronous_commit, round(baseline_events_per_second), round(events_per_second),
              round(ratio, 2), round(baseline_wal_bytes_per_event), round(wal_bytes_per_event))
  FROM compared
 WHERE workload LIKE 'append a batch%'
 ORDER BY workload DESC, clients, synchronous_commit DESC;
\echo
\echo '## Contention: 16 clients, 10 streams, each append with the exact version just read'
\echo
\echo '| synchronous_commit | successful appends per second | conflicts per second |'
\echo '|---|---:|---:|'
SELECT format('| %s | %s | %s |', synchronous_commit, round(events_per_second - conflicts_per_second),
              round(conflicts_per_second))
  FROM measured WHERE workload = 'contention' ORDER BY synchronous_commit DESC;
\echo
\echo '## Reads: events per second against a plain SELECT on the same table'
\echo
\echo '| workload | clients | plain SELECT | eventsource | ratio |'
\echo '|---|---:|---:|---:|---:|'
SELECT format('| %s | %s | %s | %s | **%sx** |', workload, clients, round(baseline_events_per_second),
              round(events_per_second), round(ratio, 2))
  FROM compared
 WHERE workload LIKE 'read%'
 ORDER BY workload, clients;
\echo
\echo '## Loading an aggregate: a 10,000-event stream, loads per second against its full replay'
\echo
\echo '| variant | clients | loads per second | against read_stream, full replay |'
\echo '|---|---:|---:|---:|'
SELECT format('| %s | %s | %s | **%sx** |', l.variant, l.clients, round(l.transactions_per_second, 1),
              round(l.transactions_per_second / f.transactions_per_second, 2))
  FROM measured l
  JOIN measured f ON f.workload = l.workload AND f.clients = l.clients AND f.variant = 'read_stream, full replay'
 WHERE l.workload = 'load a 10,000-event aggregate'
 ORDER BY l.clients, l.variant DESC;
\echo
-- Growth: each variant on the large log against itself on the small log, and eventsource against
-- the raw INSERT at each size.
CREATE TEMP VIEW growth AS
SELECT g.variant, g.workload = 'growth, small log' AS small, substr(g.workload, 9) AS log,
       g.events_per_second, g.p99_ms,
       g.events_per_second / s.events_per_second AS ratio_to_small_log
  FROM measured g
  JOIN measured s ON s.variant = g.variant AND s.workload = 'growth, small log'
 WHERE g.workload LIKE 'growth, %';

SELECT CASE WHEN count(*) > 0 THEN
       E'## Growth: one-event appends, 16 clients, synchronous_commit on\n\n'
       || E'| log | variant | appends per second | against the small log | p99 latency (ms) | eventsource / raw INSERT |\n'
       || E'|---|---|---:|---:|---:|---:|\n'
       || string_agg(format('| %s | %s | %s | %sx | %s | %s |', g.log, g.variant, round(g.events_per_second),
                            round(g.ratio_to_small_log, 2), round(g.p99_ms, 2),
                            CASE WHEN g.variant = 'eventsource' THEN round(g.events_per_second / r.events_per_second, 2) || 'x' END),
                     E'\n' ORDER BY g.small DESC, g.variant DESC) || E'\n'
       END
  FROM growth g JOIN growth r ON r.log = g.log AND r.variant = 'raw INSERT';

\echo '## Targets'
\echo
\echo '| target | measured | met |'
\echo '|---|---:|---|'
WITH targets (target, measured, threshold) AS (
    SELECT format('one-event append, 16 clients, synchronous_commit %s: at least 0.95x raw INSERT', synchronous_commit),
           ratio, 0.95
      FROM compared
     WHERE workload = 'append one event, any version' AND variant = 'eventsource' AND clients = 16
    UNION ALL
    SELECT format('batch of 100, %s clients, synchronous_commit %s: at least 0.9x raw multi-row INSERT', clients, synchronous_commit),
           ratio, 0.9
      FROM compared WHERE workload = 'append a batch of 100' AND variant = 'eventsource'
    UNION ALL
    SELECT format('%s, %s clients, synchronous_commit off: C at least 1.1x the PL/pgSQL reference', e.workload, e.clients),
           e.events_per_second / p.events_per_second, 1.1
      FROM compared e JOIN compared p USING (workload, clients, synchronous_commit)
     WHERE e.variant = 'eventsource' AND p.variant = 'PL/pgSQL reference' AND e.synchronous_commit = 'off'
    UNION ALL
    SELECT format('read_all, %s clients: at least 0.9x a plain SELECT', clients), ratio, 0.9
      FROM compared WHERE workload = 'read_all, pages of 1,000'
    UNION ALL
    SELECT format('load_stream from a snapshot at 9,990 of 10,000, %s clients: at least 10x the full replay', l.clients),
           l.transactions_per_second / f.transactions_per_second, 10
      FROM measured l
      JOIN measured f ON f.workload = l.workload AND f.clients = l.clients AND f.variant = 'read_stream, full replay'
     WHERE l.workload = 'load a 10,000-event aggregate' AND l.variant = 'load_stream, snapshot at 9,990'
    UNION ALL
    SELECT format('growth: %s on a log of 10,000,000 events at least 0.9x on a small log', variant),
           ratio_to_small_log, 0.9
      FROM growth WHERE NOT small
)
SELECT format('| %s | %sx | %s |', target, round(measured, 2), CASE WHEN measured >= threshold THEN 'yes' ELSE '**no**' END)
  FROM targets ORDER BY target;
