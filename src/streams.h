/*-------------------------------------------------------------------------
 *
 * streams.h
 *	  The rules of a stream (streams.c): the expected version, tombstones,
 *	  the log-order turn of its writers, its current and first visible
 *	  versions, as functions and as the SQL fragments of the plans that
 *	  write and read streams.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EVENTSOURCE_STREAMS_H
#define EVENTSOURCE_STREAMS_H

#include "fmgr.h"

#include "eventsource.h"

/* expected_version values with a meaning of their own (NULL means "any"). */
#define EXPECTED_VERSION_NO_STREAM		0
#define EXPECTED_VERSION_STREAM_EXISTS	(-1)

/* What the caller expects of the stream (expected_version). */
typedef enum Expectation
{
	EXPECT_ANY,					/* NULL */
	EXPECT_STREAM_EXISTS,		/* -1 */
	EXPECT_VERSION				/* 0 (no stream) or N */
} Expectation;

typedef struct ExpectedVersion
{
	Expectation kind;
	int64		version;		/* for EXPECT_VERSION */
} ExpectedVersion;

/*
 * The expected version and the tombstone (raise_version_conflict and
 * reject_if_tombstoned run while connected to SPI), and the log-order turn
 * of a stream's writers.
 */
extern ExpectedVersion expected_version_argument(FunctionCallInfo fcinfo, int argno);
extern ExpectedVersion checked_expected_version(int64 version);
extern bool expectation_met(ExpectedVersion expected, bool exists, int64 version);
extern void raise_version_conflict(text *stream_id, ExpectedVersion expected, int64 actual,
								   StreamsSchema schema);
extern void reject_if_tombstoned(text *stream_id, StreamsSchema schema);
extern void lock_stream_in_log_order(text *stream_id);

/* A stream of a call that writes or checks many (lock_streams_in_log_order). */
typedef struct StreamTurn
{
	text	   *stream_id;
	bool		writes;			/* false: the call only checks its version */
	int			ordinal;		/* the entry of the call's input, from 1 */
	uint64		hash;			/* set by lock_streams_in_log_order */
} StreamTurn;

extern void lock_streams_in_log_order(StreamTurn *turns, int count);
extern void check_stream_log_order(text *stream_id, int64 previous_version);

/*
 * The new last_transaction_id of stream $1 in the statements that write it
 * (0.7.0 on): this transaction's log transaction id, or 40001 when latest
 * (the row's last_transaction_id, NULL for a new row) is newer.  operation
 * is 'append', 'delete' or 'tombstone', the write the error names.
 */
#define STREAM_LOG_TRANSACTION_ID_SQL(latest, operation) \
	"eventsource.stream_log_transaction_id($1, " latest ", " operation ")"

/* The version of a stream, 0 when it does not exist; call while connected to SPI. */
extern int64 current_stream_version(text *stream_id);
extern bool find_stream_version(text *stream_id, bool for_share, int64 *version);

/*
 * The lowest stream version that stream reads of stream $1 show (NULL when
 * the stream does not exist): an uncorrelated subquery, which the executor
 * runs once and an index scan can use as a bound.
 */
#define FIRST_VISIBLE_VERSION_OF_STREAM_1 \
	"(SELECT eventsource.first_visible_version(v) FROM eventsource.streams v" \
	" WHERE v.stream_id OPERATOR(pg_catalog.=) $1)"

/*
 * The lowest stream version a snapshot of the stream row named stream may be
 * of: the version just before the first visible one, whose state stands for
 * the history retention hides (truncate_before, max_count, max_age), but
 * never a version of a deleted life (at or below deleted_through, which a
 * delete or tombstone sets).  Below the first visible version only because
 * of retention; 1 at least.  _OF_STREAM_1: that of stream $1, as above.
 */
#define FIRST_SNAPSHOT_VERSION(stream) \
	"GREATEST(eventsource.first_visible_version(" stream ") OPERATOR(pg_catalog.-) 1," \
	"         COALESCE(" stream ".deleted_through, 0) OPERATOR(pg_catalog.+) 1)"
#define FIRST_SNAPSHOT_VERSION_OF_STREAM_1 \
	"(SELECT " FIRST_SNAPSHOT_VERSION("v") " FROM eventsource.streams v" \
	" WHERE v.stream_id OPERATOR(pg_catalog.=) $1)"

#endif							/* EVENTSOURCE_STREAMS_H */
