-- pgbench script: a text search (two words of the 20-word vocabulary), first page of 50.
\set a random(1, 20)
\set b random(1, 20)
SELECT count(*) FROM tasks_app.list_tasks(
  search => (ARRAY['boiler','gate','filter','roof','pump','valve','fence','light','door','drain',
                   'paint','lock','heater','window','floor','stairs','alarm','cable','pipe','tank'])[:a]
            || ' ' ||
            (ARRAY['boiler','gate','filter','roof','pump','valve','fence','light','door','drain',
                   'paint','lock','heater','window','floor','stairs','alarm','cable','pipe','tank'])[:b]);
