-- projections.sql: pgTAP tests of projections: an aborted append leaves log and read model
-- unchanged; an async projection catches up in the background and equals the inline one, and so
-- does a rebuild; failures are retried, then stop the projection or go to the dead letters.
-- Runs in database eventsource_tap, which the suite's notifier serves (see test/run).
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
DROP EXTENSION IF EXISTS eventsource CASCADE;
CREATE EXTENSION eventsource;
DROP SCHEMA IF EXISTS tap_model CASCADE;
RESET client_min_messages;

SELECT plan(21);

CREATE SCHEMA tap_model;
CREATE TABLE tap_model.inline_totals (stream_id text PRIMARY KEY, total numeric NOT NULL, events int NOT NULL);
CREATE TABLE tap_model.async_totals (stream_id text PRIMARY KEY, total numeric NOT NULL, events int NOT NULL);
CREATE FUNCTION tap_model.add_to(target text, e eventsource.event) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF e.data->>'poison' = 'yes' THEN
        RAISE EXCEPTION 'poisoned event in %', e.stream_id;
    END IF;
    EXECUTE format('INSERT INTO tap_model.%I AS t VALUES ($1, $2, 1)
                    ON CONFLICT (stream_id) DO UPDATE SET total = t.total + $2, events = t.events + 1', target)
      USING e.stream_id, COALESCE((e.data->>'amount')::numeric, 0);
END
$$;
CREATE FUNCTION tap_model.inline_handler(e eventsource.event) RETURNS void LANGUAGE sql AS $$ SELECT tap_model.add_to('inline_totals', e) $$;
CREATE FUNCTION tap_model.async_handler(e eventsource.event) RETURNS void LANGUAGE sql AS $$ SELECT tap_model.add_to('async_totals', e) $$;
CREATE FUNCTION tap_model.reset_inline() RETURNS void LANGUAGE sql AS 'TRUNCATE tap_model.inline_totals';
CREATE FUNCTION tap_model.reset_async() RETURNS void LANGUAGE sql AS 'TRUNCATE tap_model.async_totals';
-- Waits (up to 60 s) until an async projection has nothing left to do or has failed.
CREATE FUNCTION tap_model.settled(projection text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 1..600 LOOP
        -- (events_behind counts only visible events: nothing may be held back by a running transaction)
        IF EXISTS (SELECT FROM eventsource.projection_status s
                    WHERE s.name = projection
                      AND (s.status = 'failed' OR (s.events_behind = 0 AND s.attempts = 0))
                      AND NOT EXISTS (SELECT FROM eventsource.events e
                                       WHERE e.transaction_id >= eventsource.log_horizon())) THEN
            RETURN true;
        END IF;
        PERFORM pg_sleep(0.1);
    END LOOP;
    RETURN false;
END
$$;

SELECT has_table('eventsource', 'projections', 'the projections');
SELECT has_view('eventsource', 'projection_status', 'their status');
SELECT has_function('eventsource', 'create_projection', ARRAY['text', 'regprocedure', 'text[]', 'text', 'text', 'regprocedure', 'text', 'integer', 'text', 'jsonb']);

\o /dev/null
SELECT eventsource.create_projection('inline-totals', 'tap_model.inline_handler(eventsource.event)',
                                     category => 'account', reset_handler => 'tap_model.reset_inline()');
SELECT setseed(0.7);
SELECT eventsource.append('account-' || (random() * 20)::int, 'Deposited', jsonb_build_object('amount', (random() * 100)::int))
  FROM generate_series(1, 300);
SELECT eventsource.append('other-1', 'Noise', '{}');
\o

-- Inline: consistent with the log after every append; an aborted append changes neither.
SELECT results_eq($$SELECT stream_id, sum((data->>'amount')::numeric), count(*)::int FROM eventsource.events
                     WHERE stream_id LIKE 'account-%' GROUP BY stream_id ORDER BY stream_id$$,
                  $$SELECT stream_id, total, events FROM tap_model.inline_totals ORDER BY stream_id$$,
                  'the inline read model equals the log');
CREATE TEMP TABLE totals_before AS SELECT * FROM tap_model.inline_totals;
SELECT throws_like($$SELECT eventsource.append('account-1', 'Deposited', '{"amount": 1, "poison": "yes"}')$$,
                   'poisoned event in account-1', 'a handler error aborts the append');
SELECT is((SELECT count(*) FROM eventsource.events WHERE data ? 'poison'), 0::bigint, 'the log is unchanged');
SELECT results_eq($$SELECT * FROM tap_model.inline_totals ORDER BY stream_id$$, $$SELECT * FROM totals_before ORDER BY stream_id$$,
                  'the read model is unchanged');

-- Async: the background worker catches up from the beginning of the log; same result as inline.
\o /dev/null
SELECT eventsource.create_projection('async-totals', 'tap_model.async_handler(eventsource.event)',
                                     category => 'account', mode => 'async', reset_handler => 'tap_model.reset_async()');
\o
SELECT ok(tap_model.settled('async-totals'), 'the async projection catches up');
SELECT results_eq($$SELECT * FROM tap_model.async_totals ORDER BY stream_id$$,
                  $$SELECT * FROM tap_model.inline_totals ORDER BY stream_id$$, 'async equals inline');
SELECT is((SELECT events_processed FROM eventsource.projection_status WHERE name = 'async-totals'), 300::bigint,
          'it processed every matching event once');
\o /dev/null
SELECT eventsource.append('account-' || n, 'Deposited', '{"amount": 2}') FROM generate_series(1, 5) AS n;
\o
SELECT ok(tap_model.settled('async-totals'), 'new events are projected');
SELECT results_eq($$SELECT * FROM tap_model.async_totals ORDER BY stream_id$$,
                  $$SELECT * FROM tap_model.inline_totals ORDER BY stream_id$$, 'still equal');

-- Rebuilds: inline at once, async in the background; both equal the log again.
SELECT is(eventsource.rebuild_projection('inline-totals'), 305::bigint, 'an inline rebuild replays every matching event');
SELECT is(eventsource.rebuild_projection('async-totals'), 0::bigint, 'an async rebuild is left to the worker');
SELECT ok(tap_model.settled('async-totals'), 'the async rebuild completes');
SELECT results_eq($$SELECT * FROM tap_model.async_totals ORDER BY stream_id$$,
                  $$SELECT * FROM tap_model.inline_totals ORDER BY stream_id$$, 'rebuilt async equals rebuilt inline');

-- Failures: a poisoned event (appended with no inline projection in the way).
\o /dev/null
SELECT eventsource.drop_projection('inline-totals');
SELECT eventsource.create_projection('async-dead-letter', 'tap_model.async_handler(eventsource.event)',
                                     category => 'poisoned', mode => 'async', on_failure => 'dead_letter', max_attempts => 2);
SELECT eventsource.append('poisoned-1', 'Deposited', '{"amount": 1, "poison": "yes"}');
SELECT eventsource.append('poisoned-1', 'Deposited', '{"amount": 3}');
\o
SELECT ok(tap_model.settled('async-dead-letter'), 'a projection with dead letters goes on');
SELECT results_eq($$SELECT global_position, error, attempts FROM eventsource.projection_dead_letters
                     WHERE projection_name = 'async-dead-letter'$$,
                  $$SELECT global_position, 'poisoned event in poisoned-1', 2 FROM eventsource.events
                     WHERE stream_id = 'poisoned-1' AND stream_version = 1$$,
                  'the poisoned event is a dead letter with its error, after max_attempts attempts');
SELECT is((SELECT total FROM tap_model.async_totals WHERE stream_id = 'poisoned-1'), 3::numeric, 'the events after it are projected');
-- With on_failure 'stop' the async projection stops as failed at the event (the default).
\o /dev/null
SELECT eventsource.drop_projection('async-dead-letter');
SELECT eventsource.create_projection('async-stop', 'tap_model.async_handler(eventsource.event)',
                                     category => 'poisoned', mode => 'async', max_attempts => 2);
\o
SELECT ok(tap_model.settled('async-stop'), 'a projection without dead letters settles');
SELECT results_eq($$SELECT status, last_error FROM eventsource.projection_status WHERE name = 'async-stop'$$,
                  $$VALUES ('failed', 'poisoned event in poisoned-1')$$, 'it stops as failed, with the error');

SELECT * FROM finish();
SET client_min_messages = warning;
DROP SCHEMA tap_model CASCADE;

