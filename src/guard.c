/*-------------------------------------------------------------------------
 *
 * guard.c
 *	  The trigger that keeps eventsource.events append-only: any UPDATE,
 *	  DELETE or TRUNCATE of the log is an error, whoever runs it, except the
 *	  DELETE that eventsource.scavenge runs (lifecycle.c) of events that
 *	  deletes and retention settings hide.
 *
 * Its triggers fire on the origin only (ENABLE, not ENABLE ALWAYS): where
 * session_replication_role is replica they do not, so that logical
 * replication's apply worker replays the publisher's scavenge.  That setting
 * takes a superuser (or a role a superuser granted SET on it), and the log's
 * privileges still refuse every other role UPDATE, DELETE and TRUNCATE: only
 * its owner, a superuser, can change recorded events there, as it could by
 * disabling the triggers (test/sql/privileges.sql, append_errors.sql).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "commands/trigger.h"

#include "eventsource.h"

PG_FUNCTION_INFO_V1(eventsource_reject_event_change);

/* Set by scavenge (lifecycle.c) while it deletes events: the guard lets those deletes pass. */
bool		eventsource_scavenging = false;

Datum
eventsource_reject_event_change(PG_FUNCTION_ARGS)
{
	TriggerData *trigger_data = (TriggerData *) fcinfo->context;
	const char *command;

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "eventsource_reject_event_change: not called by the trigger manager");

	if (TRIGGER_FIRED_BY_DELETE(trigger_data->tg_event) && eventsource_scavenging)
		return PointerGetDatum(trigger_data->tg_trigtuple);

	if (TRIGGER_FIRED_BY_UPDATE(trigger_data->tg_event))
		command = "UPDATE";
	else if (TRIGGER_FIRED_BY_DELETE(trigger_data->tg_event))
		command = "DELETE";
	else
		command = "TRUNCATE";

	ereport(ERROR,
			(errcode(ERRCODE_EVENTSOURCE_APPEND_ONLY),
			 errmsg("eventsource.events is append-only"),
			 errdetail("%s of recorded events is not allowed.", command),
			 errhint("Append new events to record a change.")));
	PG_RETURN_NULL();
}
