// Typed calls for every SQL function of the extension, on one connection.
// Errors come back as sql_error with the server's SQLSTATE (e.g. 22023 bad
// argument, P0002 unknown task, 55000 sealed stage). For retries and pooling
// use Client (client.hpp) or with_connection()/in_transaction() (retry.hpp).
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "workflow/connection.hpp"
#include "workflow/types.hpp"

namespace workflow::client::api {

// ---- jobs and stages (engine) ----
std::string create_job(Connection& c, const std::string& job_type, const json& parameters,
                       int total_stages, const std::optional<std::string>& job_id = std::nullopt);
std::optional<Job> get_job(Connection& c, const std::string& job_id);
int add_tasks(Connection& c, const std::string& job_id, int stage, const std::string& task_type,
              const std::vector<json>& parameters, bool seal = true, int first_index = 0);
bool seal_stage(Connection& c, const std::string& job_id, int stage);
std::vector<Task> claim_tasks(Connection& c, const std::string& worker, int max_tasks = 1,
                              const std::vector<std::string>& task_types = {},
                              std::chrono::seconds lease = std::chrono::minutes(5));
// Extends the lease of a task claimed by `worker`. false when the worker no
// longer holds it (stop working on it): it finished the task itself, or the
// server refused with 55000 because another worker claimed or finished it
// after the lease expired (inside an explicit transaction that error has
// aborted the transaction).
bool heartbeat_task(Connection& c, const std::string& task_id, const std::string& job_id,
                    const std::string& worker,
                    std::chrono::seconds lease = std::chrono::minutes(5));
// Fencing: with `worker` (the name the task was claimed with) only a task
// claimed by that worker completes; when another worker holds or completed
// it (its lease expired and it was claimed again), or it is queued, the
// server refuses with 55000 and nothing is written. The worker's own repeat
// after a lost reply writes nothing and gets the same answer. Without worker
// any queued or claimed task completes (unfenced).
StageCompletion complete_task(Connection& c, const std::string& task_id,
                              const std::string& job_id, int stage, const json& result_data,
                              const std::optional<std::string>& worker = std::nullopt);
// Many completions (any jobs and stages) in ONE statement,
// workflow.complete_tasks: one round trip, one transaction; answers in input
// order (remaining_tasks is -1, not counted, except 0 for a stage's completer).
// All or nothing: when the server refuses one task (P0002 unknown, 22023 wrong
// stage or a task twice, 55000 failed/cancelled, e.g. its job was cancelled
// meanwhile, or with `worker` not claimed by it) nothing is written and that
// error is thrown; complete the others one by one (complete_task) if you need
// to. Repeating a batch after a lost reply is safe and gives the same answers.
std::vector<StageCompletion> complete_tasks(Connection& c,
                                            const std::vector<TaskCompletion>& batch,
                                            const std::optional<std::string>& worker = std::nullopt);
// Claims for several worker names in ONE round trip and transaction: one
// claim_tasks statement per request, pipelined (what WorkerGroup sends for
// the loops that ask at the same moment). Answers in request order.
struct ClaimRequest {
  std::string worker;
  int max_tasks = 1;
  std::vector<std::string> task_types;
  std::chrono::seconds lease{300};
};
std::vector<std::vector<Task>> claim_tasks_for(Connection& c, const std::vector<ClaimRequest>& requests);
// complete_tasks with one worker name per element (workflow.complete_claimed_tasks):
// the completions of several worker loops, each fenced by its own name, in one
// statement. workers.size() must equal batch.size().
std::vector<StageCompletion> complete_claimed_tasks(Connection& c,
                                                    const std::vector<TaskCompletion>& batch,
                                                    const std::vector<std::string>& workers);
// One task for each name in workers (workflow.claim_tasks_for_workers, 1.5):
// one statement; answers in no particular order, each task's worker in
// Task::claimed_by.
std::vector<Task> claim_tasks_for_workers(Connection& c, const std::vector<std::string>& workers,
                                          const std::vector<std::string>& task_types = {},
                                          std::chrono::seconds lease = std::chrono::seconds(300));
// What a WorkerGroup sends for the loops that finished a task and want the
// next at the same moment: ONE round trip and ONE transaction (all or
// nothing: a refused completion claims nothing). First the completions
// (complete_claimed_tasks, element i fenced by done_workers[i]; none when
// `done` is empty), then the claims: requests for one task with the same
// types and lease share one claim_tasks_for_workers, the others are one
// claim_tasks each. Answers in input and request order.
struct CompletedAndClaimed {
  std::vector<StageCompletion> completed;
  std::vector<std::vector<Task>> claimed;
};
CompletedAndClaimed complete_and_claim(Connection& c, const std::vector<TaskCompletion>& done,
                                       const std::vector<std::string>& done_workers,
                                       const std::vector<ClaimRequest>& claims);
// The same completions as single complete_task calls, pipelined (one round
// trip), each in its own transaction: one refused task does not stop the
// others (the first error is thrown after all ran). Slower (a commit per task).
std::vector<StageCompletion> complete_tasks_each(Connection& c,
                                                 const std::vector<TaskCompletion>& batch,
                                                 const std::optional<std::string>& worker = std::nullopt);
// With worker (the name it claimed with), a repeat after a lost reply writes
// nothing and answers the task's state: the attempt is counted once; a task
// another worker claimed or finished meanwhile is refused (55000).
FailOutcome fail_task(Connection& c, const std::string& task_id, const std::string& job_id,
                      const std::string& error, bool retryable = true,
                      const std::optional<std::string>& worker = std::nullopt);
bool cancel_job(Connection& c, const std::string& job_id,
                const std::optional<std::string>& reason = std::nullopt);
bool advance_job_stage(Connection& c, const std::string& job_id, int current_stage,
                       int next_stage, const json& stage_results = json::object());
JobCompletion check_job_completion(Connection& c, const std::string& job_id);
// Hand-over (workflow.claim_stage_handovers): up to max_stages stages whose
// completer did not advance the job within the job's hand-over lease (it
// died or lost its connection), leased to worker for lease. Process each like
// a stage_complete = true answer: fan out stage + 1, advance_job_stage,
// check_job_completion. Worker does this on its own.
std::vector<StageHandover> claim_stage_handovers(
    Connection& c, const std::string& worker, int max_stages = 1,
    std::chrono::seconds lease = std::chrono::minutes(5));
// How long the completer of each stage of the job may take, from its
// completion, to advance it before the stage is handed over (default 1 minute).
void set_handover_lease(Connection& c, const std::string& job_id,
                        std::chrono::milliseconds lease);
std::vector<StageProgress> job_progress(Connection& c, const std::string& job_id);
std::vector<Check> validate(Connection& c);
std::vector<Check> check_invariants(Connection& c,
                                    const std::optional<std::string>& job_id = std::nullopt);

// ---- survey steps ----
std::string normalize_step_name(Connection& c, const std::string& step_name);
bool is_valid_session_id(Connection& c, const std::string& session_id);
json parse_session_id(Connection& c, const std::string& session_id);  // {"kind":..,"session_id":..}
void set_session_timezone(Connection& c, const std::string& session_id, const std::string& tz);
// Returns the stored row as a JSON object.
json upsert_survey_step(Connection& c, const std::string& session_id, const std::string& step_name,
                        const json& value = json::object(),
                        const std::optional<std::string>& completed_at = std::nullopt);
// steps: JSON array of {"session_id","step_name","value","completed_at"}; one statement, atomic.
int upsert_survey_steps(Connection& c, const json& steps);
// Rows of the session's week (JSON array of objects).
json get_weekly_survey_steps(Connection& c, const std::string& session_id,
                             const std::optional<std::string>& week_of = std::nullopt);
int cleanup_survey_sessions(Connection& c, const std::string& older_than);

// ---- audit ----
void enable_audit(Connection& c, const std::string& table,
                  const std::vector<std::string>& exclude_columns = {});
void disable_audit(Connection& c, const std::string& table);
json row_history(Connection& c, const std::string& table, const json& key);  // array, in order
std::optional<json> row_as_of(Connection& c, const std::string& table, const json& key,
                              const std::string& at);
long purge_audit_log(Connection& c, const std::string& older_than);

// Postgres text[] literal for a list of strings (quotes and backslashes escaped).
std::string text_array(const std::vector<std::string>& items);

}  // namespace workflow::client::api
