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
 * A snapshot is of a version stream reads show: deleted, tombstoned and
 * truncated versions are gone for snapshots as for reads.  save_snapshot
 * checks the version against the stream's row locked FOR KEY SHARE, the
 * committed (or the caller's own) state: the lock does not conflict with an
 * append's update of the row, so appends never wait for a snapshot, but it
 * does with the FOR UPDATE of delete_stream, tombstone_stream and
 * set_stream_metadata, so a save either commits before one of those starts
 * (which then deletes or hides the snapshot) or sees its outcome.  The loads
 * use only a snapshot of a visible version, so that one a delete could not
 * see (a save committed after a repeatable read delete began) is never
 * served, nor one of an earlier life of a soft-deleted stream; scavenge
 * removes such snapshots (lifecycle.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "utils/builtins.h"

#include "eventsource.h"

PG_FUNCTION_INFO_V1(eventsource_save_snapshot);
PG_FUNCTION_INFO_V1(eventsource_load_snapshot);
PG_FUNCTION_INFO_V1(eventsource_load_stream);
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
 * The stream's current version and the first version stream reads show,
 * from its row locked FOR KEY SHARE (see the top of the file); no row when
 * the stream does not exist.  [1] is with the stream lifecycle (0.5.0 on),
 * [0] for older versions of the extension, where every version is visible.
 */
#define STREAM_VERSIONS(first_visible) \
	"SELECT s.stream_version, " first_visible " FROM eventsource.streams s" \
	" WHERE s.stream_id OPERATOR(pg_catalog.=) $1 FOR KEY SHARE"

static KeptPlan stream_versions_plans[2] = {
	{STREAM_VERSIONS("1::bigint"), 1, {TEXTOID}},
	{STREAM_VERSIONS("eventsource.first_visible_version(s)"), 1, {TEXTOID}}
};

/*
 * The newest snapshot of stream $1 at or below version $2, of schema version
 * $3 if not null; visible: of a version stream reads show (the lifecycle's
 * [1] of each pair below).  The visible versions are the stream's newest, so
 * when the newest snapshot is of a hidden version every older one is too.
 */
#define NEWEST_SNAPSHOT(visible) \
	"SELECT s.stream_id, s.stream_version, s.schema_version, s.state, s.created_at" \
	"  FROM eventsource.snapshots s" \
	" WHERE s.stream_id OPERATOR(pg_catalog.=) $1 AND s.stream_version OPERATOR(pg_catalog.<=) $2" \
	"   AND ($3::integer IS NULL OR s.schema_version OPERATOR(pg_catalog.=) $3)" visible \
	" ORDER BY s.stream_version DESC, s.schema_version DESC LIMIT 1"
#define VISIBLE_SNAPSHOT "   AND s.stream_version OPERATOR(pg_catalog.>=) " FIRST_VISIBLE_VERSION_OF_STREAM_1

static KeptPlan load_snapshot_plans[2] = {
	{NEWEST_SNAPSHOT(""), 3, {TEXTOID, INT8OID, INT4OID}},
	{NEWEST_SNAPSHOT(VISIBLE_SNAPSHOT), 3, {TEXTOID, INT8OID, INT4OID}}
};

/*
 * load_stream runs two plans in one snapshot: the newest usable snapshot,
 * then the events after it.  Each is an ordered index scan; one statement
 * with UNION ALL would have to sort the whole stream to guarantee the order.
 * With the stream lifecycle both honour deletes and retention: the snapshot
 * is of a visible version, and the events after it are visible ones.
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
	{LOAD_STREAM_SNAPSHOT(VISIBLE_SNAPSHOT), 3, {TEXTOID, INT8OID, INT4OID}}
};

static KeptPlan load_stream_events_plans[2] = {
	{LOAD_STREAM_EVENTS("", ""), 3, {TEXTOID, INT8OID, INT4OID}},
	{LOAD_STREAM_EVENTS(VISIBLE_SNAPSHOT, VISIBLE_EVENTS), 3, {TEXTOID, INT8OID, INT4OID}}
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
 * A schema version argument: positive.  The caller handles NULL.
 */
static int32
checked_schema_version(FunctionCallInfo fcinfo, int argno, const char *name)
{
	int32		schema_version = PG_GETARG_INT32(argno);

	if (schema_version < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be positive", name),
				 errdetail("%s was %d.", name, schema_version)));
	return schema_version;
}

/*
 * Raises the error for a version save_snapshot may not snapshot: one that
 * does not exist, or that stream reads no longer show (first_visible above
 * it), for they are the same to a snapshot.
 */
static void
raise_no_version_to_snapshot(text *stream_id, int64 stream_version,
							 int64 first_visible, int64 current_version)
{
	char	   *stream_name = text_to_cstring(stream_id);

	ereport(ERROR,
			(errcode(ERRCODE_EVENTSOURCE_SNAPSHOT_VERSION),
			 errmsg("stream \"%s\" has no version " INT64_FORMAT " to snapshot",
					stream_name, stream_version),
			 current_version == 0 ?
			 errdetail("Stream \"%s\" does not exist.", stream_name) :
			 first_visible > current_version ?
			 errdetail("Stream \"%s\" shows none of its " INT64_FORMAT " versions: it was deleted, or its retention settings hide them.",
					   stream_name, current_version) :
			 first_visible > 1 ?
			 errdetail("Stream \"%s\" shows its versions from " INT64_FORMAT " on; its current version is " INT64_FORMAT ".",
					   stream_name, first_visible, current_version) :
			 errdetail("The current version of stream \"%s\" is " INT64_FORMAT ".",
					   stream_name, current_version),
			 errhint("A snapshot's version must be one that stream reads show: from the stream's first visible version to its current version.")));
}

/*
 * eventsource.save_snapshot(stream_id, stream_version, state, schema_version)
 * returns void.
 */
Datum
eventsource_save_snapshot(PG_FUNCTION_ARGS)
{
	text	   *stream_id = checked_stream_id(fcinfo, 0, false);
	int64		stream_version;
	int64		current_version = 0;
	int64		first_visible = 1;
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

	if (run_kept_plan(&stream_versions_plans[stream_lifecycle_installed()], values, NULL, false) > 0)
	{
		bool		isnull;

		current_version = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		first_visible = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	}
	if (stream_version < first_visible || stream_version > current_version)
		raise_no_version_to_snapshot(stream_id, stream_version, first_visible, current_version);

	run_kept_plan(&save_plan, values, NULL, false);
	if (eventsource_snapshots_to_keep > 0)
	{
		values[1] = Int32GetDatum(eventsource_snapshots_to_keep);
		run_kept_plan(&retention_plan, values, NULL, false);
	}

	SPI_finish();
	PG_RETURN_VOID();
}

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
Datum
eventsource_load_snapshot(PG_FUNCTION_ARGS)
{
	Datum		values[3];
	bool		nulls[3];

	snapshot_load_arguments(fcinfo, values, nulls);
	materialize_read(fcinfo, &load_snapshot_plans[stream_lifecycle_installed()], values, nulls);
	return (Datum) 0;
}

/*
 * eventsource.load_stream(stream_id, max_version, schema_version) returns
 * the newest usable snapshot and the events after it.
 */
Datum
eventsource_load_stream(PG_FUNCTION_ARGS)
{
	bool		lifecycle = stream_lifecycle_installed();
	KeptPlan   *plans[2] = {&load_stream_snapshot_plans[lifecycle], &load_stream_events_plans[lifecycle]};
	Datum		values[3];
	bool		nulls[3];

	snapshot_load_arguments(fcinfo, values, nulls);
	materialize_reads(fcinfo, plans, 2, values, nulls);
	return (Datum) 0;
}

/*
 * eventsource.delete_snapshots(stream_id, below_schema_version) returns the
 * number of snapshots deleted.
 */
Datum
eventsource_delete_snapshots(PG_FUNCTION_ARGS)
{
	Datum		values[2] = {0, 0};
	char		nulls[2] = {'n', 'n'};
	uint64		deleted;

	if (!PG_ARGISNULL(0))
	{
		values[0] = PointerGetDatum(checked_stream_id(fcinfo, 0, false));
		nulls[0] = ' ';
	}
	if (!PG_ARGISNULL(1))
	{
		values[1] = Int32GetDatum(checked_schema_version(fcinfo, 1, "below_schema_version"));
		nulls[1] = ' ';
	}

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	deleted = run_kept_plan(&delete_plan, values, nulls, false);
	SPI_finish();
	PG_RETURN_INT64((int64) deleted);
}
