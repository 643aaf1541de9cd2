-- The extension and an async projection, counter, that records data.n of each event of category
-- family in model.counted (the worker's shell tests).
CREATE EXTENSION eventsource;
CREATE SCHEMA model;
CREATE TABLE model.counted (n int PRIMARY KEY);
CREATE FUNCTION model.count_event(e eventsource.event) RETURNS void LANGUAGE sql AS
  $$INSERT INTO model.counted VALUES ((e.data ->> 'n')::int)$$;
SELECT eventsource.create_projection('counter', 'model.count_event(eventsource.event)', category => 'family',
                                     mode => 'async');
