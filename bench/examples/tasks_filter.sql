-- pgbench script: a filtered page (assignee + status, or site + date range), first page of 50.
\set assignee random(1, 1000)
\set site random(1, 50)
\set day random(0, 330)
\set which random(0, 1)
SELECT count(*) FROM tasks_app.list_tasks(
  assignee => CASE WHEN :which = 0 THEN :assignee END,
  status => CASE WHEN :which = 0 THEN 'open' END,
  site => CASE WHEN :which = 1 THEN :site END,
  due_from => CASE WHEN :which = 1 THEN date '2025-01-01' + :day END,
  due_to => CASE WHEN :which = 1 THEN date '2025-01-01' + :day + 30 END);
