#include "workflow/controls.hpp"

#include "workflow/api.hpp"
#include "workflow/error.hpp"

namespace workflow::client::api {
namespace {

bool one_boolean(Connection& c, const std::string& sql, const Params& params, const char* what) {
  Result r = c.query(sql, params);
  if (r.rows() != 1) throw sql_error("XX000", std::string(what) + " returned no row");
  return r.boolean(0, 0);
}

std::string jsonb_array(const std::vector<json>& items) {
  std::vector<std::string> texts;
  texts.reserve(items.size());
  for (const auto& j : items) texts.push_back(j.dump());
  return text_array(texts);
}

}  // namespace

bool retry_task(Connection& c, const std::string& task_id, const std::string& job_id) {
  return one_boolean(c, "SELECT workflow.retry_task($1, $2)", {task_id, job_id}, "retry_task");
}

bool retry_job(Connection& c, const std::string& job_id) {
  return one_boolean(c, "SELECT workflow.retry_job($1)", {job_id}, "retry_job");
}

void tolerate_dead_tasks(Connection& c, const std::string& job_id, int stage, int max_dead) {
  c.query("SELECT workflow.tolerate_dead_tasks($1, $2::int, $3::int)",
          {job_id, std::to_string(stage), std::to_string(max_dead)});
}

bool pause_task_type(Connection& c, const std::string& task_type) {
  return one_boolean(c, "SELECT workflow.pause_task_type($1)", {task_type}, "pause_task_type");
}

bool resume_task_type(Connection& c, const std::string& task_type) {
  return one_boolean(c, "SELECT workflow.resume_task_type($1)", {task_type}, "resume_task_type");
}

bool pause_job(Connection& c, const std::string& job_id) {
  return one_boolean(c, "SELECT workflow.pause_job($1)", {job_id}, "pause_job");
}

bool resume_job(Connection& c, const std::string& job_id) {
  return one_boolean(c, "SELECT workflow.resume_job($1)", {job_id}, "resume_job");
}

void set_task_type_limit(Connection& c, const std::string& task_type, std::optional<int> max_claimed) {
  c.query("SELECT workflow.set_task_type_limit($1, $2::int)",
          {task_type, max_claimed ? Param(std::to_string(*max_claimed)) : Param()});
}

bool report_progress(Connection& c, const std::string& task_id, const std::string& job_id,
                     const json& progress, const std::optional<std::string>& worker) {
  return one_boolean(c, "SELECT workflow.report_progress($1, $2, $3::jsonb, $4)",
                     {task_id, job_id, progress.dump(), worker}, "report_progress");
}

int purge_jobs(Connection& c, const std::string& older_than, const std::vector<std::string>& statuses,
               int max_jobs) {
  Result r = c.query("SELECT workflow.purge_jobs($1::interval, $2::text[], $3::int)",
                     {older_than, text_array(statuses), std::to_string(max_jobs)});
  return r.int32(0, 0);
}

long schedule(Connection& c, const std::string& name, const std::string& cron, const std::string& job_type,
              const json& parameters, int total_stages, const std::optional<std::string>& task_type,
              const std::vector<json>& tasks) {
  Result r = c.query(
      "SELECT workflow.schedule($1, $2, $3, $4::jsonb, $5::int, $6, $7::jsonb[])",
      {name, cron, job_type, parameters.dump(), std::to_string(total_stages), task_type,
       task_type ? Param(jsonb_array(tasks)) : Param()});
  return r.int64(0, 0);
}

bool unschedule(Connection& c, const std::string& name) {
  return one_boolean(c, "SELECT workflow.unschedule($1)", {name}, "unschedule");
}

}  // namespace workflow::client::api
