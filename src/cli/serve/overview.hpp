// The figures of `workflow serve` that count tasks across every job: read
// once per interval and shared by the queues panel and /metrics, single
// flight (concurrent requests wait for the one statement in progress rather
// than each running it). Two tiers, since they cost differently:
//   open():     queued and claimed tasks by type, the oldest runnable task,
//               stale claims, stuck jobs; one pass over the open tasks
//               (workflow.open_task_summary, 1.5), every --scan-cache-ms.
//   finished(): completed, failed and cancelled tasks by type: a pass over
//               the whole task table (workflow.queue_depth), for /metrics
//               alone, every --count-cache-ms.
// A read is reused at least 20 times as long as it took, whatever the flag:
// on a table so big that one read takes a second, the dashboard still spends
// at most 5% of a core on it (and holds no snapshot open much longer).
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "cache.hpp"
#include "db.hpp"

namespace workflow::serve {

class Overview {
 public:
  Overview(std::chrono::milliseconds open_ttl, std::chrono::milliseconds finished_ttl)
      : cache_(open_ttl), open_ttl_(open_ttl), finished_ttl_(finished_ttl) {}
  // {"depth": [{task_type, status, tasks}] (queued and claimed), "oldest":
  // [{task_type, runnable_tasks, runnable_since, age_seconds}], "stale_count",
  // "stale": [the first 100 stale claims], "stuck": [workflow.stuck_jobs]}.
  nlohmann::json open(Db& db);
  // [{task_type, status, tasks}] of the finished statuses.
  nlohmann::json finished(Db& db);

 private:
  nlohmann::json cached(Db& db, const char* key, std::chrono::milliseconds ttl, std::atomic<long>& last_ms,
                        const std::function<std::string()>& sql);
  Cache cache_;  // the two statements' results (JSON text), by key
  std::chrono::milliseconds open_ttl_, finished_ttl_;
  std::atomic<long> open_ms_{0}, finished_ms_{0};  // how long each took last
};

}  // namespace workflow::serve
