// Plain values returned by the typed calls (api.hpp).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace workflow::client {

using json = nlohmann::json;

struct Task {
  std::string id;
  std::string job_id;
  std::string task_type;
  int stage = 0;
  int task_index = 0;
  json parameters;
  int retry_count = 0;
  std::string claimed_by;  // the worker name it was claimed with
};

struct Job {
  std::string id;
  std::string job_type;
  std::string status;  // pending, running, completed, failed, cancelled
  int stage = 0;
  int total_stages = 0;
  json parameters;
  json metadata;
  json result_data;
};

// complete_task_and_check_stage's answer: stage_complete is true for exactly
// one completion per stage (the caller then advances the job).
struct StageCompletion {
  bool stage_complete = false;
  int remaining_tasks = 0;  // complete_task; -1 (not counted) from complete_tasks unless stage_complete
  std::string job_id;
};

struct TaskCompletion {  // one element of a batched complete
  std::string task_id;
  std::string job_id;
  int stage = 0;
  json result_data;
  int task_index = -1;  // optional, informational (the server orders a batch's locks itself)
};

struct FailOutcome {
  bool will_retry = false;
  std::optional<std::string> retry_at;  // timestamptz as text
  bool job_failed = false;
};

struct JobCompletion {
  bool job_complete = false;
  std::optional<int> final_stage;
};

struct StageProgress {
  int stage = 0;
  int total_tasks = 0;
  int completed_tasks = 0;
  int failed_tasks = 0;
  bool sealed = false;
  bool complete = false;
};

// A stage handed over by claim_stage_handovers: complete, its job still at
// it and nobody advancing it. Treat it as a stage_complete = true answer.
struct StageHandover {
  std::string job_id;
  int stage = 0;
};

struct Check {  // validate() / check_invariants() rows
  std::string name;
  bool ok = false;
  std::string detail;
};

}  // namespace workflow::client
