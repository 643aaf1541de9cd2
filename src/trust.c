/*-------------------------------------------------------------------------
 *
 * trust.c
 *	  Whether the background worker, a superuser, may act on a database's
 *	  eventsource schema (trust.h): the extension installed and owned by a
 *	  superuser, its schema and its tables and views out of every other
 *	  role's hands (owners, CREATE on the schema, TRIGGER grants, triggers
 *	  and rules that are not the extension's).  The worker asks at the start
 *	  of each of its transactions and logs a refusal once.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/table.h"
#include "catalog/dependency.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_depend.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_rewrite.h"
#include "catalog/pg_trigger.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "pgstat.h"
#include "rewrite/rewriteSupport.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/xid8.h"

#include "eventsource.h"
#include "trust.h"

/* What a refusal of judge_extension is about. */
typedef struct TrustCulprit
{
	Oid			oid;			/* the role (InvalidOid: PUBLIC), or the schema */
	Oid			relation;		/* the extension's table or view, for EXTENSION_TABLE_* */
	NameData	object_name;	/* the trigger or rule */
} TrustCulprit;

/* The last answer of extension_trust, so that a refusal is logged once. */
static ExtensionTrust last_trust = EXTENSION_SERVED;

/*
 * judge_tables' latest answer, for the extension extension_of_judged_tables,
 * until a relation cache or role invalidation arrives (CREATE TRIGGER, CREATE
 * RULE, GRANT, ALTER TABLE ... OWNER and ALTER ROLE all send one): the worker
 * asks at the start of each of its transactions.
 */
static Oid	extension_of_judged_tables = InvalidOid;
static ExtensionTrust judged_tables_trust;
static TrustCulprit judged_tables_culprit;
static bool judged_tables_callbacks_registered = false;

/*
 * The schema and owner of the extension with this OID, as pg_extension says
 * now; false when there is no such extension.  (PostgreSQL 15 does not
 * export get_extension_schema, and the owner is needed too.)
 */
bool
extension_row(Oid extension_oid, Oid *schema_oid, Oid *owner)
{
	Relation	pg_extension = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tuple;
	bool		found;

	ScanKeyInit(&key, Anum_pg_extension_oid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(extension_oid));
	scan = systable_beginscan(pg_extension, ExtensionOidIndexId, true, NULL, 1, &key);
	tuple = systable_getnext(scan);
	found = HeapTupleIsValid(tuple);
	if (found)
	{
		*schema_oid = ((Form_pg_extension) GETSTRUCT(tuple))->extnamespace;
		*owner = ((Form_pg_extension) GETSTRUCT(tuple))->extowner;
	}
	systable_endscan(scan);
	table_close(pg_extension, AccessShareLock);
	return found;
}

/*
 * Whether a role other than a superuser (or PUBLIC: *public_granted) holds
 * the privilege in this ACL; the role, InvalidOid when none does.
 */
static Oid
non_superuser_grantee(Acl *acl, AclMode privilege, bool *public_granted)
{
	int16		item_length;
	bool		item_by_value;
	char		item_alignment;
	Datum	   *items;
	int			count;

	*public_granted = false;
	get_typlenbyvalalign(ACLITEMOID, &item_length, &item_by_value, &item_alignment);
	deconstruct_array(acl, ACLITEMOID, item_length, item_by_value, item_alignment,
					  &items, NULL, &count);
	for (int i = 0; i < count; i++)
	{
		AclItem    *item = (AclItem *) DatumGetPointer(items[i]);

		if ((ACLITEM_GET_PRIVS(*item) & privilege) == 0)
			continue;
		if (item->ai_grantee == ACL_ID_PUBLIC)
		{
			*public_granted = true;
			return InvalidOid;
		}
		if (!superuser_arg(item->ai_grantee))
			return item->ai_grantee;
	}
	return InvalidOid;
}

/*
 * A role other than a superuser that a schema's ACL lets create objects in
 * it: sets *public_may_create when PUBLIC may, else returns the role
 * (InvalidOid when none may).
 */
static Oid
non_superuser_creator(HeapTuple schema_tuple, bool *public_may_create)
{
	bool		isnull;
	Datum		acl_datum = SysCacheGetAttr(NAMESPACEOID, schema_tuple, Anum_pg_namespace_nspacl, &isnull);

	*public_may_create = false;
	/* No ACL: the owner's default privileges, nothing for PUBLIC. */
	if (isnull)
		return InvalidOid;
	return non_superuser_grantee(DatumGetAclP(acl_datum), ACL_CREATE, public_may_create);
}

/*
 * Whether a trigger is not the extension's: the extension's are those of its
 * constraints (a foreign key between two of its tables) and those that call
 * a function of the extension, with no WHEN condition (which could call any
 * function).  PostgreSQL does not record triggers as members of an
 * extension.  Sets *name to a foreign one's.
 */
static bool
foreign_trigger(HeapTuple row, TupleDesc description, Oid extension_oid, NameData *name)
{
	Form_pg_trigger trigger = (Form_pg_trigger) GETSTRUCT(row);
	bool		no_condition;
	bool		of_extension;

	(void) heap_getattr(row, Anum_pg_trigger_tgqual, description, &no_condition);
	if (trigger->tgisinternal)
		of_extension = OidIsValid(trigger->tgconstrrelid) &&
			getExtensionOfObject(RelationRelationId, trigger->tgconstrrelid) == extension_oid;
	else
		of_extension = no_condition &&
			getExtensionOfObject(ProcedureRelationId, trigger->tgfoid) == extension_oid;
	if (!of_extension)
		*name = trigger->tgname;
	return !of_extension;
}

/* Whether a rule is one other than a view's own; sets *name to it. */
static bool
foreign_rule(HeapTuple row, TupleDesc description, Oid extension_oid, NameData *name)
{
	Form_pg_rewrite rule = (Form_pg_rewrite) GETSTRUCT(row);

	if (strcmp(NameStr(rule->rulename), ViewSelectRuleName) == 0)
		return false;
	*name = rule->rulename;
	return true;
}

/*
 * Whether a row of a catalog (pg_trigger, pg_rewrite) about a relation is
 * foreign, as is_foreign says: scans the rows by the index that starts with
 * the relation's column.
 */
static bool
foreign_row_on(Oid relation_oid, Oid catalog_oid, Oid index_oid, AttrNumber relation_column,
			   bool (*is_foreign) (HeapTuple, TupleDesc, Oid, NameData *),
			   Oid extension_oid, NameData *name)
{
	Relation	catalog = table_open(catalog_oid, AccessShareLock);
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	row;
	bool		found = false;

	ScanKeyInit(&key, relation_column, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(relation_oid));
	scan = systable_beginscan(catalog, index_oid, true, NULL, 1, &key);
	while (!found && HeapTupleIsValid(row = systable_getnext(scan)))
		found = is_foreign(row, RelationGetDescr(catalog), extension_oid, name);
	systable_endscan(scan);
	table_close(catalog, AccessShareLock);
	return found;
}

/*
 * Judges one of the extension's relations: owned by a superuser, TRIGGER
 * granted to no other role, no trigger but the extension's and no rule but
 * a view's own.  The notifier writes to the extension's tables with
 * superuser rights: a trigger or rule there would run with them.
 */
static ExtensionTrust
judge_relation(Oid relation_oid, Oid extension_oid, TrustCulprit *culprit)
{
	HeapTuple	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relation_oid));
	Form_pg_class relation;
	ExtensionTrust trust = EXTENSION_SERVED;
	bool		isnull;
	Datum		acl_datum;

	if (!HeapTupleIsValid(tuple))
		return EXTENSION_SERVED;	/* dropped meanwhile: nothing of it can run */
	relation = (Form_pg_class) GETSTRUCT(tuple);
	culprit->relation = relation_oid;
	if (!superuser_arg(relation->relowner))
	{
		culprit->oid = relation->relowner;
		trust = EXTENSION_TABLE_OWNER_NOT_SUPERUSER;
	}
	else
	{
		bool		public_granted;

		acl_datum = SysCacheGetAttr(RELOID, tuple, Anum_pg_class_relacl, &isnull);
		if (!isnull &&
			(OidIsValid(culprit->oid = non_superuser_grantee(DatumGetAclP(acl_datum), ACL_TRIGGER,
															 &public_granted)) ||
			 public_granted))
			trust = EXTENSION_TABLE_TRIGGER_GRANTED;
	}
	ReleaseSysCache(tuple);
	if (trust != EXTENSION_SERVED)
		return trust;
	if (foreign_row_on(relation_oid, TriggerRelationId, TriggerRelidNameIndexId, Anum_pg_trigger_tgrelid,
					   foreign_trigger, extension_oid, &culprit->object_name))
		return EXTENSION_TABLE_FOREIGN_TRIGGER;
	if (foreign_row_on(relation_oid, RewriteRelationId, RewriteRelRulenameIndexId, Anum_pg_rewrite_ev_class,
					   foreign_rule, extension_oid, &culprit->object_name))
		return EXTENSION_TABLE_RULE;
	return EXTENSION_SERVED;
}

static void
forget_judged_tables(Datum arg, Oid relation_oid)
{
	extension_of_judged_tables = InvalidOid;
}

static void
forget_judged_tables_of_roles(Datum arg, int cache_id, uint32 hash_value)
{
	extension_of_judged_tables = InvalidOid;
}

/*
 * Judges each relation that is a member of the extension (judge_relation),
 * or returns the answer of the last time when no relation or role changed
 * since.
 */
static ExtensionTrust
judge_tables(Oid extension_oid, TrustCulprit *culprit)
{
	Relation	pg_depend;
	ScanKeyData keys[2];
	SysScanDesc scan;
	HeapTuple	row;
	ExtensionTrust trust = EXTENSION_SERVED;

	if (!judged_tables_callbacks_registered)
	{
		CacheRegisterRelcacheCallback(forget_judged_tables, (Datum) 0);
		CacheRegisterSyscacheCallback(AUTHOID, forget_judged_tables_of_roles, (Datum) 0);
		judged_tables_callbacks_registered = true;
	}
	if (extension_of_judged_tables == extension_oid)
	{
		*culprit = judged_tables_culprit;
		return judged_tables_trust;
	}

	pg_depend = table_open(DependRelationId, AccessShareLock);
	ScanKeyInit(&keys[0], Anum_pg_depend_refclassid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(ExtensionRelationId));
	ScanKeyInit(&keys[1], Anum_pg_depend_refobjid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(extension_oid));
	scan = systable_beginscan(pg_depend, DependReferenceIndexId, true, NULL, 2, keys);
	while (trust == EXTENSION_SERVED && HeapTupleIsValid(row = systable_getnext(scan)))
	{
		Form_pg_depend dependency = (Form_pg_depend) GETSTRUCT(row);

		if (dependency->deptype == DEPENDENCY_EXTENSION && dependency->classid == RelationRelationId)
			trust = judge_relation(dependency->objid, extension_oid, culprit);
	}
	systable_endscan(scan);
	table_close(pg_depend, AccessShareLock);

	extension_of_judged_tables = extension_oid;
	judged_tables_trust = trust;
	judged_tables_culprit = *culprit;
	return trust;
}

/*
 * Logs why the notifier refuses to act on the database's eventsource schema,
 * as a WARNING, or that it acts on it again.  culprit->oid is the role to
 * blame (InvalidOid: PUBLIC), or the schema for EXTENSION_SCHEMA_RENAMED.
 */
static void
log_trust_change(ExtensionTrust trust, ExtensionTrust previous, const TrustCulprit *culprit_of)
{
	const char *database_name = get_database_name(MyDatabaseId);
	const char *superuser_name = quote_identifier(GetUserNameFromId(BOOTSTRAP_SUPERUSERID, false));
	Oid			culprit = culprit_of->oid;
	char	   *relation_name = OidIsValid(culprit_of->relation) ? get_rel_name(culprit_of->relation) : NULL;
	const char *object_name = quote_identifier(NameStr(culprit_of->object_name));
	char	   *name;

	/* Dropped since it was judged: named by its OID. */
	if (OidIsValid(culprit_of->relation))
		relation_name = relation_name ? quote_qualified_identifier("eventsource", relation_name) :
			psprintf("%u", culprit_of->relation);

	switch (trust)
	{
		case EXTENSION_OWNER_NOT_SUPERUSER:
			name = GetUserNameFromId(culprit, true);
			ereport(WARNING,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("eventsource notifier does not serve database \"%s\"", database_name),
					 errdetail("The extension eventsource is owned by role \"%s\", which is not a superuser; the owner of an extension can change it, and the notifier runs what it finds there with superuser rights.",
							   name ? name : "?"),
					 errhint("Make the role a superuser again, or give what it owns in the database to a superuser: REASSIGN OWNED BY %s TO %s.",
							 name ? quote_identifier(name) : "...", superuser_name)));
			break;
		case EXTENSION_SCHEMA_RENAMED:
			name = get_namespace_name(culprit);
			ereport(WARNING,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("eventsource notifier does not serve database \"%s\"", database_name),
					 errdetail("The extension's schema is named \"%s\", and the notifier reads the schema named eventsource.",
							   name ? name : "?"),
					 errhint("Rename it back: ALTER SCHEMA %s RENAME TO eventsource.",
							 name ? quote_identifier(name) : "...")));
			break;
		case EXTENSION_SCHEMA_OWNER_NOT_SUPERUSER:
			name = GetUserNameFromId(culprit, true);
			ereport(WARNING,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("eventsource notifier does not serve database \"%s\"", database_name),
					 errdetail("Its schema eventsource is owned by role \"%s\", which is not a superuser; the owner of a schema can create, replace and drop objects in it, and the notifier runs what it finds there with superuser rights.",
							   name ? name : "?"),
					 errhint("Check what the role created in the schema, then give the schema to a superuser: ALTER SCHEMA eventsource OWNER TO %s.",
							 superuser_name)));
			break;
		case EXTENSION_SCHEMA_CREATE_GRANTED:
			name = OidIsValid(culprit) ? GetUserNameFromId(culprit, true) : NULL;
			ereport(WARNING,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("eventsource notifier does not serve database \"%s\"", database_name),
					 OidIsValid(culprit) ?
					 errdetail("Its schema eventsource grants CREATE to role \"%s\", which is not a superuser; that role can create objects in it, and the notifier runs what it finds there with superuser rights.",
							   name ? name : "?") :
					 errdetail("Its schema eventsource grants CREATE to PUBLIC; any role can create objects in it, and the notifier runs what it finds there with superuser rights."),
					 errhint("Revoke it with REVOKE CREATE ON SCHEMA eventsource FROM %s.",
							 OidIsValid(culprit) ? (name ? quote_identifier(name) : "the role") : "PUBLIC")));
			break;
		case EXTENSION_TABLE_OWNER_NOT_SUPERUSER:
			name = GetUserNameFromId(culprit, true);
			ereport(WARNING,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("eventsource notifier does not serve database \"%s\"", database_name),
					 errdetail("The extension's relation %s is owned by role \"%s\", which is not a superuser; the owner of a table can create triggers and rules on it, and the notifier writes to it with superuser rights.",
							   relation_name, name ? name : "?"),
					 errhint("Give it back to a superuser: ALTER TABLE %s OWNER TO %s.",
							 relation_name, superuser_name)));
			break;
		case EXTENSION_TABLE_TRIGGER_GRANTED:
			name = OidIsValid(culprit) ? GetUserNameFromId(culprit, true) : NULL;
			ereport(WARNING,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("eventsource notifier does not serve database \"%s\"", database_name),
					 OidIsValid(culprit) ?
					 errdetail("The extension's relation %s grants TRIGGER to role \"%s\", which is not a superuser; that role can create triggers on it, and the notifier writes to it with superuser rights.",
							   relation_name, name ? name : "?") :
					 errdetail("The extension's relation %s grants TRIGGER to PUBLIC; any role can create triggers on it, and the notifier writes to it with superuser rights.",
							   relation_name),
					 errhint("Revoke it, and check the relations' triggers: REVOKE TRIGGER ON ALL TABLES IN SCHEMA eventsource FROM %s.",
							 OidIsValid(culprit) ? (name ? quote_identifier(name) : "the role") : "PUBLIC")));
			break;
		case EXTENSION_TABLE_FOREIGN_TRIGGER:
			ereport(WARNING,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("eventsource notifier does not serve database \"%s\"", database_name),
					 errdetail("The extension's relation %s has trigger %s, which is not one of the extension's; the notifier writes to the relation with superuser rights, and the trigger would run with them.",
							   relation_name, object_name),
					 errhint("Check what it does, then drop it: DROP TRIGGER %s ON %s.",
							 object_name, relation_name)));
			break;
		case EXTENSION_TABLE_RULE:
			ereport(WARNING,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("eventsource notifier does not serve database \"%s\"", database_name),
					 errdetail("The extension's relation %s has rule %s; the notifier writes to the relation with superuser rights, and the rule would rewrite what it does.",
							   relation_name, object_name),
					 errhint("Drop it: DROP RULE %s ON %s.", object_name, relation_name)));
			break;
		case EXTENSION_SERVED:
			if (previous != EXTENSION_NOT_INSTALLED)
				ereport(LOG,
						(errmsg("eventsource notifier serves database \"%s\" again", database_name)));
			break;
		case EXTENSION_NOT_INSTALLED:
			break;
	}
}

/*
 * Whether the notifier may act on this database's eventsource schema, and
 * if not, why.  The notifier runs as a superuser, so it acts only on the
 * installed extension, and only while no role but a superuser can create,
 * replace or drop objects in its schema: the extension's owner and the
 * schema's owner are superusers, and no other role may create in it; and
 * while what the notifier writes to runs nothing but the extension's code:
 * no trigger or rule a role added to the extension's tables, and no role
 * but a superuser that may add a trigger (judge_tables).  Locks the
 * extension so that it cannot be dropped before the transaction ends.
 * *culprit_result is what a refusal is about.
 */
static ExtensionTrust
judge_extension(TrustCulprit *culprit_result)
{
	Oid			extension_oid = get_extension_oid("eventsource", true);
	Oid			schema_oid = InvalidOid;
	Oid			extension_owner = InvalidOid;
	Oid			culprit = InvalidOid;
	ExtensionTrust trust = EXTENSION_SERVED;

	memset(culprit_result, 0, sizeof(TrustCulprit));
	if (OidIsValid(extension_oid))
	{
		LockDatabaseObject(ExtensionRelationId, extension_oid, 0, AccessShareLock);

		/*
		 * It may have been dropped while this waited for the lock: look
		 * again, with a catalog snapshot taken now that it is held.
		 */
		InvalidateCatalogSnapshot();
		if (!extension_row(extension_oid, &schema_oid, &extension_owner))
			extension_oid = InvalidOid;
	}

	if (!OidIsValid(extension_oid))
		trust = EXTENSION_NOT_INSTALLED;
	else if (!superuser_arg(extension_owner))
	{
		trust = EXTENSION_OWNER_NOT_SUPERUSER;
		culprit = extension_owner;
	}
	else
	{
		HeapTuple	schema_tuple = SearchSysCache1(NAMESPACEOID, ObjectIdGetDatum(schema_oid));
		Form_pg_namespace schema;
		bool		public_may_create;

		if (!HeapTupleIsValid(schema_tuple))
			elog(ERROR, "cache lookup failed for schema %u", schema_oid);
		schema = (Form_pg_namespace) GETSTRUCT(schema_tuple);
		if (strcmp(NameStr(schema->nspname), "eventsource") != 0)
		{
			trust = EXTENSION_SCHEMA_RENAMED;
			culprit = schema_oid;
		}
		else if (!superuser_arg(schema->nspowner))
		{
			trust = EXTENSION_SCHEMA_OWNER_NOT_SUPERUSER;
			culprit = schema->nspowner;
		}
		else if (OidIsValid(culprit = non_superuser_creator(schema_tuple, &public_may_create)) ||
				 public_may_create)
			trust = EXTENSION_SCHEMA_CREATE_GRANTED;
		ReleaseSysCache(schema_tuple);
	}
	culprit_result->oid = culprit;
	if (trust == EXTENSION_SERVED)
		trust = judge_tables(extension_oid, culprit_result);
	return trust;
}

/*
 * judge_extension, with a refusal other than "not installed" logged once,
 * until the answer changes.
 */
ExtensionTrust
extension_trust(void)
{
	TrustCulprit culprit;
	ExtensionTrust trust = judge_extension(&culprit);

	if (trust != last_trust)
		log_trust_change(trust, last_trust, &culprit);
	last_trust = trust;
	return trust;
}

/*
 * Whether the worker may act on this database's eventsource schema in this
 * transaction, as extension_trust says (each of the worker's transactions
 * asks it first: worker_start_transaction), but without logging a refusal:
 * for the epoch starter, which leaves a database it may not serve to the
 * appender that asked for it.
 */
bool
worker_may_serve_extension_quietly(void)
{
	TrustCulprit culprit;

	return judge_extension(&culprit) == EXTENSION_SERVED;
}
