// Typed calls for the 1.4 engine controls (src/sql/40-45_engine_*.sql): dead
// work, pause/resume and limits, progress, retention and recurring jobs. As
// api.hpp: one connection, errors as sql_error with the server's SQLSTATE
// (42883 from a database not yet updated to 1.4).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "workflow/connection.hpp"
#include "workflow/types.hpp"

namespace workflow::client::api {

// Dead work: queue a dead task (or every dead task of a failed job) again.
bool retry_task(Connection& c, const std::string& task_id, const std::string& job_id);
bool retry_job(Connection& c, const std::string& job_id);
// A stage that tolerates up to max_dead dead tasks instead of failing its job.
void tolerate_dead_tasks(Connection& c, const std::string& job_id, int stage, int max_dead);

// Pause/resume (true when the state changed) and per-type concurrency limits
// (max_claimed nullopt: no limit).
bool pause_task_type(Connection& c, const std::string& task_type);
bool resume_task_type(Connection& c, const std::string& task_type);
bool pause_job(Connection& c, const std::string& job_id);
bool resume_job(Connection& c, const std::string& job_id);
void set_task_type_limit(Connection& c, const std::string& task_type, std::optional<int> max_claimed);

// A handler's progress on its claimed task (false: it no longer holds it).
bool report_progress(Connection& c, const std::string& task_id, const std::string& job_id,
                     const json& progress, const std::optional<std::string>& worker = std::nullopt);

// Retention: one bounded batch (call until 0); older_than an interval ("7 days").
int purge_jobs(Connection& c, const std::string& older_than,
               const std::vector<std::string>& statuses = {"completed", "failed", "cancelled"},
               int max_jobs = 1000);

// Recurring jobs on pg_cron: returns pg_cron's job id.
long schedule(Connection& c, const std::string& name, const std::string& cron,
              const std::string& job_type, const json& parameters = json::object(),
              int total_stages = 1, const std::optional<std::string>& task_type = std::nullopt,
              const std::vector<json>& tasks = {});
bool unschedule(Connection& c, const std::string& name);

}  // namespace workflow::client::api
