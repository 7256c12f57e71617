// Prometheus metrics of `workflow serve` (see metrics.hpp).
#include "metrics.hpp"

#include <fmt/core.h>
#include <spdlog/spdlog.h>

#include <vector>

namespace workflow::serve {
namespace {

// The figures that count tasks across every job come from the shared
// Overview (overview.hpp); the rest (jobs, stage latency, failed tasks)
// read small tables or indexes, on each render.

// Upper bounds of the stage completion latency histogram, in seconds.
const std::vector<double> kBuckets = {0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600, 14400};

// A label value: backslash, double quote and newline escaped.
std::string label(const std::string& v) {
  std::string out;
  for (const char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

struct Writer {
  std::string out;
  void head(const char* name, const char* type, const char* help) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  }
  void sample(const std::string& name, const std::string& labels, double v) {
    out += labels.empty() ? fmt::format("{} {}\n", name, v) : fmt::format("{}{{{}}} {}\n", name, labels, v);
  }
};

std::string views_sql(bool dead_view) {
  std::string buckets;
  for (const double b : kBuckets) buckets += fmt::format("count(*) FILTER (WHERE seconds <= {}), ", b);
  return fmt::format(
      "SELECT json_build_object("
      " 'jobs', (SELECT coalesce(json_agg(x), '[]') FROM (SELECT status, count(*) AS n"
      "          FROM workflow.job_summary GROUP BY status) x),"
      " 'latency', (SELECT json_build_object('le', json_build_array({} count(*)),"
      "             'sum', coalesce(sum(seconds), 0)) FROM workflow.stage_latency),"
      " 'retrying', (SELECT count(*) FROM workflow.failed_tasks WHERE status <> 'failed'),"
      " 'dead', (SELECT count(*) FROM {}))",
      buckets,
      dead_view ? "workflow.dead_tasks" : "workflow.failed_tasks WHERE status = 'failed'");
}

void database_metrics(Writer& w, const nlohmann::json& d, const nlohmann::json& open,
                      const nlohmann::json& finished) {
  nlohmann::json depth = open.at("depth");
  for (const auto& r : finished) depth.push_back(r);
  w.head("workflow_tasks", "gauge", "Tasks by task type and status (workflow.queue_depth).");
  for (const auto& r : depth)
    w.sample("workflow_tasks",
             fmt::format("task_type=\"{}\",status=\"{}\"", label(r.at("task_type")), label(r.at("status"))),
             r.at("tasks").get<double>());
  for (const auto& [name, status, help] :
       {std::tuple{"workflow_task_completions_total", "completed",
                   "Completed tasks by task type, of the tasks the database holds (workflow.queue_depth)."},
        std::tuple{"workflow_task_failures_total", "failed",
                   "Dead tasks (failed, out of retries) by task type (workflow.queue_depth)."}}) {
    w.head(name, "counter", help);
    for (const auto& r : depth)
      if (r.at("status") == status)
        w.sample(name, fmt::format("task_type=\"{}\"", label(r.at("task_type"))), r.at("tasks").get<double>());
  }
  w.head("workflow_runnable_tasks", "gauge", "Queued tasks whose run_after has passed (workflow.oldest_runnable_task).");
  for (const auto& r : open.at("oldest"))
    w.sample("workflow_runnable_tasks", fmt::format("task_type=\"{}\"", label(r.at("task_type"))),
             r.at("runnable_tasks").get<double>());
  w.head("workflow_oldest_runnable_task_age_seconds", "gauge",
         "How long the oldest runnable task of a type has waited (workflow.oldest_runnable_task).");
  for (const auto& r : open.at("oldest"))
    w.sample("workflow_oldest_runnable_task_age_seconds",
             fmt::format("task_type=\"{}\"", label(r.at("task_type"))), r.at("age_seconds").get<double>());
  w.head("workflow_jobs", "gauge", "Jobs by status (workflow.job_summary).");
  for (const auto& r : d.at("jobs"))
    w.sample("workflow_jobs", fmt::format("status=\"{}\"", label(r.at("status"))), r.at("n").get<double>());
  w.head("workflow_stale_claims", "gauge", "Claimed tasks whose lease expired (workflow.stale_claims).");
  w.sample("workflow_stale_claims", "", open.at("stale_count").get<double>());
  w.head("workflow_stuck_jobs", "gauge", "Jobs that are not moving (workflow.stuck_jobs).");
  w.sample("workflow_stuck_jobs", "", static_cast<double>(open.at("stuck").size()));
  w.head("workflow_dead_tasks", "gauge", "Tasks that failed for good (workflow.dead_tasks).");
  w.sample("workflow_dead_tasks", "", d.at("dead").get<double>());
  w.head("workflow_retrying_tasks", "gauge", "Tasks whose last attempt failed and that will be retried.");
  w.sample("workflow_retrying_tasks", "", d.at("retrying").get<double>());
  w.head("workflow_stage_completion_seconds", "histogram",
         "Time from a stage's creation to its completion (workflow.stage_latency).");
  const auto& le = d.at("latency").at("le");
  for (std::size_t i = 0; i < kBuckets.size(); ++i)
    w.sample("workflow_stage_completion_seconds_bucket", fmt::format("le=\"{}\"", kBuckets[i]),
             le.at(i).get<double>());
  const double count = le.at(kBuckets.size()).get<double>();
  w.sample("workflow_stage_completion_seconds_bucket", "le=\"+Inf\"", count);
  w.sample("workflow_stage_completion_seconds_sum", "", d.at("latency").at("sum").get<double>());
  w.sample("workflow_stage_completion_seconds_count", "", count);
}

}  // namespace

std::string render_metrics(Db& db, Overview& overview) {
  Writer w;
  double up = 1;
  try {
    database_metrics(w, db.value(views_sql(db.readable("workflow.dead_tasks"))), overview.open(db),
                     overview.finished(db));
  } catch (const std::exception& e) {
    spdlog::warn("metrics: {}", e.what());
    w.out.clear();
    up = 0;
  }
  w.head("workflow_up", "gauge", "1 when the monitoring views could be read, 0 otherwise.");
  w.sample("workflow_up", "", up);
  const auto m = db.client().pool().metrics();
  w.head("workflow_serve_pool_connections", "gauge", "Connections of the serve process's client pool by state.");
  w.sample("workflow_serve_pool_connections", "state=\"in_use\"", static_cast<double>(m.in_use));
  w.sample("workflow_serve_pool_connections", "state=\"idle\"", static_cast<double>(m.idle));
  for (const auto& [name, v, help] :
       {std::tuple{"workflow_serve_pool_connections_created_total", m.created, "Connections the pool opened."},
        std::tuple{"workflow_serve_pool_waits_total", m.waits, "Acquires that waited for a free connection."},
        std::tuple{"workflow_serve_pool_timeouts_total", m.timeouts, "Acquires that gave up waiting."},
        std::tuple{"workflow_serve_pool_errors_total", m.errors,
                   "Failed connects and broken connections discarded."}}) {
    w.head(name, "counter", help);
    w.sample(name, "", static_cast<double>(v));
  }
  return w.out;
}

}  // namespace workflow::serve
