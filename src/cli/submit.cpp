// `workflow submit`: creates a job and fans out its first stage.
#include <fmt/core.h>

#include <charconv>
#include <limits>
#include <sstream>

#include "commands.hpp"

namespace workflow::cli {

bool add_stage_tasks(client::Client& c, const std::string& job_id, int stage,
                     const std::string& task_type, int count) {
  if (count == 0)  // an empty stage: sealing it completes it
    return c.run([&](client::Connection& conn) { return client::api::seal_stage(conn, job_id, stage); });
  constexpr int kChunk = 5000;  // one add_tasks statement per chunk, sealed with the last
  for (int start = 0; start < count; start += kChunk) {
    const int n = std::min(kChunk, count - start);
    std::vector<client::json> params;
    params.reserve(n);
    for (int i = 0; i < n; ++i) params.push_back({{"n", start + i}});
    const bool last = start + n >= count;
    // Idempotent (same indices insert nothing), so a retry after a lost reply is safe.
    c.run([&](client::Connection& conn) {
      return client::api::add_tasks(conn, job_id, stage, task_type, params, last, start);
    });
  }
  return false;
}

namespace {

// Compare-and-set: a repeat, or another caller's advance, loses harmlessly.
void advance(client::Client& c, const std::string& job_id, int from, int to) {
  c.run([&](client::Connection& conn) {
    return client::api::advance_job_stage(conn, job_id, from, to, client::json::object());
  });
}

// "20000,10000,5000" -> {20000, 10000, 5000}; each a whole number >= 0 that
// fits an int, else a usage error naming the value (before anything is created).
std::vector<int> parse_stage_counts(const std::string& text) {
  std::vector<int> counts;
  std::stringstream ss(text);
  const auto empty = [&] {
    return CLI::ValidationError(
        "--tasks", fmt::format("'{}' has an empty count (one count of tasks per stage, comma separated)", text));
  };
  for (std::string part; std::getline(ss, part, ',');) {
    if (part.empty()) throw empty();
    int n = -1;
    const auto [end, ec] = std::from_chars(part.data(), part.data() + part.size(), n);
    if (ec != std::errc() || end != part.data() + part.size() || n < 0)
      throw CLI::ValidationError("--tasks", fmt::format("'{}' is not a count of tasks (a whole number 0..{})",
                                                        part, std::numeric_limits<int>::max()));
    counts.push_back(n);
  }
  if (counts.empty() || text.back() == ',') throw empty();
  return counts;
}

}  // namespace

void fan_out_next_stage(client::Client& c, const std::string& job_id, int stage) {
  const auto job = c.run([&](client::Connection& conn) { return client::api::get_job(conn, job_id); });
  if (!job || !job->parameters.contains("stage_tasks")) return;
  const auto& counts = job->parameters["stage_tasks"];
  const int stages = static_cast<int>(counts.size());
  const std::string type = job->parameters.value("task_type", std::string("noop"));
  int at = stage;  // the job's stage, once this call has advanced it
  for (int s = std::max(stage, 1); s < stages; ++s) {
    if (!add_stage_tasks(c, job_id, s + 1, type, counts[s].get<int>())) break;
    // Stage s + 1 was empty, so it is complete already: advance into it (the
    // caller's own advance of `stage` then loses) and try the next one.
    advance(c, job_id, s, s + 1);
    at = s + 1;
  }
  // Past empty stages: on to the next stage with tasks, or (the last stage
  // was empty) to the job's end.
  if (at > stage) advance(c, job_id, at, at + 1);
}

void add_submit(CLI::App& app, Global& g) {
  auto* cmd = app.add_subcommand("submit", "create a job and fan out its first stage");
  struct Args {
    std::string job_type = "demo";
    std::string tasks = "100";
    std::string task_type = "noop";
    std::string params = "{}";
    std::string id;
    double handover_lease_s = 0;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("--type", a->job_type, "job type")->capture_default_str();
  cmd->add_option("--tasks", a->tasks,
                  "tasks per stage, comma separated (e.g. 20000,10000,5000 = 3 stages)")
      ->capture_default_str();
  cmd->add_option("--task-type", a->task_type,
                  "type of every stage's tasks (built-in handlers: noop, sleep, fail-once; "
                  "any other type needs `worker --exec`)")
      ->capture_default_str();
  cmd->add_option("--params", a->params, "job parameters (JSON object)")->capture_default_str();
  cmd->add_option("--id", a->id, "job id (default: generated)");
  cmd->add_option("--handover-lease", a->handover_lease_s,
                  "seconds a stage's completer may take to advance the job before a worker takes "
                  "the stage over (default 60)")
      ->check(CLI::Range(0.001, 86400.0));
  cmd->callback([&g, a] {
    const std::vector<int> counts = parse_stage_counts(a->tasks);
    client::json params;
    try {
      params = client::json::parse(a->params);
    } catch (const client::json::parse_error& e) {
      throw CLI::ValidationError("--params", std::string("invalid JSON: ") + e.what());
    }
    if (!params.is_object()) throw CLI::ValidationError("--params", "must be a JSON object");
    params["stage_tasks"] = counts;
    params["task_type"] = a->task_type;
    client::Client c(g.options());
    const std::optional<std::string> id = a->id.empty() ? std::nullopt : std::optional(a->id);
    const auto job_id = c.run([&](client::Connection& conn) {
      return client::api::create_job(conn, a->job_type, params, static_cast<int>(counts.size()), id);
    });
    if (a->handover_lease_s > 0)
      c.run([&](client::Connection& conn) {
        client::api::set_handover_lease(
            conn, job_id, std::chrono::milliseconds(static_cast<long>(a->handover_lease_s * 1000)));
      });
    if (add_stage_tasks(c, job_id, 1, a->task_type, counts[0])) {
      // Stage 1 is empty, so complete: no worker will hear of it.
      fan_out_next_stage(c, job_id, 1);
      advance(c, job_id, 1, 2);
    }
    fmt::print("{}\n", job_id);
  });
}

}  // namespace workflow::cli
