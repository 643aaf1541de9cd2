/*-------------------------------------------------------------------------
 *
 * guard.c
 *	  The trigger that keeps eventsource.events append-only: any UPDATE,
 *	  DELETE or TRUNCATE of the log is an error, whoever runs it, except the
 *	  DELETE that eventsource.scavenge runs (lifecycle.c) of events that
 *	  deletes and retention settings hide.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "commands/trigger.h"

#include "eventsource.h"

PG_FUNCTION_INFO_V1(eventsource_reject_event_change);

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
