-- eventsource--0.7.0--0.8.0.sql: upgrade from 0.7.0 to 0.8.0.
--
-- From 0.8.0 on, a fresh install runs one script built from sql/source/ (the current definition
-- of every object) instead of 0.1.0's and every upgrade after it; this script brings a database
-- installed earlier to the same objects (test/sql/upgrade.sql compares the two).

\echo Use "ALTER EXTENSION eventsource UPDATE TO '0.8.0'" to load this file. \quit

-- ---------------------------------------------------------------------------------------------
-- Comments that said less than the code does: the log is written by the lifecycle functions too
-- and scavenge deletes from it; the streams carry their lifecycle; snapshots are removed by
-- deletes and scavenge; every trigger says what it does.
-- ---------------------------------------------------------------------------------------------

COMMENT ON TABLE eventsource.events IS
    'The event log. Written by append and append_events, and by delete_stream, tombstone_stream and set_stream_metadata (their audit events in the $streams stream); never updated; only scavenge deletes, the events that deletes and retention settings hide once no subscription or async projection is owed them.';

COMMENT ON TABLE eventsource.streams IS
    'One row per stream: its category, its current stream version (the number of events appended to it), its retention settings, delete and tombstone, and the last transaction that wrote it.';

COMMENT ON TABLE eventsource.snapshots IS
    'Aggregate state as of a stream version, one row per (stream, stream version, schema version): written by eventsource.save_snapshot, which keeps the newest eventsource.snapshots_to_keep of a stream; removed by delete_snapshots, delete_stream, tombstone_stream and scavenge.';

COMMENT ON FUNCTION eventsource.reject_event_change() IS
    'Trigger function that guards eventsource.events: raises an error on UPDATE, DELETE and TRUNCATE, whoever runs them, except for the DELETE of eventsource.scavenge.';

COMMENT ON TRIGGER events_append_only ON eventsource.events IS
    'Refuses every UPDATE of a recorded event, and every DELETE but scavenge''s of the events that deletes and retention settings hide (eventsource.reject_event_change).';

COMMENT ON TRIGGER events_append_only_truncate ON eventsource.events IS
    'Refuses every TRUNCATE of the log (eventsource.reject_event_change).';

COMMENT ON TRIGGER events_inline_projections ON eventsource.events IS
    'Feeds the events each INSERT appends to the running inline projections (eventsource.run_inline_projections); enabled while one exists, disabled otherwise.';

COMMENT ON TRIGGER projections_synchronize_inline ON eventsource.projections IS
    'After each statement that changes the projections, enables the log''s inline trigger while a running inline projection exists and disables it otherwise (eventsource.synchronize_inline_projections).';
