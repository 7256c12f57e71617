// SQL shared by the single (complete_task_and_check_stage) and the batch
// (complete_tasks) fan-in, so both complete and diagnose a task alike.
#pragma once

namespace workflow::engine {

// Queued or claimed -> completed, storing the result. Its row lock is held
// to commit, so a task is counted once; returns the task's counter slot, or
// no row when the task did not change (then the caller diagnoses why).
// $1 task id, $2 job id, $3 stage, $4 result (jsonb).
inline constexpr const char* kCompleteTaskSql =
    "UPDATE workflow.tasks SET status = 'completed', result_data = $4, completed_at = now(), "
    "updated_at = now(), lease_expires_at = NULL "
    "WHERE job_id = $2 AND id = $1 AND stage = $3 AND status IN ('queued', 'claimed') "
    "RETURNING slot";

// Why a task did not complete: its stage, its status, and whether it is its
// stage's recorded completer (a repeat is told stage_complete again).
// $1 task id, $2 job id.
inline constexpr const char* kLookupTaskSql =
    "SELECT t.stage, t.status, s.completed_by_task = t.id "
    "FROM workflow.tasks t LEFT JOIN workflow.stages s "
    "ON s.job_id = t.job_id AND s.stage = t.stage "
    "WHERE t.job_id = $2 AND t.id = $1";

}  // namespace workflow::engine
