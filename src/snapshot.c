/*-------------------------------------------------------------------------
 *
 * snapshot.c
 *	  Snapshots: the state of an aggregate as of a stream version, so that
 *	  a long stream loads from its newest snapshot plus the events after it.
 *	  save_snapshot, load_snapshot, load_stream and delete_snapshots.
 *
 * A snapshot is keyed by (stream, stream version, schema version): the
 * schema version is the shape of the client's state, and a client that
 * changes the shape bumps it so that older snapshots are no longer loaded.
 *
 * A snapshot is of a version stream reads show, or of the one just before
 * the first of them when retention (truncate_before, max_count, max_age)
 * hides the versions before: that snapshot stands for the history retention
 * trims, which is what retention is for.  Nothing of a deleted life is ever
 * used: not a version at or below deleted_through, which delete_stream and
 * tombstone_stream set (FIRST_SNAPSHOT_VERSION).  save_snapshot checks the
 * version against the stream's row locked FOR KEY SHARE, the committed (or
 * the caller's own) state: the lock does not conflict with an append's
 * update of the row, so appends never wait for a snapshot, but it does with
 * the FOR UPDATE of delete_stream, tombstone_stream and set_stream_metadata,
 * so a save either commits before one of those starts (which then deletes or
 * hides the snapshot) or sees its outcome.  The loads use only a snapshot
 * from the first snapshot version on, so that one a delete could not see (a
 * save committed after a repeatable read delete began) is never served, nor
 * one of an earlier life of a soft-deleted stream, nor one that retention
 * has since moved past; scavenge removes such snapshots (lifecycle.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "utils/builtins.h"

#include "arguments.h"
#include "eventsource.h"
#include "kept_plan.h"
#include "streams.h"

PG_FUNCTION_INFO_V1(eventsource_delete_snapshots);

static KeptPlan save_plan = {
	"INSERT INTO eventsource.snapshots AS s (stream_id, stream_version, schema_version, state)"
	" VALUES ($1, $2, $3, $4)"
	" ON CONFLICT (stream_id, stream_version, schema_version)"
	" DO UPDATE SET state = excluded.state, created_at = excluded.created_at",
	4, {TEXTOID, INT8OID, INT4OID, JSONBOID}
};

/* Deletes the snapshots of stream $1 older than its $2th newest. */
static KeptPlan retention_plan = {
	"DELETE FROM eventsource.snapshots s"
	" WHERE s.stream_id OPERATOR(pg_catalog.=) $1"
	"   AND (s.stream_version, s.schema_version) OPERATOR(pg_catalog.<)"
	"       (SELECT k.stream_version, k.schema_version FROM eventsource.snapshots k"
	"         WHERE k.stream_id OPERATOR(pg_catalog.=) $1"
	"         ORDER BY k.stream_version DESC, k.schema_version DESC"
	"        OFFSET $2 OPERATOR(pg_catalog.-) 1 LIMIT 1)",
	2, {TEXTOID, INT4OID}
};

/*
 * The stream's current version, the lowest version a snapshot of it may be
 * of and the version it was last deleted at (0: never), from its row locked
 * FOR KEY SHARE (see the top of the file); no row when the stream does not
 * exist.  [1] is with the stream lifecycle (0.5.0 on), [0] for older
 * versions of the extension, where every version is visible.
 */
#define STREAM_VERSIONS(first_snapshot_version, deleted_through) \
	"SELECT s.stream_version, " first_snapshot_version ", " deleted_through \
	"  FROM eventsource.streams s WHERE s.stream_id OPERATOR(pg_catalog.=) $1 FOR KEY SHARE"

static KeptPlan stream_versions_plans[2] = {
	{STREAM_VERSIONS("1::bigint", "0::bigint"), 1, {TEXTOID}},
	{STREAM_VERSIONS(FIRST_SNAPSHOT_VERSION("s"), "COALESCE(s.deleted_through, 0)"), 1, {TEXTOID}}
};

/*
 * The newest snapshot of stream $1 at or below version $2, of schema version
 * $3 if not null; usable: from the first snapshot version on (the
 * lifecycle's [1] of each pair below).  The usable versions are the stream's
 * newest, so when the newest snapshot is below them every older one is too.
 */
#define NEWEST_SNAPSHOT(visible) \
	"SELECT s.stream_id, s.stream_version, s.schema_version, s.state, s.created_at" \
	"  FROM eventsource.snapshots s" \
	" WHERE s.stream_id OPERATOR(pg_catalog.=) $1 AND s.stream_version OPERATOR(pg_catalog.<=) $2" \
	"   AND ($3::integer IS NULL OR s.schema_version OPERATOR(pg_catalog.=) $3)" visible \
	" ORDER BY s.stream_version DESC, s.schema_version DESC LIMIT 1"
#define USABLE_SNAPSHOT "   AND s.stream_version OPERATOR(pg_catalog.>=) " FIRST_SNAPSHOT_VERSION_OF_STREAM_1

static KeptPlan load_snapshot_plans[2] = {
	{NEWEST_SNAPSHOT(""), 3, {TEXTOID, INT8OID, INT4OID}},
	{NEWEST_SNAPSHOT(USABLE_SNAPSHOT), 3, {TEXTOID, INT8OID, INT4OID}}
};

/*
 * load_stream runs two plans in one snapshot: the newest usable snapshot,
 * then the events after it.  Each is an ordered index scan; one statement
 * with UNION ALL would have to sort the whole stream to guarantee the order.
 * With the stream lifecycle both honour deletes and retention: the snapshot
 * is a usable one, and the events after it are visible ones (so after a
 * snapshot just before the first visible version, all of them).
 */
#define VISIBLE_EVENTS "   AND e.stream_version OPERATOR(pg_catalog.>=) " FIRST_VISIBLE_VERSION_OF_STREAM_1
#define LOAD_STREAM_SNAPSHOT(visible) \
	"SELECT 'snapshot'::pg_catalog.text, n.stream_version, n.schema_version, NULL::pg_catalog.text," \
	"       n.state, NULL::pg_catalog.jsonb, NULL::pg_catalog.uuid, NULL::bigint, n.created_at" \
	"  FROM (" NEWEST_SNAPSHOT(visible) ") n"
#define LOAD_STREAM_EVENTS(visible_snapshot, visible_events) \
	"SELECT 'event'::pg_catalog.text, e.stream_version, NULL::integer, e.event_type," \
	"       e.data, e.metadata, e.event_id, e.global_position, e.recorded_at" \
	"  FROM eventsource.events e" \
	" WHERE e.stream_id OPERATOR(pg_catalog.=) $1 AND e.stream_version OPERATOR(pg_catalog.<=) $2" \
	"   AND e.stream_version OPERATOR(pg_catalog.>)" \
	"       COALESCE((SELECT n.stream_version FROM (" NEWEST_SNAPSHOT(visible_snapshot) ") n), 0)" \
	visible_events \
	" ORDER BY e.stream_version"

static KeptPlan load_stream_snapshot_plans[2] = {
	{LOAD_STREAM_SNAPSHOT(""), 3, {TEXTOID, INT8OID, INT4OID}},
	{LOAD_STREAM_SNAPSHOT(USABLE_SNAPSHOT), 3, {TEXTOID, INT8OID, INT4OID}}
};

static KeptPlan load_stream_events_plans[2] = {
	{LOAD_STREAM_EVENTS("", ""), 3, {TEXTOID, INT8OID, INT4OID}},
	{LOAD_STREAM_EVENTS(USABLE_SNAPSHOT, VISIBLE_EVENTS), 3, {TEXTOID, INT8OID, INT4OID}}
};

static KeptPlan delete_plan = {
	"DELETE FROM eventsource.snapshots s"
	" WHERE ($1::pg_catalog.text IS NULL OR s.stream_id OPERATOR(pg_catalog.=) $1)"
	"   AND ($2::integer IS NULL OR s.schema_version OPERATOR(pg_catalog.<) $2)",
	2, {TEXTOID, INT4OID},

	/* One stream's snapshots by key, or all of them: plan with the values. */
	CURSOR_OPT_CUSTOM_PLAN
};

/*
 * Raises the error for a version save_snapshot may not snapshot: one that
 * does not exist, or that is below the first snapshot version (deleted, or
 * hidden by retention beyond the version just before the first visible one),
 * for they are the same to a snapshot.
 */
static void
raise_no_version_to_snapshot(text *stream_id, int64 stream_version, int64 first_snapshot_version,
							 int64 current_version, int64 deleted_through)
{
	char	   *stream_name = text_to_cstring(stream_id);

	ereport(ERROR,
			(errcode(ERRCODE_EVENTSOURCE_SNAPSHOT_VERSION),
			 errmsg("stream \"%s\" has no version " INT64_FORMAT " to snapshot",
					stream_name, stream_version),
			 current_version == 0 ?
			 errdetail("Stream \"%s\" does not exist.", stream_name) :
			 deleted_through == current_version ?
			 errdetail("Stream \"%s\" was deleted or tombstoned at its current version, " INT64_FORMAT ".",
					   stream_name, current_version) :
			 first_snapshot_version > current_version ?
			 errdetail("Stream \"%s\" can have snapshots from version " INT64_FORMAT " on; its current version is " INT64_FORMAT ".",
					   stream_name, first_snapshot_version, current_version) :
			 first_snapshot_version > 1 ?
			 errdetail("Stream \"%s\" can have snapshots of versions " INT64_FORMAT " to " INT64_FORMAT ".",
					   stream_name, first_snapshot_version, current_version) :
			 errdetail("The current version of stream \"%s\" is " INT64_FORMAT ".",
					   stream_name, current_version),
			 errhint("A snapshot's version must be one that stream reads show, or the one just before the first of them when retention hides the versions before; never a deleted or tombstoned version.")));
}

/*
 * eventsource.save_snapshot(stream_id, stream_version, state, schema_version)
 * returns void.  (schema is the extension's; schema_version the state's.)
 */
static Datum
save_snapshot(FunctionCallInfo fcinfo, StreamsSchema schema)
{
	text	   *stream_id = checked_stream_id(fcinfo, 0, false);
	int64		stream_version;
	int64		current_version = 0;
	int64		first_snapshot_version = 1;
	int64		deleted_through = 0;
	Datum		values[4];

	check_not_null(fcinfo, 1, "stream_version");
	check_not_null(fcinfo, 2, "state");
	check_not_null(fcinfo, 3, "schema_version");
	stream_version = PG_GETARG_INT64(1);

	values[0] = PointerGetDatum(stream_id);
	values[1] = Int64GetDatum(stream_version);
	values[2] = Int32GetDatum(checked_schema_version(fcinfo, 3, "schema_version"));
	values[3] = PG_GETARG_DATUM(2);

	PreventCommandIfReadOnly("eventsource.save_snapshot()");
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	if (run_kept_plan(&stream_versions_plans[streams_have_lifecycle(schema)], values, NULL, false) > 0)
	{
		bool		isnull;

		current_version = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		first_snapshot_version = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
		deleted_through = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull));
	}
	if (stream_version < first_snapshot_version || stream_version > current_version)
		raise_no_version_to_snapshot(stream_id, stream_version, first_snapshot_version,
									 current_version, deleted_through);

	run_kept_plan(&save_plan, values, NULL, false);
	if (eventsource_snapshots_to_keep > 0)
	{
		values[1] = Int32GetDatum(eventsource_snapshots_to_keep);
		run_kept_plan(&retention_plan, values, NULL, false);
	}

	SPI_finish();
	PG_RETURN_VOID();
}

SCHEMA_VERSIONED_FUNCTION(eventsource_save_snapshot, save_snapshot);

/*
 * The arguments load_snapshot and load_stream share: stream_id, max_version
 * (NULL: no limit) and schema_version (NULL: any).
 */
static void
snapshot_load_arguments(FunctionCallInfo fcinfo, Datum *values, bool *nulls)
{
	values[0] = PointerGetDatum(checked_stream_id(fcinfo, 0, false));
	nulls[0] = false;

	values[1] = Int64GetDatum(optional_stream_version(fcinfo, 1, "max_version", PG_INT64_MAX));
	nulls[1] = false;

	nulls[2] = PG_ARGISNULL(2);
	values[2] = nulls[2] ? (Datum) 0 :
		Int32GetDatum(checked_schema_version(fcinfo, 2, "schema_version"));
}

/*
 * eventsource.load_snapshot(stream_id, max_version, schema_version) returns
 * setof eventsource.snapshots (one row or none).
 */
static Datum
load_snapshot(FunctionCallInfo fcinfo, StreamsSchema schema)
{
	Datum		values[3];
	bool		nulls[3];

	snapshot_load_arguments(fcinfo, values, nulls);
	materialize_read(fcinfo, &load_snapshot_plans[streams_have_lifecycle(schema)], values, nulls);
	return (Datum) 0;
}

SCHEMA_VERSIONED_FUNCTION(eventsource_load_snapshot, load_snapshot);

/*
 * eventsource.load_stream(stream_id, max_version, schema_version) returns
 * the newest usable snapshot and the events after it.
 */
static Datum
load_stream(FunctionCallInfo fcinfo, StreamsSchema schema)
{
	bool		lifecycle = streams_have_lifecycle(schema);
	KeptPlan   *plans[2] = {&load_stream_snapshot_plans[lifecycle], &load_stream_events_plans[lifecycle]};
	Datum		values[3];
	bool		nulls[3];

	snapshot_load_arguments(fcinfo, values, nulls);
	materialize_reads(fcinfo, plans, 2, values, nulls);
	return (Datum) 0;
}

SCHEMA_VERSIONED_FUNCTION(eventsource_load_stream, load_stream);

/*
 * eventsource.delete_snapshots(stream_id, below_schema_version) returns the
 * number of snapshots deleted.
 */
Datum
eventsource_delete_snapshots(PG_FUNCTION_ARGS)
{
	Datum		values[2] = {0, 0};
	bool		nulls[2] = {true, true};
	uint64		deleted;

	if (!PG_ARGISNULL(0))
	{
		values[0] = PointerGetDatum(checked_stream_id(fcinfo, 0, false));
		nulls[0] = false;
	}
	if (!PG_ARGISNULL(1))
	{
		values[1] = Int32GetDatum(checked_schema_version(fcinfo, 1, "below_schema_version"));
		nulls[1] = false;
	}

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	deleted = run_kept_plan(&delete_plan, values, nulls, false);
	SPI_finish();
	PG_RETURN_INT64((int64) deleted);
}
