-- pgbench script: one task created by the application call (audited, search vector, 6 indexes).
\set user random(1, 1000)
\set assignee random(1, 1000)
\set site random(1, 50)
\set day random(0, 365)
SELECT tasks_app.create_task(:user, 'bench task ' || :day || ' boiler', assignee => :assignee,
                             site => :site, due_date => date '2025-01-01' + :day);
