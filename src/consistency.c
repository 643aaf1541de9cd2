/*-------------------------------------------------------------------------
 *
 * consistency.c
 *	  Dynamic consistency boundaries: the locks that make a conditional
 *	  append of append_to_streams ("fail if events match this query after
 *	  this checkpoint") correct at READ COMMITTED without SERIALIZABLE and
 *	  without a table lock, and the check of its condition.
 *
 * Every event has consistency keys, hashes of (its type, nothing), and for
 * each of its tags g of (its type, g) and (nothing, g).  Every append takes
 * a transaction-scoped lock (an advisory lock of class
 * EVENTSOURCE_CONSISTENCY_LOCK_CLASS) on each key of its events in
 * RowExclusiveLock mode, before it writes them.  A condition takes, for each
 * item of its query, the one key every event that matches the item has:
 * (type, the item's first tag) for each of its types, (nothing, first tag)
 * for an item of tags only, (type, nothing) for one of types only; in
 * ShareLock mode.  The two modes conflict with each other and not with
 * themselves, so appends never wait for appends, conditions never wait for
 * conditions, and a condition waits only for an append in flight of an
 * event with one of its keys (and such an append for the condition), which
 * is every event that could match it.  A call that does both takes
 * ShareRowExclusiveLock on a key of both.  Once it holds its keys, the
 * condition reads the events that match it after the checkpoint on the
 * latest snapshot: every append of a matching event has then committed
 * (visible) or rolled back, or waits for this transaction.
 *
 * Keys are taken in the order of their hashes, so that two calls never
 * wait for each other in a cycle.  False conflicts: two keys with one
 * 64-bit hash (never in practice), a condition on a hot key (every append
 * of a type the condition names waits for it, and it for them; a condition
 * of types only conflicts with every append of those types), and an item
 * with several tags conflicting with every event of its first tag.
 *
 * The lock table is shared and bounded (max_locks_per_transaction times
 * the connections): a transaction's appends take at most half of
 * max_locks_per_transaction keys; beyond that, one lock on every key (class
 * EVENTSOURCE_EVERY_KEY_LOCK_CLASS) in RowExclusiveLock mode stands for all
 * of them, and every condition takes that lock in ShareLock mode too, so
 * that a bulk append conflicts with every condition, as it must.  A
 * condition itself has at most max_locks_per_transaction keys (54000
 * beyond).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/transam.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/xid8.h"

#include "consistency.h"
#include "eventsource.h"
#include "kept_plan.h"

/* Seeds of the hashes of a key's type and tag, so that (t, nothing) and (nothing, t) differ. */
#define KEY_TYPE_SEED	UINT64CONST(0x7479706573)
#define KEY_TAG_SEED	UINT64CONST(0x74616773)

static uint64
key_hash(const char *type, int type_length, const char *tag, int tag_length)
{
	uint64		type_hash = type != NULL ?
		hash_bytes_extended((const unsigned char *) type, type_length, KEY_TYPE_SEED) : 0;
	uint64		tag_hash = tag != NULL ?
		hash_bytes_extended((const unsigned char *) tag, tag_length, KEY_TAG_SEED) : 0;

	return hash_combine64(type_hash, tag_hash);
}

static void
add_key(ConsistencyKeys *keys, uint64 hash, LOCKMODE mode)
{
	if (keys->count == keys->allocated)
	{
		keys->allocated = Max(16, keys->allocated * 2);
		keys->keys = keys->keys == NULL ? palloc(keys->allocated * sizeof(ConsistencyKey)) :
			repalloc(keys->keys, keys->allocated * sizeof(ConsistencyKey));
	}
	keys->keys[keys->count].hash = hash;
	keys->keys[keys->count].mode = mode;
	keys->count++;
}

/* The keys of an appended event of event_type (text) and tags (text[], or tags_null). */
void
add_event_keys(ConsistencyKeys *keys, Datum event_type, Datum tags, bool tags_null)
{
	text	   *type = DatumGetTextPP(event_type);
	Datum	   *elements;
	int			count = 0;

	add_key(keys, key_hash(VARDATA_ANY(type), VARSIZE_ANY_EXHDR(type), NULL, 0), RowExclusiveLock);
	if (tags_null)
		return;
	deconstruct_array(DatumGetArrayTypeP(tags), TEXTOID, -1, false, TYPALIGN_INT,
					  &elements, NULL, &count);
	for (int i = 0; i < count; i++)
	{
		text	   *tag = DatumGetTextPP(elements[i]);

		add_key(keys, key_hash(VARDATA_ANY(type), VARSIZE_ANY_EXHDR(type),
							   VARDATA_ANY(tag), VARSIZE_ANY_EXHDR(tag)), RowExclusiveLock);
		add_key(keys, key_hash(NULL, 0, VARDATA_ANY(tag), VARSIZE_ANY_EXHDR(tag)), RowExclusiveLock);
	}
}

/* The number of keys the item of a condition takes (check_condition_items has checked it). */
static int
item_key_count(const QueryItem *item)
{
	return item->types != NULL ? ArrayGetNItems(ARR_NDIM(item->types), ARR_DIMS(item->types)) : 1;
}

/*
 * Checks that every item of a condition names types or tags (an item of
 * neither would match every event), and that the condition has at most
 * max_locks_per_transaction keys.
 */
void
check_condition_items(const EventQuery *condition)
{
	int			keys = 0;

	for (int i = 0; i < condition->count; i++)
	{
		if (condition->items[i].types == NULL && condition->items[i].tags == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("item %d of the condition has neither types nor tags", i + 1),
					 errdetail("An item of a condition must name the event types or the tags of the events it is about.")));
		keys += item_key_count(&condition->items[i]);
	}
	if (keys > max_locks_per_xact)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("the condition has %d keys", keys),
				 errdetail("A condition has at most max_locks_per_transaction (%d) keys: one per event type of each item, one for an item of tags only.",
						   max_locks_per_xact)));
}

/* The keys of a condition (check_condition_items has checked it). */
void
add_condition_keys(ConsistencyKeys *keys, const EventQuery *condition)
{
	for (int i = 0; i < condition->count; i++)
	{
		const QueryItem *item = &condition->items[i];
		const char *tag = NULL;
		int			tag_length = 0;
		Datum	   *types = NULL;
		int			type_count = 0;

		if (item->tags != NULL)
		{
			Datum	   *tags;
			int			tag_count;
			text	   *first;

			deconstruct_array(item->tags, TEXTOID, -1, false, TYPALIGN_INT, &tags, NULL, &tag_count);
			first = DatumGetTextPP(tags[0]);
			tag = VARDATA_ANY(first);
			tag_length = VARSIZE_ANY_EXHDR(first);
		}
		if (item->types == NULL)
		{
			add_key(keys, key_hash(NULL, 0, tag, tag_length), ShareLock);
			continue;
		}
		deconstruct_array(item->types, TEXTOID, -1, false, TYPALIGN_INT, &types, NULL, &type_count);
		for (int t = 0; t < type_count; t++)
		{
			text	   *type = DatumGetTextPP(types[t]);

			add_key(keys, key_hash(VARDATA_ANY(type), VARSIZE_ANY_EXHDR(type), tag, tag_length),
					ShareLock);
		}
	}
}

static int
compare_keys(const void *left, const void *right)
{
	uint64		a = ((const ConsistencyKey *) left)->hash;
	uint64		b = ((const ConsistencyKey *) right)->hash;

	return a < b ? -1 : (a > b ? 1 : 0);
}

/* The mode that conflicts with whatever either of two modes conflicts with. */
static LOCKMODE
stronger_mode(LOCKMODE a, LOCKMODE b)
{
	return a == b ? a : ShareRowExclusiveLock;
}

/*
 * How many keys this transaction's appends have taken (a local transaction
 * id and its count), and whether it holds the lock on every key for them.
 */
static LocalTransactionId keys_transaction = InvalidLocalTransactionId;
static int	append_keys_taken = 0;
static bool every_key_taken = false;

static LockAcquireResult
take_key(uint32 high, uint32 low, uint16 lock_class, LOCKMODE mode)
{
	LOCKTAG		tag;

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, high, low, lock_class);
	return LockAcquire(&tag, mode, false, false);
}

/*
 * Takes the keys (each once, in the strongest mode asked of it), in the
 * order of their hashes.  condition: the call has a condition, and takes
 * the lock on every key in share mode too.
 */
void
lock_consistency_keys(ConsistencyKeys *keys, bool condition)
{
	int			unique = 0;
	int			append_only = 0;
	bool		appends_as_every_key;

	if (MyProc->lxid != keys_transaction)
	{
		keys_transaction = MyProc->lxid;
		append_keys_taken = 0;
		every_key_taken = false;
	}

	qsort(keys->keys, keys->count, sizeof(ConsistencyKey), compare_keys);
	for (int i = 0; i < keys->count; i++)
	{
		if (unique > 0 && keys->keys[unique - 1].hash == keys->keys[i].hash)
			keys->keys[unique - 1].mode = stronger_mode(keys->keys[unique - 1].mode, keys->keys[i].mode);
		else
			keys->keys[unique++] = keys->keys[i];
	}
	keys->count = unique;
	for (int i = 0; i < keys->count; i++)
		if (keys->keys[i].mode == RowExclusiveLock)
			append_only++;

	/* Beyond the budget, the appends' keys are the lock on every key (taken first). */
	appends_as_every_key = every_key_taken ||
		append_keys_taken + append_only > max_locks_per_xact / 2;
	if (condition || (appends_as_every_key && append_only > 0))
	{
		LOCKMODE	mode = condition ? ShareLock : RowExclusiveLock;

		if (appends_as_every_key && append_only > 0)
			mode = stronger_mode(mode, RowExclusiveLock);
		(void) take_key(0, 0, EVENTSOURCE_EVERY_KEY_LOCK_CLASS, mode);
		if (mode != ShareLock)
			every_key_taken = true;
	}
	for (int i = 0; i < keys->count; i++)
	{
		ConsistencyKey *key = &keys->keys[i];

		if (key->mode == RowExclusiveLock && appends_as_every_key)
			continue;
		if (take_key((uint32) (key->hash >> 32), (uint32) key->hash, EVENTSOURCE_CONSISTENCY_LOCK_CLASS,
					 key->mode) == LOCKACQUIRE_OK && key->mode != ShareLock)
			append_keys_taken++;
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * Raises SE006 if an event that matches the condition comes after the
 * checkpoint after (NULL: any event) in the log, as committed now (the
 * latest snapshot), this transaction's own events too.  Call while holding
 * the condition's keys and connected to SPI.
 */
void
raise_if_condition_matched(const EventQuery *condition, const Checkpoint *after)
{
	Checkpoint	start = {0, 0};
	Checkpoint	first;
	bool		found = false;
	char	   *stream_id = NULL;
	int64		stream_version = 0;
	char	   *event_type = NULL;
	Datum		every_transaction = FullTransactionIdGetDatum(FullTransactionIdFromU64(PG_UINT64_MAX));

	if (after != NULL)
		start = *after;
	for (int i = 0; i < condition->count; i++)
	{
		HeapTuple	row;
		TupleDesc	description;
		bool		isnull;
		Checkpoint	checkpoint;

		if (read_query_item(&condition->items[i], &start, 1, every_transaction, true) == 0)
			continue;
		row = SPI_tuptable->vals[0];
		description = SPI_tuptable->tupdesc;
		checkpoint = *(Checkpoint *) DatumGetPointer(SPI_getbinval(row, description, description->natts,
																   &isnull));
		if (found && compare_checkpoints(&checkpoint, &first) >= 0)
			continue;
		found = true;
		first = checkpoint;
		stream_id = TextDatumGetCString(column_by_name(row, description, "stream_id", &isnull));
		stream_version = DatumGetInt64(column_by_name(row, description, "stream_version", &isnull));
		event_type = TextDatumGetCString(column_by_name(row, description, "event_type", &isnull));
	}
	if (!found)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_EVENTSOURCE_APPEND_CONDITION_FAILED),
			 errmsg("append condition failed"),
			 errdetail("The event at checkpoint %s (version " INT64_FORMAT " of stream \"%s\", type \"%s\") matches the condition's query after %s.",
					   checkpoint_to_cstring(&first), stream_version, stream_id, event_type,
					   after != NULL ? psprintf("checkpoint %s", checkpoint_to_cstring(after)) :
					   "the start of the log"),
			 errhint("Read the events of the query again (read_by_query), decide again, and retry with the checkpoint of the last event read, in a new transaction.")));
}
