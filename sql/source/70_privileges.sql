-- 70_privileges.sql: who may do what.
--
-- PUBLIC gets nothing. eventsource_reader reads, eventsource_writer (a reader) appends and saves
-- snapshots, eventsource_admin (a writer) deletes, sets retention, scavenges and administers
-- subscriptions and projections. No role may write a table directly, and the functions that are
-- internal (type input and output, triggers, stream_log_transaction_id) are granted to no one.

REVOKE ALL ON ALL TABLES IN SCHEMA eventsource FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA eventsource FROM PUBLIC;
REVOKE ALL ON ALL ROUTINES IN SCHEMA eventsource FROM PUBLIC;

-- ---------------------------------------------------------------------------------------------
-- eventsource_reader
-- ---------------------------------------------------------------------------------------------

GRANT SELECT ON
    eventsource.streams,
    eventsource.events,
    eventsource.log_epochs,
    eventsource.snapshots,
    eventsource.subscriptions,
    eventsource.subscription_members,
    eventsource.projections,
    eventsource.projection_dead_letters,
    eventsource.subscription_status,
    eventsource.projection_status,
    eventsource.stream_status,
    eventsource.category_statistics,
    eventsource.event_type_statistics,
    eventsource.snapshot_statistics,
    eventsource.visibility_horizon,
    eventsource.store_statistics
    TO eventsource_reader;

GRANT EXECUTE ON FUNCTION
    eventsource.checkpoint(xid8, bigint),
    eventsource.checkpoint_transaction_id(eventsource.checkpoint),
    eventsource.checkpoint_global_position(eventsource.checkpoint),
    eventsource.checkpoint_cmp(eventsource.checkpoint, eventsource.checkpoint),
    eventsource.checkpoint_lt(eventsource.checkpoint, eventsource.checkpoint),
    eventsource.checkpoint_le(eventsource.checkpoint, eventsource.checkpoint),
    eventsource.checkpoint_eq(eventsource.checkpoint, eventsource.checkpoint),
    eventsource.checkpoint_ne(eventsource.checkpoint, eventsource.checkpoint),
    eventsource.checkpoint_ge(eventsource.checkpoint, eventsource.checkpoint),
    eventsource.checkpoint_gt(eventsource.checkpoint, eventsource.checkpoint),
    eventsource.category(text),
    eventsource.stream_version(text),
    eventsource.read_stream(text, bigint, integer, text),
    eventsource.read_all(eventsource.checkpoint, integer, text, text[]),
    eventsource.read_category(text, eventsource.checkpoint, integer, text[]),
    eventsource.read_by_query(jsonb, eventsource.checkpoint, integer),
    eventsource.log_horizon(),
    eventsource.events_behind(eventsource.checkpoint, text, text[], integer, integer, jsonb),
    eventsource.event_matches_query(text, text[], jsonb),
    eventsource.load_snapshot(text, bigint, integer),
    eventsource.load_stream(text, bigint, integer),
    eventsource.consumer_group_member(text, integer),
    eventsource.poll(text, integer, integer, integer),
    eventsource.ack(text, eventsource.checkpoint, integer, uuid),
    eventsource.notifier_status(),
    eventsource.first_visible_version(eventsource.streams),
    eventsource.stream_metadata(text),
    eventsource.statistics()
    TO eventsource_reader;

-- ---------------------------------------------------------------------------------------------
-- eventsource_writer
-- ---------------------------------------------------------------------------------------------

GRANT EXECUTE ON FUNCTION
    eventsource.append(text, text, jsonb, jsonb, bigint, uuid, text[]),
    eventsource.append_events(text, jsonb, bigint),
    eventsource.append_to_streams(jsonb, jsonb),
    eventsource.save_snapshot(text, bigint, jsonb, integer)
    TO eventsource_writer;

-- ---------------------------------------------------------------------------------------------
-- eventsource_admin
-- ---------------------------------------------------------------------------------------------

GRANT EXECUTE ON FUNCTION
    eventsource.delete_snapshots(text, integer),
    eventsource.create_subscription(text, text, text[], text, integer, regrole, jsonb),
    eventsource.drop_subscription(text),
    eventsource.set_subscription_owner(text, regrole),
    eventsource.create_projection(text, regprocedure, text[], text, text, regprocedure, text, integer, text, jsonb),
    eventsource.drop_projection(text),
    eventsource.pause_projection(text),
    eventsource.resume_projection(text),
    eventsource.rebuild_projection(text),
    eventsource.set_stream_metadata(text, jsonb),
    eventsource.delete_stream(text, bigint),
    eventsource.tombstone_stream(text, bigint),
    eventsource.scavenge(integer),
    eventsource.reset_statistics()
    TO eventsource_admin;
GRANT EXECUTE ON PROCEDURE eventsource.scavenge_all(integer) TO eventsource_admin;
