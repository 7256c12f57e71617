-- What a user's data looks like through the 1.0 columns and the reading
-- functions: jobs, stages, tasks, survey rows, every audited row's history
-- (row_history) and current image (row_as_of), the log of a dropped table.
-- Must read the same before and after ALTER EXTENSION UPDATE and after a
-- dump is restored. Explicit 1.0 columns: 1.1 may add its own.
\pset format unaligned
\pset tuples_only on
\pset footer off
SELECT 'job ' || concat_ws(' | ', id, job_type, status, stage, total_stages, parameters, metadata, result_data, error,
                           created_at, updated_at, finished_at, handover_lease)
  FROM workflow.jobs ORDER BY id;
SELECT 'stage ' || concat_ws(' | ', job_id, stage, slot_count, pending_slots, sealed, total_tasks, completed_by_task,
                             completed_by_seal, completed_at, result_data, sealed_at, handover_by, handover_expires_at, left_at)
  FROM workflow.stages ORDER BY job_id, stage;
SELECT 'slot ' || concat_ws(' | ', job_id, stage, slot, remaining) FROM workflow.stage_slots ORDER BY job_id, stage, slot;
SELECT 'task ' || concat_ws(' | ', id, job_id, task_type, status, stage, task_index, slot, parameters, result_data,
                            retry_count, max_retries, heartbeat, claimed_by, lease_expires_at, run_after, last_error,
                            created_at, updated_at, completed_at)
  FROM workflow.tasks ORDER BY job_id, id;
SELECT 'session ' || concat_ws(' | ', session_id, time_zone, created_at) FROM workflow.survey_sessions ORDER BY session_id;
SELECT 'step ' || concat_ws(' | ', id, session_id, step_name, week_start, value, completed_at, created_at, updated_at)
  FROM workflow.survey_steps ORDER BY id;
SELECT 'account ' || concat_ws(' | ', id, email, pw, updated_at) FROM app.account ORDER BY id;
SELECT 'history ' || concat_ws(' | ', t.schema_name || '.' || t.table_name, k.row_key, h.id, h.operation, h.old_values,
                               h.new_values, h.actor, h.txid, h.changed_at)
  FROM workflow.audit_tables t
  CROSS JOIN LATERAL (SELECT DISTINCT l.row_key FROM workflow.audit_log l
                       WHERE l.table_id = t.id AND l.row_key IS NOT NULL) k
  CROSS JOIN LATERAL workflow.row_history(format('%I.%I', t.schema_name, t.table_name)::regclass, k.row_key) h
 WHERE t.relid IS NOT NULL
 ORDER BY 1;
SELECT 'as of ' || concat_ws(' | ', t.schema_name || '.' || t.table_name, k.row_key,
                             workflow.row_as_of(format('%I.%I', t.schema_name, t.table_name)::regclass, k.row_key, now()))
  FROM workflow.audit_tables t
  CROSS JOIN LATERAL (SELECT DISTINCT l.row_key FROM workflow.audit_log l
                       WHERE l.table_id = t.id AND l.row_key IS NOT NULL) k
 WHERE t.relid IS NOT NULL
 ORDER BY 1;
SELECT 'dropped table log ' || concat_ws(' | ', l.id, l.schema_name, l.table_name, l.operation, l.row_key, l.old_values, l.new_values)
  FROM workflow.audit_log l JOIN workflow.audit_tables t ON t.id = l.table_id
 WHERE t.relid IS NULL ORDER BY l.id;
SELECT 'log rows ' || count(*) || ', max id ' || max(id) FROM workflow.audit_log;
