-- stress_checks.sql: the end of a stress test's checks, included (\i) by its final query once its
-- own checks are in the temporary table checks (name, passed, detail): adds the check every stress
-- test makes, that every stream's versions run 1..n, then prints each check as "ok - NAME" or
-- "not ok - NAME (detail)" and the line "TEST: N passed, M failed" (TEST: the psql variable test).
INSERT INTO checks
SELECT 'every stream''s versions run 1..n with no gap or duplicate', bool_and(ok), count(*) FILTER (WHERE NOT ok) || ' bad streams'
  FROM (SELECT s.stream_version = count(e.*) AND s.stream_version = max(e.stream_version)
               AND count(e.*) = count(DISTINCT e.stream_version) AS ok
          FROM eventsource.streams s JOIN eventsource.events e USING (stream_id)
         GROUP BY s.stream_id, s.stream_version) AS per_stream;

SELECT CASE WHEN passed THEN 'ok - ' ELSE 'not ok - ' END || name || CASE WHEN passed THEN '' ELSE ' (' || detail || ')' END
  FROM checks ORDER BY name;
SELECT :'test' || ': ' || count(*) FILTER (WHERE passed) || ' passed, ' || count(*) FILTER (WHERE NOT passed) || ' failed'
  FROM checks;
