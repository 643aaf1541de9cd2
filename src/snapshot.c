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
 * save_snapshot checks that the version exists in the stream against the
 * committed (or the caller's own) state of the stream, without locking it:
 * a stream version never goes away once committed, and appends never wait
 * for a snapshot.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
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

/* The newest snapshot of stream $1 at or below version $2, of schema version $3 if not null. */
#define NEWEST_SNAPSHOT \
	"SELECT s.stream_id, s.stream_version, s.schema_version, s.state, s.created_at" \
	"  FROM eventsource.snapshots s" \
	" WHERE s.stream_id OPERATOR(pg_catalog.=) $1 AND s.stream_version OPERATOR(pg_catalog.<=) $2" \
	"   AND ($3::integer IS NULL OR s.schema_version OPERATOR(pg_catalog.=) $3)" \
	" ORDER BY s.stream_version DESC, s.schema_version DESC LIMIT 1"

static KeptPlan load_snapshot_plan = {
	NEWEST_SNAPSHOT,
	3, {TEXTOID, INT8OID, INT4OID}
};

/*
 * load_stream runs two plans in one snapshot: the newest usable snapshot,
 * then the events after it.  Each is an ordered index scan; one statement
 * with UNION ALL would have to sort the whole stream to guarantee the order.
 */
/*
 * With the stream lifecycle (0.5.0 on), both honour deletes and retention:
 * only a snapshot from just before the first visible version on is used (an
 * older one would leave a gap), and the events after it are visible ones.
 * [0] of each pair is for older versions of the extension.
 */
#define VISIBLE_SNAPSHOT \
	" WHERE n.stream_version OPERATOR(pg_catalog.>=)" \
	"       (" FIRST_VISIBLE_VERSION_OF_STREAM_1 " OPERATOR(pg_catalog.-) 1)"
#define VISIBLE_EVENTS "   AND e.stream_version OPERATOR(pg_catalog.>=) " FIRST_VISIBLE_VERSION_OF_STREAM_1
#define LOAD_STREAM_SNAPSHOT(visible) \
	"SELECT 'snapshot'::pg_catalog.text, n.stream_version, n.schema_version, NULL::pg_catalog.text," \
	"       n.state, NULL::pg_catalog.jsonb, NULL::pg_catalog.uuid, NULL::bigint, n.created_at" \
	"  FROM (" NEWEST_SNAPSHOT ") n" visible
#define LOAD_STREAM_EVENTS(visible_snapshot, visible_events) \
	"SELECT 'event'::pg_catalog.text, e.stream_version, NULL::integer, e.event_type," \
	"       e.data, e.metadata, e.event_id, e.global_position, e.recorded_at" \
	"  FROM eventsource.events e" \
	" WHERE e.stream_id OPERATOR(pg_catalog.=) $1 AND e.stream_version OPERATOR(pg_catalog.<=) $2" \
	"   AND e.stream_version OPERATOR(pg_catalog.>)" \
	"       COALESCE((SELECT n.stream_version FROM (" NEWEST_SNAPSHOT ") n" \
	visible_snapshot "), 0)" visible_events \
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
 * eventsource.save_snapshot(stream_id, stream_version, state, schema_version)
 * returns void.
 */
Datum
eventsource_save_snapshot(PG_FUNCTION_ARGS)
{
	text	   *stream_id = checked_stream_id(fcinfo, 0, false);
	int64		stream_version;
	int64		current_version;
	Datum		values[4];

	check_not_null(fcinfo, 1, "stream_version");
	check_not_null(fcinfo, 2, "state");
	check_not_null(fcinfo, 3, "schema_version");
	stream_version = PG_GETARG_INT64(1);

	values[0] = PointerGetDatum(stream_id);
	values[1] = Int64GetDatum(stream_version);
	values[2] = Int32GetDatum(checked_schema_version(fcinfo, 3, "schema_version"));
	values[3] = PG_GETARG_DATUM(2);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	current_version = current_stream_version(stream_id);
	if (stream_version < 1 || stream_version > current_version)
	{
		char	   *stream_name = text_to_cstring(stream_id);

		ereport(ERROR,
				(errcode(ERRCODE_EVENTSOURCE_SNAPSHOT_VERSION),
				 errmsg("stream \"%s\" has no version " INT64_FORMAT " to snapshot",
						stream_name, stream_version),
				 current_version == 0 ?
				 errdetail("Stream \"%s\" does not exist.", stream_name) :
				 errdetail("The current version of stream \"%s\" is " INT64_FORMAT ".",
						   stream_name, current_version),
				 errhint("A snapshot's version must be between 1 and the stream's current version.")));
	}

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
	materialize_read(fcinfo, &load_snapshot_plan, values, nulls);
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
