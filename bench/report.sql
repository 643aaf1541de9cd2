-- bench/report.sql: turns bench.results and bench.latency into the markdown report: throughput of
-- every variant, its ratio to the baseline measured in the same run, WAL bytes per event, the bus
-- (appends with the notifier, latency to a subscriber), projections (appends with an inline one,
-- async ones catching up), and the targets. With -v bus_only=1 (the --bus mode of bench/run) only
-- the bus sections and their targets; with -v projections_only=1 (--projections) only the
-- projections sections and their targets; with -v lifecycle_only=1 (--lifecycle) only the stream
-- lifecycle section; with -v consistency_only=1 (--consistency) only the tags, multi-stream and
-- conditional appends section; with -v peers_only=1 (--peers) only the peers section.

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

\if :{?consistency_only}
\echo '## Tags, multi-stream and conditional appends, each beside the first variant of its workload'
\echo
\echo '| workload | variant | events per second | ratio |'
\echo '|---|---|---:|---:|'
SELECT format('| %s | %s | %s | %s |', m.workload, m.variant, round(m.events_per_second),
              CASE WHEN m.variant = b.variant THEN 'baseline' ELSE '**' || round(m.events_per_second / b.events_per_second, 2) || 'x**' END)
  FROM measured m
  JOIN measured b
    ON b.workload = m.workload AND b.variant IN ('raw INSERT', 'no condition', 'two appends in a transaction',
                                                 'read_by_query, then a conditional append')
 WHERE m.workload LIKE 'consistency:%'
 ORDER BY m.workload, m.variant = b.variant DESC, m.variant;
\echo
SELECT format('One-event appends, two tags against untagged: **%sx**; untagged against the raw INSERT: **%sx**.',
              round(t.events_per_second / u.events_per_second, 2), round(u.events_per_second / r.events_per_second, 2))
  FROM measured t, measured u, measured r
 WHERE t.variant = 'eventsource, two tags' AND u.variant = 'eventsource, untagged' AND r.variant = 'raw INSERT'
   AND r.workload = 'consistency: append one event';
\echo
SELECT format('Decisions on one hot tag: %s of %s conditions held (%s%% failed: another decision came first).',
              sum(appended), sum(decided), round(100.0 * (sum(decided) - sum(appended)) / nullif(sum(decided), 0), 1))
  FROM bench.decision_rounds;
\quit
\endif
\if :{?lifecycle_only}
\echo '## Stream lifecycle: its cost, against the same library serving a database at 0.4.0 and the baselines'
\echo
\echo '| workload | clients | synchronous_commit | variant | events per second | ratio to the baseline | 0.5.0 / 0.4.0 |'
\echo '|---|---:|---|---|---:|---:|---:|'
SELECT format('| %s | %s | %s | %s | %s | %s | %s |', m.workload, m.clients, m.synchronous_commit, m.variant,
              round(m.events_per_second),
              CASE WHEN m.variant = b.variant THEN 'baseline' ELSE '**' || round(m.events_per_second / b.events_per_second, 2) || 'x**' END,
              COALESCE(round(m.events_per_second / o.events_per_second, 2) || 'x', ''))
  FROM measured m
  JOIN measured b
    ON b.workload = m.workload AND b.clients = m.clients AND b.synchronous_commit = m.synchronous_commit
   AND b.variant IN ('raw INSERT', 'plain SELECT', 'no scavenge running')
  LEFT JOIN measured o
    ON o.workload = m.workload AND o.clients = m.clients AND o.synchronous_commit = m.synchronous_commit
   AND o.variant = 'eventsource 0.4.0' AND m.variant = 'eventsource 0.5.0'
 WHERE m.workload LIKE 'lifecycle:%'
 ORDER BY m.workload, m.clients, m.synchronous_commit DESC, m.variant = b.variant DESC, m.variant;
\echo
\echo '## Scavenge: removing the hidden events while appends run'
\echo
\echo '| round | events removed | seconds | events removed per second |'
\echo '|---:|---:|---:|---:|'
SELECT format('| %s | %s | %s | %s |', round, events, round(seconds, 1), round(events / seconds))
  FROM bench.results WHERE workload = 'lifecycle: scavenge_all of the hidden events' ORDER BY round;
\quit
\endif
\if :{?peers_only}
\echo '## One-event appends at 16 clients against the raw INSERT of the same tool, synchronous_commit and run'
\echo
\echo 'CPU per event, in µs: the backends (and autovacuum workers) of the runs / the benchmark database''s notifier / the other long-lived processes (WAL writer, checkpointer...), from /proc; the client''s own (node) from process.cpuUsage(). The machine''s 2 cores run the clients too.'
\echo
\echo '| through | synchronous_commit | variant | events per second | ratio to the raw INSERT | median of the rounds'' ratios (min-max) | server CPU per event: backends / notifier / others | client CPU per event | WAL bytes per event | failed appends |'
\echo '|---|---|---|---:|---:|---|---|---:|---:|---:|'
WITH rounds AS (
    SELECT r.workload, r.synchronous_commit, r.variant,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY r.events::numeric / b.events) AS median_ratio,
           min(r.events::numeric / b.events) AS min_ratio, max(r.events::numeric / b.events) AS max_ratio,
           sum(r.conflicts) AS failed,
           1e6 / :clock_ticks * sum(r.backend_ticks) / sum(r.events) AS backend_us,
           1e6 / :clock_ticks * sum(r.notifier_ticks) / sum(r.events) AS notifier_us,
           1e6 / :clock_ticks * sum(r.other_ticks) / sum(r.events) AS other_us,
           sum(r.client_cpu_us * r.transactions) / sum(r.transactions) AS client_us
      FROM bench.results r
      JOIN bench.results b
        ON b.workload = r.workload AND b.synchronous_commit = r.synchronous_commit AND b.round = r.round
       AND b.clients = r.clients AND b.variant = 'raw INSERT'
     WHERE r.workload LIKE :'workloads'
     GROUP BY r.workload, r.synchronous_commit, r.variant)
SELECT format('| %s | %s | %s | %s | %s | %s (%s-%s) | %s / %s / %s | %s | %s | %s |',
              regexp_replace(m.workload, '^(peers|profile): append one event(, )?', ''), m.synchronous_commit, m.variant,
              round(m.events_per_second),
              CASE WHEN m.variant = 'raw INSERT' THEN 'baseline' ELSE '**' || round(m.events_per_second / b.events_per_second, 2) || 'x**' END,
              round(r.median_ratio::numeric, 2), round(r.min_ratio, 2), round(r.max_ratio, 2),
              round(r.backend_us), round(r.notifier_us), round(r.other_us), coalesce(round(r.client_us)::text, ''),
              round(m.wal_bytes_per_event), coalesce(r.failed::text, ''))
  FROM measured m
  JOIN measured b
    ON b.workload = m.workload AND b.clients = m.clients AND b.synchronous_commit = m.synchronous_commit
   AND b.variant = 'raw INSERT'
  JOIN rounds r ON r.workload = m.workload AND r.synchronous_commit = m.synchronous_commit AND r.variant = m.variant
 WHERE m.workload LIKE :'workloads'
 ORDER BY m.workload DESC, m.synchronous_commit DESC, m.events_per_second DESC;
\quit
\endif
\if :{?bus_only}
\elif :{?projections_only}
\else
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
\endif
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

-- The bus: one-event appends at 16 clients with the notifier off and on (a LISTEN subscriber reading
-- every new event with read_all), beside a raw INSERT with and without a NOTIFY in its transaction.
CREATE TEMP VIEW bus AS
SELECT clients, synchronous_commit,
       max(events_per_second) FILTER (WHERE variant = 'notifier off') AS notifier_off,
       max(events_per_second) FILTER (WHERE variant = 'notifier on, subscriber listening') AS notifier_on,
       max(events_per_second) FILTER (WHERE variant = 'raw INSERT') AS raw,
       max(events_per_second) FILTER (WHERE variant = 'raw INSERT + NOTIFY') AS raw_notify
  FROM measured
 WHERE workload = 'bus: append one event'
 GROUP BY clients, synchronous_commit;

-- Latency: means over the rounds of each round's percentiles; the worst of the maxima.
CREATE TEMP VIEW latency AS
SELECT target_rate, clients, synchronous_commit,
       avg(transactions / seconds) AS achieved_rate,
       sum(timed_events) AS timed_events, sum(transactions) AS transactions, sum(unnotified) AS unnotified,
       avg(notifications / seconds) AS notifications_per_second,
       avg(p50_ms) AS p50_ms, avg(p99_ms) AS p99_ms, max(max_ms) AS max_ms,
       avg(read_p50_ms) AS read_p50_ms, avg(read_p99_ms) AS read_p99_ms
  FROM bench.latency
 GROUP BY target_rate, clients, synchronous_commit;

-- Projections: appends at 16 clients with no projection (the log's trigger disabled) and with one
-- inline projection; the events its handler counted against those appended.
CREATE TEMP VIEW inline_projection AS
SELECT m.workload, m.synchronous_commit,
       max(m.events_per_second) FILTER (WHERE m.variant = 'no projection') AS none,
       max(m.events_per_second) FILTER (WHERE m.variant = 'one inline projection, handler doing nothing') AS noop,
       max(m.events_per_second) FILTER (WHERE m.variant = 'one inline projection, PL/pgSQL handler') AS plpgsql,
       max(m.events_per_second) FILTER (WHERE m.variant = 'one inline projection, SQL handler') AS sql,
       max(m.wal_bytes_per_event) FILTER (WHERE m.variant = 'no projection') AS none_wal,
       max(m.wal_bytes_per_event) FILTER (WHERE m.variant = 'one inline projection, PL/pgSQL handler') AS plpgsql_wal,
       max(h.handled) FILTER (WHERE m.variant = 'no projection') AS none_handled,
       max(h.handled) FILTER (WHERE m.variant = 'one inline projection, PL/pgSQL handler') AS plpgsql_handled,
       max(h.handled) FILTER (WHERE m.variant = 'one inline projection, SQL handler') AS sql_handled
  FROM measured m
  JOIN (SELECT workload, variant, clients, synchronous_commit, sum(projected) || ' / ' || sum(events) AS handled
          FROM bench.results GROUP BY workload, variant, clients, synchronous_commit) h
 USING (workload, variant, clients, synchronous_commit)
 WHERE m.workload LIKE 'projections: %' AND m.clients = 16
 GROUP BY m.workload, m.synchronous_commit;

-- Async projections: events per second from create_projection until caught up.
CREATE TEMP VIEW catchup AS
SELECT *, events_processed / nullif(seconds, 0) AS events_per_second FROM bench.projection_catchup;

\if :{?projections_only}
\else
\echo '## Bus: appends with the notifier'
\echo
\echo 'One-event appends (events per second) with the notifier off, and on with a subscriber that LISTENs and reads every new event with read_all; beside them a raw INSERT, and a raw INSERT with a NOTIFY in the same transaction (heard by a listener): what a NOTIFY per transaction costs.'
\echo
\echo '| clients | synchronous_commit | notifier off | notifier on, subscriber listening | on / off | raw INSERT | raw INSERT + NOTIFY | raw + NOTIFY / raw | notifier on / raw + NOTIFY |'
\echo '|---:|---|---:|---:|---:|---:|---:|---:|---:|'
SELECT format('| %s | %s | %s | %s | **%sx** | %s | %s | %sx | %sx |', clients, synchronous_commit,
              round(notifier_off), round(notifier_on), round(notifier_on / notifier_off, 2),
              round(raw), round(raw_notify), round(raw_notify / raw, 2), round(notifier_on / raw_notify, 2))
  FROM bus ORDER BY clients, synchronous_commit DESC;
\echo

\echo '## Bus: latency from append to subscriber'
\echo
\echo 'pgbench --rate appends one timed event a transaction from 16 clients; a subscriber LISTENs on eventsource and on each notification reads the new events with read_all after its checkpoint. Latency: the time read_all returned an event minus the writer''s clock_timestamp() taken in the append statement, before the commit: it includes the commit and its WAL flush (synchronous_commit on), the notifier''s wake-up, the NOTIFY and the read. Of which the subscriber: from the notification arriving to read_all returning the event. Unnotified: appended events no notification led to (read by a last read when the run ended).'
\echo
\echo '| target appends/s | synchronous_commit | achieved appends/s | events read / appended | notifications/s | p50 (ms) | p99 (ms) | max (ms) | of which the subscriber, p50 / p99 (ms) | unnotified |'
\echo '|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|'
SELECT format('| %s | %s | %s | %s / %s | %s | %s | **%s** | %s | %s / %s | %s |', target_rate, synchronous_commit,
              round(achieved_rate), timed_events, transactions, round(notifications_per_second),
              round(p50_ms, 2), round(p99_ms, 2), round(max_ms, 2), round(read_p50_ms, 2), round(read_p99_ms, 2),
              unnotified)
  FROM latency ORDER BY target_rate, synchronous_commit DESC;
\echo

\endif
\if :{?bus_only}
\else
\echo '## Projections: appends with one inline projection'
\echo
\echo 'Appends (events per second) at 16 clients to one of 100,000 streams, with no projection (the log''s trigger `events_inline_projections` disabled) and with one inline projection, called in the appending transaction: a handler that does nothing (the trigger''s own cost), one that upserts a summary row per stream (events, last type, last position) in PL/pgSQL, and the same upsert as a SQL function (the summary rows exist beforehand, so the handler updates one; a warm-up run precedes the measured ones). Handled / appended: the events the upserting handler counted during the runs against the events appended (0 without a projection).'
\echo
\echo '| workload | clients | synchronous_commit | no projection | inline, handler doing nothing | ratio | inline, PL/pgSQL handler | ratio | inline, SQL handler | ratio | WAL bytes per event (none, PL/pgSQL) | handled / appended (none; PL/pgSQL; SQL) |'
\echo '|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---|---|'
SELECT format('| %s | 16 | %s | %s | %s | %s | %s | **%sx** | %s | %s | %s, %s | %s; %s; %s |', substr(workload, 14), synchronous_commit,
              round(none), round(noop), round(noop / none, 2) || 'x', round(plpgsql), round(plpgsql / none, 2),
              round(sql), round(sql / none, 2) || 'x',
              round(none_wal), round(plpgsql_wal), none_handled, plpgsql_handled, sql_handled)
  FROM inline_projection ORDER BY workload DESC, synchronous_commit DESC;
\echo
\echo '## Projections: async catch-up'
\echo
\echo 'An async projection created on the log as it stands, whose handler upserts a summary row per stream (a PL/pgSQL function, or the same upsert as a SQL function); the notifier feeds it from the start of the log, 500 events a transaction. Seconds: from the create_projection call until projection_status showed it caught up (events_behind 0, events_processed the number of matching events; polled every 0.5 s); the worker''s span: its created_at to its last batch''s updated_at; first events after: from the create_projection call to the first events processed (polled every 0.05 s). Read model: the events the summary rows count at the end. Beside them, the same handlers called directly over the same category''s events (read_category, at most 100,000) in one SELECT: the handler''s own cost, without the worker''s batches and checkpoints. projection_status query: one query of the view right after the projection was created, every matching event behind.'
\echo
\echo '| projection | variant | handler | log events | matching events | events processed | read model counts | seconds | events per second | the worker''s span (s) | first events after (s) | projection_status query (ms) | caught up |'
\echo '|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|'
SELECT format('| %s | %s | %s | %s | %s | %s | %s | %s | **%s** | %s | %s | %s | %s |', projection, variant, handler, log_events,
              matching_events, events_processed, projected_events, round(seconds, 1), round(events_per_second),
              coalesce(round(worker_seconds, 1)::text, ''), coalesce(round(first_seconds, 2)::text, ''),
              coalesce(round(status_query_ms)::text, ''),
              CASE WHEN caught_up THEN 'yes' ELSE '**no**' END)
  FROM catchup ORDER BY projection DESC, variant, handler;
\echo
SELECT format('- The async projection of %s, %s handler: **%sx** the handler called directly.',
              a.projection, a.handler, round(a.events_per_second / nullif(d.events_per_second, 0), 2))
  FROM catchup a JOIN catchup d ON d.projection = a.projection AND d.handler = a.handler AND d.variant <> a.variant
 WHERE a.variant = 'async projection'
 ORDER BY a.projection DESC, a.handler;
SELECT format('- %s, SQL handler against PL/pgSQL: %sx.', s.variant, round(s.events_per_second / nullif(p.events_per_second, 0), 2))
  FROM catchup s JOIN catchup p ON p.projection = s.projection AND p.variant = s.variant AND p.handler = 'PL/pgSQL'
 WHERE s.handler = 'SQL'
 ORDER BY s.variant;
\echo
\endif
\echo '## Targets'
\echo
\echo '| target | measured | met |'
\echo '|---|---:|---|'
WITH ratio_targets (target, measured, threshold) AS (
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
    UNION ALL
    SELECT format('bus: one-event append, %s clients, synchronous_commit %s: notifier on with a subscriber at least 0.95x notifier off',
                  clients, synchronous_commit),
           notifier_on / notifier_off, 0.95
      FROM bus WHERE clients = 16
    UNION ALL
    SELECT format('projections: one-event append, 16 clients, synchronous_commit %s: one inline projection (PL/pgSQL upsert) at least 0.8x no projection (our own target)',
                  synchronous_commit),
           plpgsql / none, 0.8
      FROM inline_projection WHERE workload = 'projections: append one event'
), targets (target, measured, shown, met) AS (
    SELECT target, measured, round(measured, 2) || 'x', measured >= threshold FROM ratio_targets
    UNION ALL
    SELECT format('bus: latency from append to subscriber at %s appends/s (%s achieved), synchronous_commit %s: p99 under 20 ms',
                  target_rate, round(achieved_rate), synchronous_commit),
           p99_ms, round(p99_ms, 2) || ' ms', p99_ms < 20
      FROM latency
)
SELECT format('| %s | %s | %s |', target, shown, CASE WHEN met THEN 'yes' ELSE '**no**' END)
  FROM targets ORDER BY target;
