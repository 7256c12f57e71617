#include "workflow/api.hpp"

#include "api_detail.hpp"

#include "workflow/error.hpp"

namespace workflow::client::api {
namespace {

Param p(const std::string& s) { return s; }
Param p(int v) { return std::to_string(v); }
Param p(bool v) { return std::string(v ? "true" : "false"); }
Param p(const json& j) { return j.dump(); }
Param p(const std::optional<std::string>& s) { return s; }
Param seconds(std::chrono::seconds s) { return std::to_string(s.count()) + " seconds"; }

json json_or_null(const Result& r, int row, int col) {
  return r.is_null(row, col) ? json() : json::parse(r.text(row, col));
}

// The single row a scalar/one-row function returns; P0002 when it returned none.
void require_row(const Result& r, const char* fn) {
  if (r.rows() < 1) throw sql_error("P0002", std::string(fn) + " returned no row");
}

}  // namespace

std::string text_array(const std::vector<std::string>& items) {
  std::string out = "{";
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i) out += ',';
    out += '"';
    for (char ch : items[i]) {
      if (ch == '"' || ch == '\\') out += '\\';
      out += ch;
    }
    out += '"';
  }
  return out + "}";
}

// ---- jobs and stages ----

std::string create_job(Connection& c, const std::string& job_type, const json& parameters,
                       int total_stages, const std::optional<std::string>& job_id) {
  Result r = c.query("SELECT workflow.create_job($1, $2::jsonb, $3::int, $4)",
                     {p(job_type), p(parameters), p(total_stages), p(job_id)});
  require_row(r, "create_job");
  return r.string(0, 0);
}

std::optional<Job> get_job(Connection& c, const std::string& job_id) {
  Result r = c.query(
      "SELECT id, job_type, status, stage, total_stages, parameters, metadata, result_data "
      "FROM workflow.jobs WHERE id = $1",
      {p(job_id)});
  if (r.rows() == 0) return std::nullopt;
  Job j;
  j.id = r.string(0, 0);
  j.job_type = r.string(0, 1);
  j.status = r.string(0, 2);
  j.stage = r.int32(0, 3);
  j.total_stages = r.int32(0, 4);
  j.parameters = json_or_null(r, 0, 5);
  j.metadata = json_or_null(r, 0, 6);
  j.result_data = json_or_null(r, 0, 7);
  return j;
}

int add_tasks(Connection& c, const std::string& job_id, int stage, const std::string& task_type,
              const std::vector<json>& parameters, bool seal, int first_index) {
  // One statement: the parameters travel as one JSON array turned into jsonb[] server-side.
  json array = json::array();
  for (const auto& item : parameters) array.push_back(item);
  Result r = c.query(
      "SELECT workflow.add_tasks($1, $2::int, $3, "
      "(SELECT coalesce(array_agg(e ORDER BY n), '{}'::jsonb[]) "
      "   FROM jsonb_array_elements($4::jsonb) WITH ORDINALITY AS t(e, n)), $5::boolean, $6::int)",
      {p(job_id), p(stage), p(task_type), p(array), p(seal), p(first_index)});
  require_row(r, "add_tasks");
  return r.int32(0, 0);
}

bool seal_stage(Connection& c, const std::string& job_id, int stage) {
  Result r = c.query("SELECT workflow.seal_stage($1, $2::int)", {p(job_id), p(stage)});
  require_row(r, "seal_stage");
  return r.boolean(0, 0);
}

namespace detail {

const char* const kClaim =
    "SELECT id, job_id, task_type, stage, task_index, parameters, retry_count, claimed_by "
    "FROM workflow.claim_tasks($1, $2::int, $3::text[], $4::interval)";

Params claim_params(const std::string& worker, int max_tasks,
                    const std::vector<std::string>& task_types, std::chrono::seconds lease) {
  Param types = task_types.empty() ? Param() : Param(text_array(task_types));
  return {p(worker), p(max_tasks), types, seconds(lease)};
}

std::vector<Task> read_tasks(const Result& r) {
  std::vector<Task> out;
  out.reserve(r.rows());
  for (int i = 0; i < r.rows(); ++i) {
    Task t;
    t.id = r.string(i, 0);
    t.job_id = r.string(i, 1);
    t.task_type = r.string(i, 2);
    t.stage = r.int32(i, 3);
    t.task_index = r.int32(i, 4);
    t.parameters = json_or_null(r, i, 5);
    t.retry_count = r.is_null(i, 6) ? 0 : r.int32(i, 6);
    t.claimed_by = r.string(i, 7);
    out.push_back(std::move(t));
  }
  return out;
}

}  // namespace detail

using detail::claim_params;
using detail::kClaim;
using detail::read_tasks;

std::vector<Task> claim_tasks(Connection& c, const std::string& worker, int max_tasks,
                              const std::vector<std::string>& task_types,
                              std::chrono::seconds lease) {
  return read_tasks(c.query(kClaim, claim_params(worker, max_tasks, task_types, lease)));
}

std::vector<std::vector<Task>> claim_tasks_for(Connection& c,
                                               const std::vector<ClaimRequest>& requests) {
  std::vector<Params> batches;
  batches.reserve(requests.size());
  for (const auto& q : requests)
    batches.push_back(claim_params(q.worker, q.max_tasks, q.task_types, q.lease));
  std::vector<std::vector<Task>> out;
  out.reserve(requests.size());
  for (const auto& r : c.pipeline(kClaim, batches, /*separate_transactions=*/false))
    out.push_back(read_tasks(r));
  return out;
}

bool heartbeat_task(Connection& c, const std::string& task_id, const std::string& job_id,
                    const std::string& worker, std::chrono::seconds lease) {
  try {
    Result r = c.query("SELECT workflow.heartbeat_task($1, $2, $3, $4::interval)",
                       {p(task_id), p(job_id), p(worker), seconds(lease)});
    require_row(r, "heartbeat_task");
    return r.boolean(0, 0);
  } catch (const sql_error& e) {
    if (e.sqlstate() == "55000") return false;  // another worker holds or finished it
    throw;
  }
}

static const char* const kComplete =
    "SELECT stage_complete, remaining_tasks, job_id "
    "FROM workflow.complete_task_and_check_stage($1, $2, $3::int, $4::jsonb, worker => $5)";

static StageCompletion read_completion(const Result& r) {
  require_row(r, "complete_task_and_check_stage");
  StageCompletion s;
  s.stage_complete = r.boolean(0, 0);
  s.remaining_tasks = r.is_null(0, 1) ? 0 : r.int32(0, 1);
  s.job_id = r.optional_text(0, 2).value_or("");
  return s;
}

StageCompletion complete_task(Connection& c, const std::string& task_id,
                              const std::string& job_id, int stage, const json& result_data,
                              const std::optional<std::string>& worker) {
  return read_completion(
      c.query(kComplete, {p(task_id), p(job_id), p(stage), p(result_data), p(worker)}));
}

namespace detail {

// complete_tasks / complete_claimed_tasks: the batch as arrays, $5 the
// worker name (or names), one answer per element in input order.
Statement complete_batch_statement(const char* function, const std::vector<TaskCompletion>& batch,
                                   const Param& worker, const char* worker_cast) {
  std::vector<std::string> jobs, tasks, stages, results;
  jobs.reserve(batch.size());
  tasks.reserve(batch.size());
  stages.reserve(batch.size());
  results.reserve(batch.size());
  for (const auto& t : batch) {
    jobs.push_back(t.job_id);
    tasks.push_back(t.task_id);
    stages.push_back(std::to_string(t.stage));
    results.push_back(t.result_data.dump());  // as complete_task: a null json is jsonb 'null'
  }
  return {std::string("SELECT stage_complete, job_id FROM workflow.") + function +
              "($1::text[], $2::text[], $3::int[], $4::jsonb[], $5" + worker_cast + ")",
          {p(text_array(jobs)), p(text_array(tasks)), p(text_array(stages)),
           p(text_array(results)), worker}};
}

std::vector<StageCompletion> read_completions(const Result& r, std::size_t expected,
                                              const char* function) {
  if (r.rows() != static_cast<int>(expected))
    throw sql_error("XX000", std::string(function) + " returned " + std::to_string(r.rows()) +
                                 " rows for " + std::to_string(expected) + " tasks");
  std::vector<StageCompletion> out(expected);
  for (int i = 0; i < r.rows(); ++i) {
    out[i].stage_complete = r.boolean(i, 0);
    out[i].remaining_tasks = out[i].stage_complete ? 0 : -1;
    out[i].job_id = r.string(i, 1);
  }
  return out;
}

}  // namespace detail

namespace {

std::vector<StageCompletion> complete_batch(Connection& c, const char* function,
                                            const std::vector<TaskCompletion>& batch,
                                            const Param& worker, const char* worker_cast) {
  const Statement st = detail::complete_batch_statement(function, batch, worker, worker_cast);
  return detail::read_completions(c.query(st.sql, st.params), batch.size(), function);
}

}  // namespace

std::vector<StageCompletion> complete_tasks(Connection& c,
                                            const std::vector<TaskCompletion>& batch,
                                            const std::optional<std::string>& worker) {
  return complete_batch(c, "complete_tasks", batch, p(worker), "::text");
}

std::vector<StageCompletion> complete_claimed_tasks(Connection& c,
                                                    const std::vector<TaskCompletion>& batch,
                                                    const std::vector<std::string>& workers) {
  if (workers.size() != batch.size())
    throw usage_error("complete_claimed_tasks: one worker name per task");
  return complete_batch(c, "complete_claimed_tasks", batch, p(text_array(workers)), "::text[]");
}

std::vector<StageCompletion> complete_tasks_each(Connection& c,
                                                 const std::vector<TaskCompletion>& batch,
                                                 const std::optional<std::string>& worker) {
  std::vector<Params> params;
  params.reserve(batch.size());
  for (const auto& t : batch)
    params.push_back({p(t.task_id), p(t.job_id), p(t.stage), p(t.result_data), p(worker)});
  std::vector<StageCompletion> out;
  out.reserve(batch.size());
  for (const auto& r : c.pipeline(kComplete, params, /*separate_transactions=*/true))
    out.push_back(read_completion(r));
  return out;
}

FailOutcome fail_task(Connection& c, const std::string& task_id, const std::string& job_id,
                      const std::string& error, bool retryable,
                      const std::optional<std::string>& worker) {
  Result r = c.query(
      "SELECT will_retry, retry_at, job_failed FROM workflow.fail_task($1, $2, $3, $4::boolean, "
      "worker => $5)",
      {p(task_id), p(job_id), p(error), p(retryable), p(worker)});
  require_row(r, "fail_task");
  FailOutcome f;
  f.will_retry = r.boolean(0, 0);
  f.retry_at = r.optional_text(0, 1);
  f.job_failed = !r.is_null(0, 2) && r.boolean(0, 2);
  return f;
}

bool cancel_job(Connection& c, const std::string& job_id,
                const std::optional<std::string>& reason) {
  Result r = c.query("SELECT workflow.cancel_job($1, $2)", {p(job_id), p(reason)});
  require_row(r, "cancel_job");
  return r.boolean(0, 0);
}

bool advance_job_stage(Connection& c, const std::string& job_id, int current_stage,
                       int next_stage, const json& stage_results) {
  Result r = c.query("SELECT workflow.advance_job_stage($1, $2::int, $3::int, $4::jsonb)",
                     {p(job_id), p(current_stage), p(next_stage), p(stage_results)});
  require_row(r, "advance_job_stage");
  return r.boolean(0, 0);
}

JobCompletion check_job_completion(Connection& c, const std::string& job_id) {
  Result r = c.query(
      "SELECT job_complete, final_stage FROM workflow.check_job_completion($1)", {p(job_id)});
  require_row(r, "check_job_completion");
  JobCompletion j;
  j.job_complete = r.boolean(0, 0);
  if (!r.is_null(0, 1)) j.final_stage = r.int32(0, 1);
  return j;
}

std::vector<StageHandover> claim_stage_handovers(Connection& c, const std::string& worker,
                                                 int max_stages, std::chrono::seconds lease) {
  Result r = c.query(
      "SELECT job_id, stage FROM workflow.claim_stage_handovers($1, $2::int, $3::interval)",
      {p(worker), p(max_stages), seconds(lease)});
  std::vector<StageHandover> out;
  out.reserve(r.rows());
  for (int i = 0; i < r.rows(); ++i) out.push_back({r.string(i, 0), r.int32(i, 1)});
  return out;
}

void set_handover_lease(Connection& c, const std::string& job_id,
                        std::chrono::milliseconds lease) {
  c.query("SELECT workflow.set_handover_lease($1, $2::interval)",
          {p(job_id), Param(std::to_string(lease.count()) + " milliseconds")});
}

std::vector<StageProgress> job_progress(Connection& c, const std::string& job_id) {
  Result r = c.query(
      "SELECT stage, total_tasks, completed_tasks, failed_tasks, sealed, complete "
      "FROM workflow.job_progress($1) ORDER BY stage",
      {p(job_id)});
  std::vector<StageProgress> out;
  for (int i = 0; i < r.rows(); ++i) {
    StageProgress s;
    s.stage = r.int32(i, 0);
    s.total_tasks = r.is_null(i, 1) ? 0 : r.int32(i, 1);
    s.completed_tasks = r.is_null(i, 2) ? 0 : r.int32(i, 2);
    s.failed_tasks = r.is_null(i, 3) ? 0 : r.int32(i, 3);
    s.sealed = !r.is_null(i, 4) && r.boolean(i, 4);
    s.complete = !r.is_null(i, 5) && r.boolean(i, 5);
    out.push_back(s);
  }
  return out;
}

static std::vector<Check> read_checks(const Result& r) {
  std::vector<Check> out;
  for (int i = 0; i < r.rows(); ++i)
    out.push_back({r.string(i, 0), !r.is_null(i, 1) && r.boolean(i, 1),
                   r.optional_text(i, 2).value_or("")});
  return out;
}

std::vector<Check> validate(Connection& c) {
  return read_checks(c.query("SELECT check_name, ok, detail FROM workflow.validate()"));
}

std::vector<Check> check_invariants(Connection& c, const std::optional<std::string>& job_id) {
  // Column names of check_invariants are the engine's choice: take the first three.
  Result r = c.query("SELECT * FROM workflow.check_invariants($1)", {p(job_id)});
  std::vector<Check> out;
  for (int i = 0; i < r.rows(); ++i) {
    Check k;
    k.name = r.optional_text(i, 0).value_or("");
    k.ok = r.columns() > 1 && !r.is_null(i, 1) && r.boolean(i, 1);
    k.detail = r.columns() > 2 ? r.optional_text(i, 2).value_or("") : "";
    out.push_back(std::move(k));
  }
  return out;
}

// ---- survey steps ----

std::string normalize_step_name(Connection& c, const std::string& step_name) {
  Result r = c.query("SELECT workflow.normalize_step_name($1)", {p(step_name)});
  require_row(r, "normalize_step_name");
  return r.string(0, 0);
}

bool is_valid_session_id(Connection& c, const std::string& session_id) {
  Result r = c.query("SELECT workflow.is_valid_session_id($1)", {p(session_id)});
  require_row(r, "is_valid_session_id");
  return !r.is_null(0, 0) && r.boolean(0, 0);
}

json parse_session_id(Connection& c, const std::string& session_id) {
  Result r = c.query("SELECT to_jsonb(s) FROM workflow.parse_session_id($1) AS s",
                     {p(session_id)});
  require_row(r, "parse_session_id");
  return json_or_null(r, 0, 0);
}

void set_session_timezone(Connection& c, const std::string& session_id, const std::string& tz) {
  c.query("SELECT workflow.set_session_timezone($1, $2)", {p(session_id), p(tz)});
}

json upsert_survey_step(Connection& c, const std::string& session_id, const std::string& step_name,
                        const json& value, const std::optional<std::string>& completed_at) {
  Result r = c.query(
      "SELECT to_jsonb(s) FROM workflow.upsert_survey_step($1, $2, $3::jsonb, "
      "coalesce($4::timestamptz, now())) AS s",
      {p(session_id), p(step_name), p(value), p(completed_at)});
  require_row(r, "upsert_survey_step");
  return json_or_null(r, 0, 0);
}

int upsert_survey_steps(Connection& c, const json& steps) {
  Result r = c.query("SELECT workflow.upsert_survey_steps($1::jsonb)", {p(steps)});
  require_row(r, "upsert_survey_steps");
  return r.int32(0, 0);
}

json get_weekly_survey_steps(Connection& c, const std::string& session_id,
                             const std::optional<std::string>& week_of) {
  Result r = c.query(
      "SELECT coalesce(jsonb_agg(to_jsonb(s) - 'ordinality' ORDER BY s.ordinality), '[]') "
      "FROM ROWS FROM (workflow.get_weekly_survey_steps($1, coalesce($2::timestamptz, now()))) "
      "WITH ORDINALITY AS s",
      {p(session_id), p(week_of)});
  return json_or_null(r, 0, 0);
}

int cleanup_survey_sessions(Connection& c, const std::string& older_than) {
  Result r = c.query("SELECT workflow.cleanup_survey_sessions($1::interval)", {p(older_than)});
  require_row(r, "cleanup_survey_sessions");
  return r.int32(0, 0);
}

// ---- audit ----

void enable_audit(Connection& c, const std::string& table,
                  const std::vector<std::string>& exclude_columns) {
  c.query("SELECT workflow.enable_audit($1::regclass, $2::text[])",
          {p(table), p(text_array(exclude_columns))});
}

void disable_audit(Connection& c, const std::string& table) {
  c.query("SELECT workflow.disable_audit($1::regclass)", {p(table)});
}

json row_history(Connection& c, const std::string& table, const json& key) {
  Result r = c.query(
      "SELECT coalesce(jsonb_agg(to_jsonb(h) - 'ordinality' ORDER BY h.ordinality), '[]') "
      "FROM ROWS FROM (workflow.row_history($1::regclass, $2::jsonb)) WITH ORDINALITY AS h",
      {p(table), p(key)});
  return json_or_null(r, 0, 0);
}

std::optional<json> row_as_of(Connection& c, const std::string& table, const json& key,
                              const std::string& at) {
  Result r = c.query("SELECT workflow.row_as_of($1::regclass, $2::jsonb, $3::timestamptz)",
                     {p(table), p(key), p(at)});
  require_row(r, "row_as_of");
  if (r.is_null(0, 0)) return std::nullopt;
  return json::parse(r.text(0, 0));
}

long purge_audit_log(Connection& c, const std::string& older_than) {
  Result r = c.query("SELECT workflow.purge_audit_log($1::interval)", {p(older_than)});
  require_row(r, "purge_audit_log");
  return static_cast<long>(r.int64(0, 0));
}

}  // namespace workflow::client::api
