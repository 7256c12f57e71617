-- A "hello world" three-stage job run end to end from psql:
-- fan out, claim, complete (exactly one caller told "stage complete"),
-- advance by compare-and-set, a multi-batch stage sealed by its producer,
-- a failed attempt retried, and the job completed.
SELECT workflow.create_job('hello_world', '{"name": "world"}', 3, 'eng-hello');

-- Stage 1: one task per greeting word.
SELECT workflow.add_tasks('eng-hello', 1, 'hello.greet',
                          ARRAY['{"word": "hello"}', '{"word": "world"}']::jsonb[]);
SELECT id, task_type, parameters, status, claimed_by
  FROM workflow.claim_tasks('worker-1', 10, ARRAY['hello.greet']) ORDER BY id;
SELECT * FROM workflow.complete_task_and_check_stage('eng-hello:1:0', 'eng-hello', 1, '{"said": "hello"}');
SELECT * FROM workflow.complete_task_and_check_stage('eng-hello:1:1', 'eng-hello', 1, '{"said": "world"}');
-- The worker that got stage_complete = true advances the job; a second try loses.
SELECT workflow.advance_job_stage('eng-hello', 1, 2, '{"words": 2}');
SELECT workflow.advance_job_stage('eng-hello', 1, 2, '{"words": 2}');
SELECT status, stage, result_data FROM workflow.jobs WHERE id = 'eng-hello';

-- Stage 2: filled by two calls, then sealed by the producer. Tasks done
-- before the seal cannot complete the stage; the seal does.
SELECT workflow.add_tasks('eng-hello', 2, 'hello.shout', ARRAY['{"n": 1}']::jsonb[], seal => false);
SELECT workflow.add_tasks('eng-hello', 2, 'hello.shout', ARRAY['{"n": 2}']::jsonb[], seal => false, first_index => 1);
SELECT id FROM workflow.claim_tasks('worker-2', 10, ARRAY['hello.shout']) ORDER BY id;
SELECT * FROM workflow.complete_task_and_check_stage('eng-hello:2:0', 'eng-hello', 2, '{"shouted": "HELLO"}');
SELECT * FROM workflow.complete_task_and_check_stage('eng-hello:2:1', 'eng-hello', 2, '{"shouted": "WORLD"}');
SELECT workflow.seal_stage('eng-hello', 2);
SELECT workflow.advance_job_stage('eng-hello', 2, 3, NULL);

-- Stage 3: the printer jams once; the task is retried (no backoff here).
SELECT workflow.add_tasks('eng-hello', 3, 'hello.print', ARRAY['{"text": "HELLO WORLD"}']::jsonb[]);
SELECT id, retry_count FROM workflow.claim_tasks('worker-3', 1, ARRAY['hello.print']);
SELECT will_retry, retry_at IS NOT NULL AS has_retry_at, job_failed
  FROM workflow.fail_task('eng-hello:3:0', 'eng-hello', 'printer jammed', backoff_base => '0 seconds');
SELECT id, retry_count, last_error FROM workflow.claim_tasks('worker-3', 1, ARRAY['hello.print']);
SELECT workflow.heartbeat_task('eng-hello:3:0', 'eng-hello', 'worker-3');
SELECT * FROM workflow.complete_task_and_check_stage('eng-hello:3:0', 'eng-hello', 3, '{"printed": true}');

-- The last stage is complete: the job is.
SELECT * FROM workflow.check_job_completion('eng-hello');
SELECT status, stage, result_data, finished_at IS NOT NULL AS finished FROM workflow.jobs WHERE id = 'eng-hello';
SELECT * FROM workflow.job_progress('eng-hello');
SELECT id, status, result_data FROM workflow.tasks WHERE job_id = 'eng-hello' ORDER BY stage, task_index;
SELECT * FROM workflow.check_invariants('eng-hello');
