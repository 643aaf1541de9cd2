/*-------------------------------------------------------------------------
 *
 * subscription.c
 *	  Durable subscriptions: create_subscription, drop_subscription, poll
 *	  and ack.
 *
 * A subscription reads the gap-safe global log (of one category and some
 * event types, or all) from a checkpoint it keeps per consumer group
 * member.  poll returns the next batch after the member's checkpoint and
 * leases it: until the batch is acknowledged or the lease runs out, other
 * consumers polling the same member get nothing, and one whose lease ran
 * out gets the batch again (at-least-once delivery).  The member's row is
 * locked with SKIP LOCKED while a poll decides, so two consumers polling at
 * once never both get the batch.  In a consumer group of n, member i
 * receives the streams whose id hashes to i: every event of a stream goes
 * to the same member, in order.
 *
 * A subscription belongs to a role, its owner (its creator, or the role
 * named at creation): only the owner's members and eventsource_admin may
 * poll or acknowledge it.  poll, ack and create_subscription are SECURITY
 * INVOKER, so that they know their caller, and act as the extension's owner
 * once they have checked it.
 *
 * Nothing here needs LISTEN or the preloaded library: NOTIFY only tells a
 * consumer when to poll.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/xid8.h"

#include "eventsource.h"

PG_FUNCTION_INFO_V1(eventsource_create_subscription);
PG_FUNCTION_INFO_V1(eventsource_drop_subscription);
PG_FUNCTION_INFO_V1(eventsource_poll);
PG_FUNCTION_INFO_V1(eventsource_ack);
PG_FUNCTION_INFO_V1(eventsource_consumer_group_member);
PG_FUNCTION_INFO_V1(eventsource_set_subscription_owner);

#define MAX_CONSUMER_GROUP_SIZE		1000
#define MAX_LEASE_SECONDS			86400

#define CREATE_SUBSCRIPTION(owner_column, owner_value) \
	"WITH subscription AS (" \
	"  INSERT INTO eventsource.subscriptions (name, category, event_types, consumer_group_size" \
	owner_column ")" \
	"  VALUES ($1, $2, $3, $4" owner_value ") ON CONFLICT (name) DO NOTHING RETURNING name)" \
	" INSERT INTO eventsource.subscription_members (subscription_name, consumer_group_member, checkpoint)" \
	" SELECT s.name, member, eventsource.checkpoint($5, $6)" \
	"   FROM subscription s, pg_catalog.generate_series(0, $4 OPERATOR(pg_catalog.-) 1) AS member"

static KeptPlan create_plan = {
	CREATE_SUBSCRIPTION(", owner", ", $7"),
	7, {TEXTOID, TEXTOID, TEXTARRAYOID, INT4OID, XID8OID, INT8OID, REGROLEOID}
};

/* Before 0.6.0, subscriptions have no owner. */
static KeptPlan create_0_3_plan = {
	CREATE_SUBSCRIPTION("", ""),
	6, {TEXTOID, TEXTOID, TEXTARRAYOID, INT4OID, XID8OID, INT8OID}
};

static KeptPlan drop_plan = {
	"DELETE FROM eventsource.subscriptions s WHERE s.name OPERATOR(pg_catalog.=) $1",
	1, {TEXTOID}
};

/* All the columns, by name: a column the installed version lacks reads as NULL. */
static KeptPlan subscription_plan = {
	"SELECT s.* FROM eventsource.subscriptions s WHERE s.name OPERATOR(pg_catalog.=) $1",
	1, {TEXTOID}
};

static KeptPlan set_owner_plan = {
	"UPDATE eventsource.subscriptions s SET owner = $2 WHERE s.name OPERATOR(pg_catalog.=) $1",
	2, {TEXTOID, REGROLEOID}
};

#define MEMBER_KEY \
	" WHERE m.subscription_name OPERATOR(pg_catalog.=) $1" \
	"   AND m.consumer_group_member OPERATOR(pg_catalog.=) $2"

/* The member's row, unless another poll holds it; whether it is leased. */
static KeptPlan lock_member_plan = {
	"SELECT eventsource.checkpoint_transaction_id(m.checkpoint),"
	"       eventsource.checkpoint_global_position(m.checkpoint),"
	"       COALESCE(m.leased_until OPERATOR(pg_catalog.>) pg_catalog.now(), false)"
	"  FROM eventsource.subscription_members m"
	MEMBER_KEY
	"   FOR UPDATE SKIP LOCKED",
	2, {TEXTOID, INT4OID}
};

/* The consumer group part of a poll: $6 members, this is member $7 ($8 is the horizon). */
#define GROUP_CONDITION \
	"   AND ($6 OPERATOR(pg_catalog.=) 1" \
	"        OR eventsource.consumer_group_member(e.stream_id, $6) OPERATOR(pg_catalog.=) $7)"

static KeptPlan poll_all_plan = {
	EVENT_COLUMNS
	LOG_CONDITIONS("$8")
	GROUP_CONDITION
	" ORDER BY e.transaction_id, e.global_position LIMIT $3",
	8, {XID8OID, INT8OID, INT4OID, TEXTARRAYOID, TEXTOID, INT4OID, INT4OID, XID8OID}
};

static KeptPlan poll_category_plan = {
	EVENT_COLUMNS
	LOG_CONDITIONS("$8")
	"   AND pg_catalog.split_part(e.stream_id, '-', 1) OPERATOR(pg_catalog.=) $5"
	GROUP_CONDITION
	" ORDER BY e.transaction_id, e.global_position LIMIT $3",
	8, {XID8OID, INT8OID, INT4OID, TEXTARRAYOID, TEXTOID, INT4OID, INT4OID, XID8OID},
	CURSOR_OPT_CUSTOM_PLAN
};

/* Leases a delivered batch, whose last event is at checkpoint ($4, $5). */
static KeptPlan lease_plan = {
	"UPDATE eventsource.subscription_members m"
	"   SET leased_until = pg_catalog.now() OPERATOR(pg_catalog.+) pg_catalog.make_interval(secs => $3),"
	"       delivered_through = eventsource.checkpoint($4, $5)"
	MEMBER_KEY,
	5, {TEXTOID, INT4OID, FLOAT8OID, XID8OID, INT8OID}
};

/*
 * Acknowledges up to checkpoint ($3, $4) unless that is beyond what poll
 * delivered; the lease ends only when the whole leased batch is acknowledged
 * (a late ack of an earlier batch leaves the current lease alone).  Returns
 * the row when it was beyond, for the error.
 */
static KeptPlan ack_plan = {
	"WITH acknowledged AS ("
	"  UPDATE eventsource.subscription_members m"
	"     SET checkpoint = GREATEST(m.checkpoint, eventsource.checkpoint($3, $4)),"
	"         leased_until = CASE WHEN eventsource.checkpoint($3, $4) OPERATOR(eventsource.>=) m.delivered_through"
	"                             THEN NULL ELSE m.leased_until END,"
	"         acknowledged_at = pg_catalog.now()"
	MEMBER_KEY
	"     AND eventsource.checkpoint($3, $4) OPERATOR(eventsource.<=) m.delivered_through"
	"  RETURNING 1)"
	" SELECT m.delivered_through::pg_catalog.text FROM eventsource.subscription_members m"
	MEMBER_KEY
	"    AND NOT EXISTS (SELECT FROM acknowledged)",
	4, {TEXTOID, INT4OID, XID8OID, INT8OID}
};

/* A subscription's definition, valid until SPI_finish. */
typedef struct Subscription
{
	Datum		category;		/* text */
	bool		category_null;
	Datum		event_types;	/* text[] */
	bool		event_types_null;
	int32		consumer_group_size;
} Subscription;

static void
raise_unknown_subscription(text *name)
{
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_OBJECT),
			 errmsg("subscription \"%s\" does not exist", text_to_cstring(name))));
}

/*
 * Looks up a subscription for its consumer caller, who must be a member of
 * its owner or of eventsource_admin (before 0.6.0 subscriptions have no
 * owner, and any reader may), and checks the consumer group member argument
 * against its group size; returns the member.  Connected to SPI.
 */
static int32
subscription_member(FunctionCallInfo fcinfo, text *name, int member_argno, Subscription *subscription,
					Oid caller)
{
	Datum		values[1] = {PointerGetDatum(name)};
	HeapTuple	row;
	TupleDesc	description;
	bool		isnull;
	Datum		owner;
	int32		group_size;
	int32		member;

	if (run_kept_plan(&subscription_plan, values, NULL, false) == 0)
		raise_unknown_subscription(name);
	row = SPI_tuptable->vals[0];
	description = SPI_tuptable->tupdesc;
	owner = column_by_name(row, description, "owner", &isnull);
	if (!isnull && !has_privs_of_role(caller, DatumGetObjectId(owner)) && !may_administer(caller))
	{
		/* Its owner may have been dropped in another database: then only administrators may. */
		char	   *owner_name = GetUserNameFromId(DatumGetObjectId(owner), true);

		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for subscription \"%s\"", text_to_cstring(name)),
				 errdetail("The subscription belongs to role \"%s\": only its members and members of eventsource_admin may poll or acknowledge it.",
						   owner_name ? owner_name : psprintf("%u (dropped)", DatumGetObjectId(owner)))));
	}
	subscription->category = column_by_name(row, description, "category", &subscription->category_null);
	subscription->event_types = column_by_name(row, description, "event_types",
												&subscription->event_types_null);
	group_size = DatumGetInt32(column_by_name(row, description, "consumer_group_size", &isnull));
	subscription->consumer_group_size = group_size;

	check_not_null(fcinfo, member_argno, "consumer_group_member");
	member = PG_GETARG_INT32(member_argno);
	if (member < 0 || member >= group_size)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("subscription \"%s\" has no consumer group member %d",
						text_to_cstring(name), member),
				 errdetail("Its consumer group has %d member%s, numbered from 0.",
						   group_size, group_size == 1 ? "" : "s")));
	return member;
}

/* An owner argument: a role ('-', which regrole reads as OID 0, is none). */
static Datum
checked_owner(FunctionCallInfo fcinfo, int argno)
{
	Oid			owner = PG_GETARG_OID(argno);

	if (!OidIsValid(owner) || GetUserNameFromId(owner, true) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("owner must be an existing role"),
				 errdetail("owner was OID %u.", owner)));
	return ObjectIdGetDatum(owner);
}

/*
 * eventsource.consumer_group_member(stream_id, consumer_group_size) returns
 * the member (0 to size - 1) that receives the stream's events: a stable
 * 64-bit hash of the stream id, modulo the group size.
 */
Datum
eventsource_consumer_group_member(PG_FUNCTION_ARGS)
{
	int32		group_size = PG_GETARG_INT32(1);
	uint64		hash;

	if (group_size < 1 || group_size > MAX_CONSUMER_GROUP_SIZE)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("consumer_group_size must be between 1 and %d", MAX_CONSUMER_GROUP_SIZE),
				 errdetail("consumer_group_size was %d.", group_size)));
	hash = DatumGetUInt64(DirectFunctionCall2Coll(hashtextextended, C_COLLATION_OID,
												  PG_GETARG_DATUM(0), Int64GetDatum(0)));
	PG_RETURN_INT32((int32) ((hash & PG_INT64_MAX) % (uint64) group_size));
}

/*
 * eventsource.create_subscription(name, category, event_types, start_from,
 * consumer_group_size, owner) returns void.  The subscription belongs to
 * owner, or to the caller when owner is NULL.  (Before 0.6.0 the function
 * has no owner argument.)
 */
Datum
eventsource_create_subscription(PG_FUNCTION_ARGS)
{
	text	   *name = checked_object_name(fcinfo, 0, "subscription");
	ArrayType  *event_types = checked_event_types(fcinfo, 2);
	int32		group_size;
	char	   *start_from;
	bool		from_end;
	bool		has_owner = PG_NARGS() > 5;
	ActingAsOwner acting;
	Datum		values[7];
	char		nulls[7] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};
	Checkpoint	start;

	act_as_function_owner(fcinfo, &acting);

	check_not_null(fcinfo, 3, "start_from");
	start_from = text_to_cstring(PG_GETARG_TEXT_PP(3));
	if (strcmp(start_from, "beginning") == 0)
		from_end = false;
	else if (strcmp(start_from, "end") == 0)
		from_end = true;
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid start_from \"%s\"", start_from),
				 errhint("Use 'beginning' or 'end'.")));
	group_size = checked_integer(fcinfo, 4, "consumer_group_size", 1, MAX_CONSUMER_GROUP_SIZE);

	values[0] = PointerGetDatum(name);
	values[1] = PG_ARGISNULL(1) ? (Datum) 0 : PointerGetDatum(checked_category(fcinfo, 1));
	nulls[1] = PG_ARGISNULL(1) ? 'n' : ' ';
	values[2] = PointerGetDatum(event_types);
	nulls[2] = event_types == NULL ? 'n' : ' ';
	values[3] = Int32GetDatum(group_size);
	values[6] = has_owner && !PG_ARGISNULL(5) ? checked_owner(fcinfo, 5) : ObjectIdGetDatum(acting.caller);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	start = visible_head();
	values[4] = FullTransactionIdGetDatum(FullTransactionIdFromU64(start.transaction_id));
	values[5] = Int64GetDatum(start.global_position);
	/* From the beginning: before every event (NULL); from the end: after the newest visible one. */
	if (!from_end || start.transaction_id == 0)
		nulls[4] = nulls[5] = 'n';
	if (run_kept_plan(has_owner ? &create_plan : &create_0_3_plan, values, nulls, false) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("subscription \"%s\" already exists", text_to_cstring(name))));
	SPI_finish();
	stop_acting_as_owner(&acting);
	PG_RETURN_VOID();
}

/*
 * eventsource.set_subscription_owner(name, owner) returns void: hands a
 * subscription to another role (for one created before 0.6.0, or a
 * consumer that changed roles).
 */
Datum
eventsource_set_subscription_owner(PG_FUNCTION_ARGS)
{
	text	   *name = checked_object_name(fcinfo, 0, "subscription");
	Datum		values[2];

	check_not_null(fcinfo, 1, "owner");
	values[0] = PointerGetDatum(name);
	values[1] = checked_owner(fcinfo, 1);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (run_kept_plan(&set_owner_plan, values, NULL, false) == 0)
		raise_unknown_subscription(name);
	SPI_finish();
	PG_RETURN_VOID();
}

/*
 * eventsource.drop_subscription(name) returns void.
 */
Datum
eventsource_drop_subscription(PG_FUNCTION_ARGS)
{
	text	   *name = checked_object_name(fcinfo, 0, "subscription");
	Datum		values[1] = {PointerGetDatum(name)};

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (run_kept_plan(&drop_plan, values, NULL, false) == 0)
		raise_unknown_subscription(name);
	SPI_finish();
	PG_RETURN_VOID();
}

/*
 * eventsource.poll(name, max_count, consumer_group_member, lease_seconds)
 * returns setof eventsource.event.
 */
Datum
eventsource_poll(PG_FUNCTION_ARGS)
{
	text	   *name = checked_object_name(fcinfo, 0, "subscription");
	int32		max_count = checked_max_count(fcinfo, 1);
	int32		lease_seconds = checked_integer(fcinfo, 3, "lease_seconds", 1, MAX_LEASE_SECONDS);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Subscription subscription;
	int32		member;
	uint64		batch_size;
	Datum		member_key[5];
	Datum		values[8];
	char		nulls[8] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};
	bool		isnull;
	ActingAsOwner acting;

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	act_as_function_owner(fcinfo, &acting);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	member = subscription_member(fcinfo, name, 2, &subscription, acting.caller);

	member_key[0] = PointerGetDatum(name);
	member_key[1] = Int32GetDatum(member);

	/* Another consumer is deciding, or holds the lease: nothing for this one. */
	if (run_kept_plan(&lock_member_plan, member_key, NULL, false) == 0 ||
		DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull)))
	{
		SPI_finish();
		stop_acting_as_owner(&acting);
		return (Datum) 0;
	}

	values[0] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (isnull)
		values[0] = FullTransactionIdGetDatum(FullTransactionIdFromU64(0));
	values[1] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
	if (isnull)
		values[1] = Int64GetDatum(0);
	values[2] = Int32GetDatum(max_count);
	values[3] = subscription.event_types;
	nulls[3] = subscription.event_types_null ? 'n' : ' ';
	values[4] = subscription.category;
	nulls[4] = subscription.category_null ? 'n' : ' ';
	values[5] = Int32GetDatum(subscription.consumer_group_size);
	values[6] = Int32GetDatum(member);
	values[7] = log_horizon_datum();

	/* Into the result; the last row's checkpoint is where the lease ends. */
	batch_size = run_kept_plan(subscription.category_null ? &poll_all_plan : &poll_category_plan,
							   values, nulls, false);
	if (batch_size > 0)
	{
		SPITupleTable *rows = SPI_tuptable;
		Checkpoint *last;

		for (uint64 i = 0; i < batch_size; i++)
			tuplestore_puttuple(rsinfo->setResult, rows->vals[i]);
		/* The checkpoint column, the last of eventsource.event. */
		last = (Checkpoint *) DatumGetPointer(SPI_getbinval(rows->vals[batch_size - 1], rows->tupdesc,
															rows->tupdesc->natts, &isnull));

		member_key[2] = Float8GetDatum((double) lease_seconds);
		member_key[3] = FullTransactionIdGetDatum(FullTransactionIdFromU64(last->transaction_id));
		member_key[4] = Int64GetDatum(last->global_position);
		run_kept_plan(&lease_plan, member_key, NULL, false);
	}

	SPI_finish();
	stop_acting_as_owner(&acting);
	return (Datum) 0;
}

/*
 * eventsource.ack(name, checkpoint, consumer_group_member) returns void.
 */
Datum
eventsource_ack(PG_FUNCTION_ARGS)
{
	text	   *name = checked_object_name(fcinfo, 0, "subscription");
	Checkpoint *checkpoint;
	Subscription subscription;
	Datum		values[4];
	ActingAsOwner acting;

	check_not_null(fcinfo, 1, "checkpoint");
	checkpoint = PG_GETARG_CHECKPOINT(1);

	act_as_function_owner(fcinfo, &acting);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	values[0] = PointerGetDatum(name);
	values[1] = Int32GetDatum(subscription_member(fcinfo, name, 2, &subscription, acting.caller));
	values[2] = FullTransactionIdGetDatum(FullTransactionIdFromU64(checkpoint->transaction_id));
	values[3] = Int64GetDatum(checkpoint->global_position);

	/* Acknowledging beyond what was delivered would skip events no one received. */
	if (run_kept_plan(&ack_plan, values, NULL, false) > 0)
	{
		char	   *delivered = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("checkpoint %s is beyond what subscription \"%s\" delivered",
						checkpoint_to_cstring(checkpoint), text_to_cstring(name)),
				 delivered ?
				 errdetail("The last event poll delivered to consumer group member %d has checkpoint %s.",
						   DatumGetInt32(values[1]), delivered) :
				 errdetail("poll has delivered nothing to consumer group member %d yet.",
						   DatumGetInt32(values[1])),
				 errhint("Acknowledge the checkpoint column of the last event of a batch that poll returned.")));
	}
	SPI_finish();
	stop_acting_as_owner(&acting);
	PG_RETURN_VOID();
}
