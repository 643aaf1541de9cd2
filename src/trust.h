/*-------------------------------------------------------------------------
 *
 * trust.h
 *	  Whether the background worker may act on this database's eventsource
 *	  schema (trust.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef EVENTSOURCE_TRUST_H
#define EVENTSOURCE_TRUST_H

/*
 * Whether the notifier acts on the database's eventsource schema, and if not,
 * why.
 */
typedef enum ExtensionTrust
{
	EXTENSION_SERVED,
	EXTENSION_NOT_INSTALLED,
	EXTENSION_OWNER_NOT_SUPERUSER,
	EXTENSION_SCHEMA_RENAMED,
	EXTENSION_SCHEMA_OWNER_NOT_SUPERUSER,
	EXTENSION_SCHEMA_CREATE_GRANTED,
	EXTENSION_TABLE_OWNER_NOT_SUPERUSER,
	EXTENSION_TABLE_TRIGGER_GRANTED,
	EXTENSION_TABLE_FOREIGN_TRIGGER,
	EXTENSION_TABLE_RULE
} ExtensionTrust;

/* The answer for this transaction, a refusal logged when it changes. */
extern ExtensionTrust extension_trust(void);
extern bool extension_row(Oid extension_oid, Oid *schema_oid, Oid *owner);
/* Whether it is EXTENSION_SERVED, logging nothing (the epoch starter's question). */
extern bool worker_may_serve_extension_quietly(void);

#endif							/* EVENTSOURCE_TRUST_H */
