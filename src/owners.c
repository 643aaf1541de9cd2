/*-------------------------------------------------------------------------
 *
 * owners.c
 *	  The roles that own projections and subscriptions, as PostgreSQL treats
 *	  the owners of its own objects: DROP ROLE of an owner fails naming what
 *	  it owns, REASSIGN OWNED hands its projections and subscriptions to the
 *	  new role, and DROP OWNED drops them.  Run from the utility hook
 *	  (launcher.c), so only with the library preloaded, and like PostgreSQL's
 *	  own checks only in the current database: elsewhere a projection whose
 *	  owner is gone stops with an error naming it (projection.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "eventsource.h"
#include "kept_plan.h"

/*
 * The rows of projections or subscriptions t owned by the roles $1 (every
 * plan here takes the roles, and the new owner $2).
 */
#define OWNED_BY_ROLES " WHERE t.owner::pg_catalog.oid OPERATOR(pg_catalog.=) ANY ($1)"

/* What the roles own, one line each. */
static KeptPlan owned_objects_plan = {
	"SELECT pg_catalog.format('owner of projection %s', t.name) FROM eventsource.projections t" OWNED_BY_ROLES
	" UNION ALL"
	" SELECT pg_catalog.format('owner of subscription %s', t.name) FROM eventsource.subscriptions t" OWNED_BY_ROLES
	" ORDER BY 1",
	2, {OIDARRAYOID, REGROLEOID}
};

/* The roles' projections and subscriptions ($1) handed to $2, or dropped. */
static KeptPlan reassign_owned_plan = {
	"WITH projections AS (UPDATE eventsource.projections t SET owner = $2" OWNED_BY_ROLES ")"
	" UPDATE eventsource.subscriptions t SET owner = $2" OWNED_BY_ROLES,
	2, {OIDARRAYOID, REGROLEOID}
};

static KeptPlan drop_owned_plan = {
	"WITH projections AS (DELETE FROM eventsource.projections t" OWNED_BY_ROLES ")"
	" DELETE FROM eventsource.subscriptions t" OWNED_BY_ROLES,
	2, {OIDARRAYOID, REGROLEOID}
};

/*
 * The owner of the extension's table eventsource.subscriptions when the
 * extension is installed in this database with owned subscriptions (0.6.0
 * on), InvalidOid otherwise.
 */
static Oid
owners_table_owner(void)
{
	Oid			schema;
	Oid			subscriptions;
	HeapTuple	tuple;
	Oid			owner;

	/* The extension is not relocatable: its schema is eventsource. */
	if (!OidIsValid(get_extension_oid("eventsource", true)))
		return InvalidOid;
	schema = get_namespace_oid("eventsource", false);
	subscriptions = get_relname_relid("subscriptions", schema);
	if (!OidIsValid(subscriptions) || get_attnum(subscriptions, "owner") == InvalidAttrNumber)
		return InvalidOid;
	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(subscriptions));
	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for relation %u", subscriptions);
	owner = ((Form_pg_class) GETSTRUCT(tuple))->relowner;
	ReleaseSysCache(tuple);
	return owner;
}

/* The roles a list of RoleSpecs names, as an oid[]; those that do not exist are left out. */
static Datum
role_array(List *role_specs)
{
	Datum	   *roles = palloc(Max(list_length(role_specs), 1) * sizeof(Datum));
	int			count = 0;
	ListCell   *cell;

	foreach(cell, role_specs)
	{
		Oid			role = get_rolespec_oid(lfirst(cell), true);

		if (OidIsValid(role))
			roles[count++] = ObjectIdGetDatum(role);
	}
	return PointerGetDatum(construct_array(roles, count, OIDOID, sizeof(Oid), true, TYPALIGN_INT));
}

/*
 * Runs the plan (its first argument the roles, the second new_owner) as the
 * owner of the extension's tables.  With owned, the first column of its
 * rows, one a line, is appended to it.
 */
static void
run_as_extension_owner(Oid table_owner, KeptPlan *plan, Datum roles, Oid new_owner, StringInfo owned)
{
	Oid			saved_user;
	int			saved_security_context;
	Datum		values[2] = {roles, ObjectIdGetDatum(new_owner)};
	uint64		rows = 0;

	GetUserIdAndSecContext(&saved_user, &saved_security_context);
	SetUserIdAndSecContext(table_owner, saved_security_context | SECURITY_LOCAL_USERID_CHANGE);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	rows = run_kept_plan(plan, values, NULL, false);
	for (uint64 i = 0; owned != NULL && i < rows; i++)
		appendStringInfo(owned, "%s%s", owned->len > 0 ? "\n" : "",
						 SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1));
	SPI_finish();
	SetUserIdAndSecContext(saved_user, saved_security_context);
}

/*
 * Called before a utility statement runs: the roles a DROP ROLE names, as
 * OIDs (their names are gone once it has run), or NULL for any other
 * statement.
 */
Oid *
roles_to_drop(Node *statement)
{
	List	   *roles;
	Oid		   *oids;
	int			i = 0;
	ListCell   *cell;

	if (!IsA(statement, DropRoleStmt))
		return NULL;
	roles = ((DropRoleStmt *) statement)->roles;
	oids = palloc(Max(list_length(roles), 1) * sizeof(Oid));
	foreach(cell, roles)
		oids[i++] = get_rolespec_oid(lfirst(cell), true);
	return oids;
}

/*
 * Fails a DROP ROLE that has dropped a role that owns projections or
 * subscriptions in this database, naming them, as PostgreSQL's fails for a
 * role that owns objects.  It looks only after PostgreSQL has checked the
 * caller's right to drop the roles, so no one else learns what they own.
 */
static void
check_dropped_roles(DropRoleStmt *statement, const Oid *dropped_roles, Oid table_owner)
{
	int			i = 0;
	ListCell   *cell;

	foreach(cell, statement->roles)
	{
		Datum		role = ObjectIdGetDatum(dropped_roles[i++]);
		StringInfoData owned;

		if (!OidIsValid(DatumGetObjectId(role)))
			continue;
		initStringInfo(&owned);
		run_as_extension_owner(table_owner, &owned_objects_plan,
							   PointerGetDatum(construct_array(&role, 1, OIDOID, sizeof(Oid), true, TYPALIGN_INT)),
							   InvalidOid, &owned);
		if (owned.len > 0)
			ereport(ERROR,
					(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
					 errmsg("role \"%s\" cannot be dropped because some objects depend on it",
							((RoleSpec *) lfirst(cell))->rolename),
					 errdetail_internal("%s", owned.data),
					 errhint("Drop them, give them to another role with REASSIGN OWNED, or drop them with DROP OWNED.")));
	}
}

/*
 * Called after a utility statement succeeded (dropped_roles from
 * roles_to_drop): DROP ROLE fails if a dropped role owned projections or
 * subscriptions here; REASSIGN OWNED hands the roles' projections and
 * subscriptions in this database to the new role, DROP OWNED drops them,
 * when eventsource_admin runs them (PostgreSQL has checked the rest of the
 * caller's rights).
 */
void
after_role_statement(Node *statement, const Oid *dropped_roles)
{
	Oid			table_owner;

	if (!IsA(statement, DropRoleStmt) && !IsA(statement, ReassignOwnedStmt) &&
		!IsA(statement, DropOwnedStmt))
		return;
	table_owner = owners_table_owner();
	if (!OidIsValid(table_owner))
		return;
	if (IsA(statement, DropRoleStmt))
	{
		check_dropped_roles((DropRoleStmt *) statement, dropped_roles, table_owner);
		return;
	}

	/*
	 * Any member of a role may REASSIGN or DROP what it owns, but giving away
	 * or dropping a projection or subscription is for eventsource_admin:
	 * every reader is a member of eventsource_reader, which owns the
	 * subscriptions of before 0.6.0.
	 */
	if (!may_administer(GetUserId()))
		return;
	if (IsA(statement, ReassignOwnedStmt))
		run_as_extension_owner(table_owner, &reassign_owned_plan,
							   role_array(((ReassignOwnedStmt *) statement)->roles),
							   get_rolespec_oid(((ReassignOwnedStmt *) statement)->newrole, false), NULL);
	else
	{
		/* Dropping projections changes the log's inline trigger: in turn. */
		lock_projection_changes();
		run_as_extension_owner(table_owner, &drop_owned_plan,
							   role_array(((DropOwnedStmt *) statement)->roles), InvalidOid, NULL);
	}
}
