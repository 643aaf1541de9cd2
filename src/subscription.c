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
 * out gets the batch again (at-least-once delivery).  Each poll that
 * delivers grants a new lease, a uuid the consumer presents to ack: an ack
 * is accepted only from the lease that holds the batch now, unexpired, so a
 * consumer that records its work and acks in one transaction has its work
 * undone when another consumer got the batch after its lease ran out
 * (exactly-once effects).  The member's lock (an advisory lock of its own
 * that an ack waits for and a poll skips) orders acks and polls of a member
 * in every isolation level, so two consumers polling at once never both get
 * the batch: an ack and a poll that leases a batch hold it until their
 * transaction ends, a poll that leases nothing lets it go at once.
 * Leases are timed by clock_timestamp(): a transaction's now() is its
 * start.  (Before 0.7.0, poll returns no lease and ack takes none.)
 *
 * In a consumer group of n, member i receives the streams whose id hashes
 * to i: every event of a stream goes to the same member, in order.
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

#include "access/htup_details.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "common/cryptohash.h"
#include "common/sha2.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "port/pg_bswap.h"
#include "storage/lock.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/uuid.h"
#include "utils/xid8.h"

#include "arguments.h"
#include "checkpoint.h"
#include "epoch.h"
#include "eventsource.h"
#include "kept_plan.h"
#include "log.h"
#include "query.h"

PG_FUNCTION_INFO_V1(eventsource_create_subscription);
PG_FUNCTION_INFO_V1(eventsource_drop_subscription);
PG_FUNCTION_INFO_V1(eventsource_poll);
PG_FUNCTION_INFO_V1(eventsource_ack);
PG_FUNCTION_INFO_V1(eventsource_consumer_group_member);
PG_FUNCTION_INFO_V1(eventsource_set_subscription_owner);

#define CREATE_SUBSCRIPTION(owner_and_query_columns, owner_and_query_values) \
	"WITH subscription AS (" \
	"  INSERT INTO eventsource.subscriptions (name, category, event_types, consumer_group_size" \
	owner_and_query_columns ")" \
	"  VALUES ($1, $2, $3, $4" owner_and_query_values ") ON CONFLICT (name) DO NOTHING RETURNING name)" \
	" INSERT INTO eventsource.subscription_members (subscription_name, consumer_group_member, checkpoint)" \
	" SELECT s.name, member, eventsource.checkpoint($5, $6)" \
	"   FROM subscription s, pg_catalog.generate_series(0, $4 OPERATOR(pg_catalog.-) 1) AS member"

static KeptPlan create_plan = {
	CREATE_SUBSCRIPTION(", owner, query", ", $7, $8"),
	8, {TEXTOID, TEXTOID, TEXTARRAYOID, INT4OID, XID8OID, INT8OID, REGROLEOID, JSONBOID}
};

/* Before 0.8.0, subscriptions have no query. */
static KeptPlan create_0_6_plan = {
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

/* The member's checkpoint and whether it is leased. */
static KeptPlan member_plan = {
	"SELECT eventsource.checkpoint_transaction_id(m.checkpoint),"
	"       eventsource.checkpoint_global_position(m.checkpoint),"
	"       COALESCE(m.leased_until OPERATOR(pg_catalog.>) pg_catalog.clock_timestamp(), false)"
	"  FROM eventsource.subscription_members m"
	MEMBER_KEY,
	2, {TEXTOID, INT4OID}
};

/*
 * The subscription's events after checkpoint ($1, $2), of the event types $4
 * (NULL: all) and the category $5 (NULL: all), for member $7 of a consumer
 * group of $6, at most $3 of them, below the horizon $8, matching the query
 * $9 (poll's plans; a subscription with a query reads the _query_ ones):
 * the log's rules (log.h), as eventsource.events_behind counts them.  A poll
 * of one category is planned with the values, so that it reads the category
 * index; the others keep a generic plan.
 */
#define POLL_PLAN_TEXT(query) \
	EVENT_COLUMNS LOG_CONDITIONS("$8") FILTER_TAKES query LOG_ORDER " LIMIT $3"

static KeptPlan poll_all_plan = {
	POLL_PLAN_TEXT(""),
	FILTERED_LOG_ARGUMENTS
};

static KeptPlan poll_category_plan = {
	POLL_PLAN_TEXT(""),
	FILTERED_LOG_ARGUMENTS,
	CURSOR_OPT_CUSTOM_PLAN
};

static KeptPlan poll_query_all_plan = {
	POLL_PLAN_TEXT(FILTER_TAKES_QUERY),
	FILTERED_LOG_ARGUMENTS
};

static KeptPlan poll_query_category_plan = {
	POLL_PLAN_TEXT(FILTER_TAKES_QUERY),
	FILTERED_LOG_ARGUMENTS,
	CURSOR_OPT_CUSTOM_PLAN
};

/*
 * Whether checkpoint ($1, $2) names an event the subscription delivers to
 * the member, with the arguments of the poll plans ($3, the limit, is 1; $8
 * unused), and with its query (subscription_query_event_plan).
 */
#define SUBSCRIPTION_EVENT_PLAN_TEXT(query) \
	"SELECT FROM eventsource.events e" \
	" WHERE e.transaction_id OPERATOR(pg_catalog.=) $1 AND e.global_position OPERATOR(pg_catalog.=) $2" \
	"   AND " EVENT_TYPES_TAKE("$4::pg_catalog.text[]") \
	FILTER_TAKES query \
	" LIMIT $3"

static KeptPlan subscription_event_plan = {
	SUBSCRIPTION_EVENT_PLAN_TEXT(""),
	FILTERED_LOG_ARGUMENTS
};

static KeptPlan subscription_query_event_plan = {
	SUBSCRIPTION_EVENT_PLAN_TEXT(FILTER_TAKES_QUERY),
	FILTERED_LOG_ARGUMENTS
};

/*
 * Leases a delivered batch, whose last event is at checkpoint ($4, $5), for
 * $3 seconds; from 0.7.0 with a new lease token, which it returns.
 */
#define LEASE_BATCH(new_lease) \
	"UPDATE eventsource.subscription_members m" \
	"   SET leased_until = pg_catalog.clock_timestamp()" \
	"                      OPERATOR(pg_catalog.+) pg_catalog.make_interval(secs => $3)," \
	new_lease \
	"       delivered_through = eventsource.checkpoint($4, $5)" \
	MEMBER_KEY

static KeptPlan lease_plan = {
	LEASE_BATCH("       lease = pg_catalog.gen_random_uuid(),") " RETURNING m.lease",
	5, {TEXTOID, INT4OID, FLOAT8OID, XID8OID, INT8OID}
};

/* Before 0.7.0, members have no lease token. */
static KeptPlan lease_0_3_plan = {
	LEASE_BATCH(""),
	5, {TEXTOID, INT4OID, FLOAT8OID, XID8OID, INT8OID}
};

/*
 * The member's row for an ack, locked until the transaction ends, with
 * whether its lease still holds (the columns of the installed version).
 */
static KeptPlan lock_member_for_ack_plan = {
	"SELECT m.*,"
	"       COALESCE(m.leased_until OPERATOR(pg_catalog.>) pg_catalog.clock_timestamp(), false) AS lease_holds"
	"  FROM eventsource.subscription_members m"
	MEMBER_KEY
	"   FOR UPDATE",
	2, {TEXTOID, INT4OID}
};

/*
 * Acknowledges up to checkpoint ($3, $4), never moving back (only before
 * 0.7.0 can it be at or below the checkpoint); the lease ends when the whole
 * leased batch is acknowledged, and its token stays, so that a re-ack can
 * be told from a superseded lease.
 */
static KeptPlan ack_plan = {
	"UPDATE eventsource.subscription_members m"
	"   SET checkpoint = GREATEST(m.checkpoint, eventsource.checkpoint($3, $4)),"
	"       leased_until = CASE WHEN eventsource.checkpoint($3, $4) OPERATOR(eventsource.>=) m.delivered_through"
	"                           THEN NULL ELSE m.leased_until END,"
	"       acknowledged_at = pg_catalog.now()"
	MEMBER_KEY,
	4, {TEXTOID, INT4OID, XID8OID, INT8OID}
};

/* A subscription's definition, valid until SPI_finish. */
typedef struct Subscription
{
	Datum		category;		/* text */
	bool		category_null;
	Datum		event_types;	/* text[] */
	bool		event_types_null;
	Datum		query;			/* jsonb (from 0.8.0) */
	bool		query_null;
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
	subscription->query = column_by_name(row, description, "query", &subscription->query_null);
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

/*
 * eventsource.consumer_group_member(stream_id, consumer_group_size) returns
 * the member (0 to size - 1) that receives the stream's events: a stable
 * 64-bit hash of the stream id, modulo the group size.
 */
Datum
eventsource_consumer_group_member(PG_FUNCTION_ARGS)
{
	int32		group_size = checked_integer(fcinfo, 1, "consumer_group_size", 1,
												 EVENTSOURCE_MAX_CONSUMER_GROUP_SIZE);
	uint64		hash;

	hash = DatumGetUInt64(DirectFunctionCall2Coll(hashtextextended, C_COLLATION_OID,
												  PG_GETARG_DATUM(0), Int64GetDatum(0)));
	PG_RETURN_INT32((int32) ((hash & PG_INT64_MAX) % (uint64) group_size));
}

/*
 * eventsource.create_subscription(name, category, event_types, start_from,
 * consumer_group_size, owner, query) returns void.  The subscription belongs
 * to owner, or to the caller when owner is NULL; it takes the events of its
 * category, of its event types and matching its query (each NULL: every
 * event).  (Before 0.6.0 the function has no owner argument, before 0.8.0
 * no query.)
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
	bool		has_query = PG_NARGS() > 6;
	Jsonb	   *query = has_query ? checked_query(fcinfo, 6) : NULL;
	ActingAsOwner acting;
	Datum		values[8];
	bool		nulls[8] = {false, false, false, false, false, false, false, false};
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
	group_size = checked_integer(fcinfo, 4, "consumer_group_size", 1, EVENTSOURCE_MAX_CONSUMER_GROUP_SIZE);

	values[0] = PointerGetDatum(name);
	values[1] = PG_ARGISNULL(1) ? (Datum) 0 : PointerGetDatum(checked_category(fcinfo, 1));
	nulls[1] = PG_ARGISNULL(1);
	values[2] = PointerGetDatum(event_types);
	nulls[2] = event_types == NULL;
	values[3] = Int32GetDatum(group_size);
	values[6] = has_owner && !PG_ARGISNULL(5) ? checked_owner(fcinfo, 5) : ObjectIdGetDatum(acting.caller);
	values[7] = PointerGetDatum(query);
	nulls[7] = query == NULL;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	start = visible_head();
	values[4] = FullTransactionIdGetDatum(FullTransactionIdFromU64(start.transaction_id));
	values[5] = Int64GetDatum(start.global_position);
	/* From the beginning: before every event (NULL); from the end: after the newest visible one. */
	if (!from_end || start.transaction_id == 0)
		nulls[4] = nulls[5] = true;
	if (run_kept_plan(has_query ? &create_plan : has_owner ? &create_0_6_plan : &create_0_3_plan,
					  values, nulls, false) == 0)
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
 * The tag of the member's lock, which orders the changes of its lease: an
 * advisory lock of the database, of class EVENTSOURCE_MEMBER_LOCK_CLASS,
 * whose two keys are the first 8 bytes of the SHA-256 of the subscription's
 * name followed by the member's number (4 bytes, big-endian), read as two
 * big-endian integers.  (subscription_status computes the same keys.)
 */
static void
member_lock_tag(text *name, int32 member, LOCKTAG *tag)
{
	pg_cryptohash_ctx *context = pg_cryptohash_create(PG_SHA256);
	uint32		member_bytes = pg_hton32((uint32) member);
	uint32		digest[PG_SHA256_DIGEST_LENGTH / sizeof(uint32)];

	if (pg_cryptohash_init(context) < 0 ||
		pg_cryptohash_update(context, (const uint8 *) VARDATA_ANY(name), VARSIZE_ANY_EXHDR(name)) < 0 ||
		pg_cryptohash_update(context, (const uint8 *) &member_bytes, sizeof(member_bytes)) < 0 ||
		pg_cryptohash_final(context, (uint8 *) digest, sizeof(digest)) < 0)
		elog(ERROR, "could not compute the SHA-256 of the name of subscription \"%s\": %s",
			 text_to_cstring(name), pg_cryptohash_error(context));
	pg_cryptohash_free(context);
	SET_LOCKTAG_ADVISORY(*tag, MyDatabaseId, pg_ntoh32(digest[0]), pg_ntoh32(digest[1]),
						 EVENTSOURCE_MEMBER_LOCK_CLASS);
}

/*
 * Takes the member's lock, held until the transaction ends unless released:
 * an ack waits for it, a poll gives up at once (returns false) when another
 * transaction holds it.
 */
static bool
lock_member(const LOCKTAG *tag, bool wait)
{
	return LockAcquire(tag, ExclusiveLock, false, !wait) != LOCKACQUIRE_NOT_AVAIL;
}

/*
 * The arguments of the plans that read the subscription's events for a
 * member: after checkpoint (transaction_id, global_position), at most count;
 * all but the horizon, $8.
 */
static void
subscription_arguments(const Subscription *subscription, int32 member, Datum transaction_id,
					   Datum global_position, int32 count, Datum *values, bool *nulls)
{
	values[0] = transaction_id;
	values[1] = global_position;
	values[2] = Int32GetDatum(count);
	values[3] = subscription->event_types;
	nulls[3] = subscription->event_types_null;
	values[4] = subscription->category;
	nulls[4] = subscription->category_null;
	values[5] = Int32GetDatum(subscription->consumer_group_size);
	values[6] = Int32GetDatum(member);
	values[8] = subscription->query;
	nulls[8] = subscription->query_null;
}

/*
 * eventsource.poll(name, max_count, consumer_group_member, lease_seconds)
 * returns the rows of eventsource.event with the batch's lease (before
 * 0.7.0, setof eventsource.event: no lease).
 */
Datum
eventsource_poll(PG_FUNCTION_ARGS)
{
	text	   *name = checked_object_name(fcinfo, 0, "subscription");
	int32		max_count = checked_max_count(fcinfo, 1);
	int32		lease_seconds = checked_integer(fcinfo, 3, "lease_seconds", 1, EVENTSOURCE_MAX_LEASE_SECONDS);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Subscription subscription;
	int32		member;
	uint64		batch_size;
	Datum		member_key[5];
	Datum		values[FILTERED_LOG_ARGUMENT_COUNT];
	bool		nulls[FILTERED_LOG_ARGUMENT_COUNT] = {false};
	Datum		transaction_id;
	Datum		global_position;
	bool		isnull;
	LOCKTAG		member_lock;
	ActingAsOwner acting;

	/* A poll leases (it writes), even when it finds nothing: say so first on a standby. */
	PreventCommandIfReadOnly("eventsource.poll()");
	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	act_as_function_owner(fcinfo, &acting);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	member = subscription_member(fcinfo, name, 2, &subscription, acting.caller);

	member_key[0] = PointerGetDatum(name);
	member_key[1] = Int32GetDatum(member);

	/* Another consumer is deciding, leasing or acknowledging: nothing for this one. */
	member_lock_tag(name, member, &member_lock);
	if (!lock_member(&member_lock, false))
	{
		SPI_finish();
		stop_acting_as_owner(&acting);
		return (Datum) 0;
	}
	/* Dropped since subscription_member looked it up: as if it had not existed. */
	if (run_kept_plan(&member_plan, member_key, NULL, false) == 0)
		raise_unknown_subscription(name);

	transaction_id = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (isnull)
		transaction_id = FullTransactionIdGetDatum(FullTransactionIdFromU64(0));
	global_position = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
	if (isnull)
		global_position = Int64GetDatum(0);
	subscription_arguments(&subscription, member, transaction_id, global_position, max_count,
						   values, nulls);
	values[7] = log_horizon_datum();

	/*
	 * A poll that leases nothing (the lease holds, or there is nothing to
	 * deliver) lets the member go at once, even if its transaction stays
	 * open; it has changed nothing.  (If this transaction took the lock
	 * before, to lease or ack, it keeps it.)
	 */
	if (DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull)))
		batch_size = 0;
	else
		batch_size = run_kept_plan(subscription.category_null ?
								   (subscription.query_null ? &poll_all_plan : &poll_query_all_plan) :
								   (subscription.query_null ? &poll_category_plan : &poll_query_category_plan),
								   values, nulls, false);
	if (batch_size == 0)
		LockRelease(&member_lock, ExclusiveLock, false);
	else
	{
		SPITupleTable *rows = SPI_tuptable;
		TupleDesc	result = rsinfo->setDesc;

		/* From 0.7.0 every row has the lease after the columns of eventsource.event. */
		bool		with_lease = result->natts > rows->tupdesc->natts;	/* they are as many */
		Datum	   *columns = palloc(result->natts * sizeof(Datum));
		bool	   *column_nulls = palloc0(result->natts * sizeof(bool));

		/* The lease ends at the last row's checkpoint (the last column of eventsource.event). */
		Checkpoint *last = (Checkpoint *) DatumGetPointer(SPI_getbinval(rows->vals[batch_size - 1],
																		rows->tupdesc,
																		rows->tupdesc->natts,
																		&isnull));

		member_key[2] = Float8GetDatum((double) lease_seconds);
		member_key[3] = FullTransactionIdGetDatum(FullTransactionIdFromU64(last->transaction_id));
		member_key[4] = Int64GetDatum(last->global_position);
		if (run_kept_plan(with_lease ? &lease_plan : &lease_0_3_plan, member_key, NULL, false) == 0)
			raise_unknown_subscription(name);
		if (with_lease)
			columns[result->natts - 1] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
													   1, &isnull);

		for (uint64 i = 0; i < batch_size; i++)
		{
			(void) event_columns_from_row(rows->vals[i], rows->tupdesc, columns, column_nulls);
			tuplestore_putvalues(rsinfo->setResult, result, columns, column_nulls);
			CHECK_FOR_INTERRUPTS();
		}
	}

	SPI_finish();
	stop_acting_as_owner(&acting);
	return (Datum) 0;
}

/* What a consumer whose lease no longer holds its batch should do. */
#define POLL_AGAIN_HINT \
	errhint("Roll back the work done for the batch and poll again: the batch may have been delivered to another consumer.")

/*
 * Raises 55006 unless presented is the member's current lease, neither
 * acknowledged nor expired.  row is the member's locked row.
 */
static void
check_lease(text *name, int32 member, pg_uuid_t *presented, HeapTuple row, TupleDesc description)
{
	char	   *lease = DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum(presented)));
	bool		isnull;
	Datum		current = column_by_name(row, description, "lease", &isnull);

	if (isnull || memcmp(DatumGetUUIDP(current), presented, UUID_LEN) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_IN_USE),
				 errmsg("the lease of subscription \"%s\" has been superseded", text_to_cstring(name)),
				 errdetail("Lease %s is not the current lease of consumer group member %d: the member was polled again after that lease ended.",
						   lease, member),
				 POLL_AGAIN_HINT));
	column_by_name(row, description, "leased_until", &isnull);
	if (isnull)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_IN_USE),
				 errmsg("the lease of subscription \"%s\" has already been acknowledged", text_to_cstring(name)),
				 errdetail("Lease %s of consumer group member %d ended when its batch was acknowledged through checkpoint %s.",
						   lease, member,
						   SPI_getvalue(row, description, SPI_fnumber(description, "checkpoint"))),
				 errhint("A batch is acknowledged once: poll for the next one.")));
	if (!DatumGetBool(column_by_name(row, description, "lease_holds", &isnull)))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_IN_USE),
				 errmsg("the lease of subscription \"%s\" has expired", text_to_cstring(name)),
				 errdetail("Lease %s of consumer group member %d ended at %s.", lease, member,
						   SPI_getvalue(row, description, SPI_fnumber(description, "leased_until"))),
				 POLL_AGAIN_HINT));
}

/*
 * eventsource.ack(name, checkpoint, consumer_group_member, lease) returns
 * void.  (Before 0.7.0 it has no lease argument.)
 *
 * It waits for the member's lock, then locks and reads the member's row: of
 * two acks at once (or an ack and a poll that leases), the second waits for
 * the first to end.  In READ COMMITTED it then judges the outcome (55006
 * when the first took the lease or acknowledged it).  In REPEATABLE READ and
 * SERIALIZABLE it reads the row through the transaction's snapshot, as the
 * work done with it did: if the row changed after that snapshot, locking it
 * fails with PostgreSQL's serialization failure (40001), since the work may
 * rest on a lease or checkpoint that no longer holds.
 */
Datum
eventsource_ack(PG_FUNCTION_ARGS)
{
	text	   *name = checked_object_name(fcinfo, 0, "subscription");
	bool		with_lease = PG_NARGS() > 3;
	Checkpoint *checkpoint;
	Subscription subscription;
	int32		member;
	HeapTuple	row;
	TupleDesc	description;
	bool		isnull;
	LOCKTAG		member_lock;
	Datum		acknowledged;
	Datum		delivered;
	Datum		values[4];
	Datum		event_arguments[FILTERED_LOG_ARGUMENT_COUNT];
	bool		event_nulls[FILTERED_LOG_ARGUMENT_COUNT] = {false};
	ActingAsOwner acting;

	check_not_null(fcinfo, 1, "checkpoint");
	checkpoint = PG_GETARG_CHECKPOINT(1);
	if (with_lease && PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("lease must not be null"),
				 errdetail("An acknowledgement is accepted only from the lease of the batch it acknowledges."),
				 errhint("Pass the lease column of the batch that poll returned: eventsource.ack(name, checkpoint, consumer_group_member, lease).")));

	act_as_function_owner(fcinfo, &acting);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	member = subscription_member(fcinfo, name, 2, &subscription, acting.caller);
	values[0] = PointerGetDatum(name);
	values[1] = Int32GetDatum(member);
	values[2] = FullTransactionIdGetDatum(FullTransactionIdFromU64(checkpoint->transaction_id));
	values[3] = Int64GetDatum(checkpoint->global_position);

	member_lock_tag(name, member, &member_lock);
	lock_member(&member_lock, true);
	/* Dropped since subscription_member looked it up: as if it had not existed. */
	if (run_kept_plan(&lock_member_for_ack_plan, values, NULL, false) == 0)
		raise_unknown_subscription(name);
	row = SPI_tuptable->vals[0];
	description = SPI_tuptable->tupdesc;
	if (with_lease)
		check_lease(name, member, PG_GETARG_UUID_P(3), row, description);

	/* Acknowledging beyond what was delivered would skip events no one received. */
	delivered = column_by_name(row, description, "delivered_through", &isnull);
	if (isnull || compare_checkpoints(checkpoint, (Checkpoint *) DatumGetPointer(delivered)) > 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("checkpoint %s is beyond what subscription \"%s\" delivered",
						checkpoint_to_cstring(checkpoint), text_to_cstring(name)),
				 isnull ?
				 errdetail("poll has delivered nothing to consumer group member %d yet.", member) :
				 errdetail("The last event poll delivered to consumer group member %d has checkpoint %s.",
						   member, checkpoint_to_cstring((Checkpoint *) DatumGetPointer(delivered))),
				 errhint("Acknowledge the checkpoint column of the last event of a batch that poll returned.")));

	/* With a lease, a checkpoint is acknowledged once (before 0.7.0 again is nothing). */
	acknowledged = column_by_name(row, description, "checkpoint", &isnull);
	if (with_lease && !isnull &&
		compare_checkpoints(checkpoint, (Checkpoint *) DatumGetPointer(acknowledged)) <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_IN_USE),
				 errmsg("checkpoint %s of subscription \"%s\" is already acknowledged",
						checkpoint_to_cstring(checkpoint), text_to_cstring(name)),
				 errdetail("Consumer group member %d has acknowledged through checkpoint %s.",
						   member, checkpoint_to_cstring((Checkpoint *) DatumGetPointer(acknowledged))),
				 errhint("Acknowledge each checkpoint once, the last event of the batch when its work is done.")));

	subscription_arguments(&subscription, member, values[2], values[3], 1,
						   event_arguments, event_nulls);
	event_nulls[7] = true;
	if (run_kept_plan(subscription.query_null ? &subscription_event_plan : &subscription_query_event_plan,
					  event_arguments, event_nulls, false) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("checkpoint %s names no event of subscription \"%s\"",
						checkpoint_to_cstring(checkpoint), text_to_cstring(name)),
				 errdetail("Consumer group member %d has been delivered no event with that checkpoint.",
						   member),
				 errhint("Acknowledge the checkpoint column of the last event of a batch that poll returned.")));

	run_kept_plan(&ack_plan, values, NULL, false);
	SPI_finish();
	stop_acting_as_owner(&acting);
	PG_RETURN_VOID();
}
