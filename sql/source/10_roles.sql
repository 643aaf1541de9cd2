-- 10_roles.sql: the roles eventsource grants its rights to.
--
-- eventsource_reader reads the tables and views and polls the subscriptions that belong to one of
-- its roles; eventsource_writer also appends and saves snapshots; eventsource_admin also deletes,
-- sets retention, scavenges and administers subscriptions and projections. 70_privileges.sql
-- grants each its functions.

-- Roles are cluster-wide: create them only where an earlier install (in another database) has not.
DO $roles$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'eventsource_reader') THEN
        CREATE ROLE eventsource_reader NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'eventsource_writer') THEN
        CREATE ROLE eventsource_writer NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'eventsource_admin') THEN
        CREATE ROLE eventsource_admin NOLOGIN;
    END IF;
END
$roles$;

GRANT eventsource_reader TO eventsource_writer;
GRANT eventsource_writer TO eventsource_admin;

GRANT USAGE ON SCHEMA eventsource TO eventsource_reader;
