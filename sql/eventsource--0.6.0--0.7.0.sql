-- eventsource--0.6.0--0.7.0.sql: upgrade from 0.6.0 to 0.7.0 (also part of a fresh install).
--
-- Log integrity: the log stays readable and in order after a restore into another cluster, a
-- crash that loses commits and pg_upgrade; lifecycle markers follow the events they cover; an
-- acknowledgement is accepted only from the lease it acknowledges; projections never silently
-- stop; snapshots never bring deleted data back; a category is never a stream id.

\echo Use "ALTER EXTENSION eventsource UPDATE TO '0.7.0'" to load this file. \quit
