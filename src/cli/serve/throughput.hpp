// Completions per second of the jobs the dashboard shows, from samples of
// their stages' finished counts (workflow.stage_counters: no task is read)
// taken whenever a job's panel renders (at most once per cache period):
// the chart and the per-second column are the differences between samples.
// A job first viewed now has its history from now on.
#pragma once

#include <deque>
#include <map>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

namespace workflow::serve {

class Throughput {
 public:
  // Records the job's finished count per stage at epoch second `now`.
  void sample(const std::string& job_id, long now, const std::map<int, long>& finished_by_stage);
  // {"second": s, "completions": n} per second of the last `seconds` (the
  // finished delta of each interval spread over its seconds).
  nlohmann::json points(const std::string& job_id, long now, int seconds);
  // A stage's finished tasks per second over about the last minute (0 when unknown).
  double per_second(const std::string& job_id, int stage, long now);

 private:
  struct Sample {
    long second;
    std::map<int, long> finished;
    long total() const;
  };
  void prune(long now);  // under mu_: samples older than 10 minutes, jobs not viewed since
  std::mutex mu_;
  std::map<std::string, std::deque<Sample>> jobs_;
};

}  // namespace workflow::serve
