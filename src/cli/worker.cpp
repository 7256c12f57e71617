// `workflow worker`: runs N worker loops (threads) with the built-in task
// handlers or a command per task (--exec, exec_handler.hpp), fanning out the next stage by the `submit` convention, until
// stopped (SIGINT/SIGTERM), idle for --exit-when-idle, or --until-job ends.
#include <fmt/core.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <exception>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "commands.hpp"
#include "exec_handler.hpp"
#include "workflow/worker.hpp"
#include "workflow/worker_group.hpp"

namespace workflow::cli {
namespace {

std::atomic<bool> g_stop{false};
void on_signal(int) { g_stop = true; }

// The worker threads. join() waits for them; leaving the scope any other way
// (the callback throws) stops and joins them: a joinable std::thread is never
// destroyed (that is std::terminate, exit 134).
struct JoinedThreads {
  std::vector<std::thread> threads;
  void join() {
    for (auto& t : threads)
      if (t.joinable()) t.join();
  }
  ~JoinedThreads() {
    g_stop = true;
    join();
  }
};

// "message (SQLSTATE xxxxx) - detail" for an exception caught as exception_ptr.
std::string describe(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const client::sql_error& e) {
    return fmt::format("{} (SQLSTATE {}){}", e.what(), e.sqlstate(),
                       e.detail().empty() ? "" : " - " + e.detail());
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "unknown exception";
  }
}

// Built-in handlers by task type: noop, sleep ({"ms": N}), fail-once (fails its
// first try). Without --exec the worker claims only these types.
const std::vector<std::string> kBuiltinTypes = {"noop", "sleep", "fail-once"};
client::json run_builtin(const client::Task& t) {
  if (t.task_type == "sleep") {
    std::this_thread::sleep_for(std::chrono::milliseconds(t.parameters.value("ms", 10)));
    return {{"slept_ms", t.parameters.value("ms", 10)}};
  }
  if (t.task_type == "fail-once" && t.retry_count == 0)
    throw std::runtime_error("fail-once: first attempt fails on purpose");
  return client::json::object();
}

}  // namespace

void add_worker(CLI::App& app, Global& g) {
  auto* cmd = app.add_subcommand("worker", "claim and run tasks");
  struct Args {
    std::string name;
    int concurrency = 4;
    int batch = 32;
    int lease_s = 300;
    double exit_when_idle = 0;
    std::string until_job;
    std::vector<std::string> types;
    bool transaction_per_task = false;
    bool alone = false;
    std::string exec;
    double exec_timeout_s = 300;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("--name", a->name, "worker name prefix (default host:pid)");
  cmd->add_option("-c,--concurrency", a->concurrency, "worker loops (threads)")->check(CLI::Range(1, 256))->capture_default_str();
  cmd->add_option("-b,--batch", a->batch, "tasks claimed per round trip")->check(CLI::Range(1, 10000))->capture_default_str();
  cmd->add_option("--lease", a->lease_s, "task lease in seconds")->check(CLI::Range(1, 86400))->capture_default_str();
  cmd->add_option("--types", a->types,
                  "only these task types (default: noop, sleep, fail-once, the built-in handlers; "
                  "with --exec: any type)")
      ->delimiter(',');
  cmd->add_option("--exit-when-idle", a->exit_when_idle, "exit after this many idle seconds");
  cmd->add_flag("--transaction-per-task", a->transaction_per_task,
                "complete each task in its own transaction (default: one complete_tasks statement per batch)");
  cmd->add_option("--until-job", a->until_job, "exit when this job has ended");
  cmd->add_flag("--alone", a->alone,
                "each worker loop claims and completes in its own round trips (default: the loops "
                "that claim or complete at the same moment share one round trip and commit)");
  cmd->add_option("--exec", a->exec,
                  "run this shell command per task instead of the built-in handlers: the task as "
                  "JSON on stdin, stdout (JSON) is its result, a non-zero exit fails it with stderr "
                  "as the error");
  cmd->add_option("--exec-timeout", a->exec_timeout_s,
                  "seconds a --exec command may run before it is killed and the task fails "
                  "(retried with backoff)")
      ->check(CLI::Range(0.001, 86400.0))
      ->capture_default_str();
  cmd->callback([&g, a] {
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    // A --exec command that exits without reading its stdin must not kill the worker.
    std::signal(SIGPIPE, SIG_IGN);
    client::TaskHandler handler = run_builtin;
    if (a->exec.empty()) {
      // Only the types a built-in handler runs: a task of another type is left
      // for the workers that handle it, never completed here as a noop.
      for (const auto& t : a->types)
        if (std::find(kBuiltinTypes.begin(), kBuiltinTypes.end(), t) == kBuiltinTypes.end())
          throw CLI::ValidationError(
              "--types", fmt::format("'{}' has no built-in handler (noop, sleep, fail-once): "
                                     "run it with --exec CMD", t));
      if (a->types.empty()) a->types = kBuiltinTypes;
    } else {
      const auto timeout = std::chrono::milliseconds(static_cast<long>(a->exec_timeout_s * 1000));
      handler = [cmd = a->exec, timeout](const client::Task& t) {
        return run_exec_handler(cmd, timeout, t);
      };
    }
    auto opts = g.options();
    opts.pool.max_size = static_cast<std::size_t>(a->concurrency) * 2 + 2;
    client::Client c(opts);
    std::string prefix = a->name;
    if (prefix.empty()) {
      char host[256] = {0};
      gethostname(host, sizeof host - 1);
      prefix = fmt::format("{}:{}", host, getpid());
    }
    if (!a->until_job.empty() &&  // an unknown job would never end: P0002 before any work
        !c.run([&](client::Connection& conn) { return client::api::get_job(conn, a->until_job); }))
      throw client::sql_error("P0002", "job \"" + a->until_job + "\" does not exist");
    // Before the threads that use it, destroyed after them. One shared round
    // trip at a time at batch 1 (the most sharing), two for larger batches
    // (the server's work per trip dominates): the faster of each in
    // bench/RESULTS.md section 7.
    client::WorkerGroup group(c, a->batch == 1 ? 1 : 2);
    JoinedThreads workers;
    auto& threads = workers.threads;
    std::vector<client::WorkerStats> stats(a->concurrency);
    // Every failure of a thread is kept (not only logged) and decides the exit status.
    std::vector<std::exception_ptr> errors(a->concurrency + 1);  // + the --until-job wait
    std::atomic<int> running{a->concurrency};  // loops still running (--exit-when-idle ends them)
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < a->concurrency; ++i) {
      client::WorkerOptions w;
      w.name = fmt::format("{}/{}", prefix, i);
      w.batch_size = a->batch;
      w.task_types = a->types;
      w.lease = std::chrono::seconds(a->lease_s);
      w.stop_after_idle = std::chrono::milliseconds(static_cast<long>(a->exit_when_idle * 1000));
      w.on_stage_complete = fan_out_next_stage;
      w.transaction_per_task = a->transaction_per_task;
      if (!a->alone) w.group = &group;
      threads.emplace_back([&c, &stats, &errors, &handler, &running, i, w] {
        try {
          client::Worker worker(c, w, handler);
          stats[i] = worker.run(g_stop);
        } catch (...) {
          errors[i] = std::current_exception();
          spdlog::error("worker {} failed: {}", w.name, describe(errors[i]));
          g_stop = true;  // a failure the loop does not retry stops the others too
        }
        --running;
      });
    }
    std::optional<std::string> job_status;  // how the --until-job job ended
    bool idle_before_job_ended = false;      // --exit-when-idle ended every loop first
    if (!a->until_job.empty()) {
      try {
        while (!g_stop && running > 0) {
          try {
            job_status = c.wait_for_job(a->until_job, std::chrono::seconds(1));
            if (job_status) break;
          } catch (const client::connection_error&) {
            std::this_thread::sleep_for(std::chrono::milliseconds(200));  // server restarting
          }
        }
        if (!job_status && !g_stop) {  // every loop idled out: the job's status now
          idle_before_job_ended = true;
          const auto job = c.run([&](client::Connection& conn) { return client::api::get_job(conn, a->until_job); });
          if (!job) throw client::sql_error("P0002", "job \"" + a->until_job + "\" does not exist");
          job_status = job->status;
        }
      } catch (...) {
        errors.back() = std::current_exception();
        spdlog::error("waiting for job {} failed: {}", a->until_job, describe(errors.back()));
      }
      g_stop = true;
    }
    workers.join();
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    client::WorkerStats total;
    for (const auto& s : stats) total += s;
    const auto m = c.pool().metrics();
    const auto gc = group.counts();
    client::json out = {{"workers", a->concurrency},   {"seconds", secs},
                        {"claimed", total.claimed},    {"completed", total.completed},
                        {"failed", total.failed},      {"stage_completions", total.stage_completions},
                        {"advances", total.advances},  {"jobs_completed", total.jobs_completed},
                        {"reconnects", total.reconnects}, {"handovers", total.handovers},
                        {"refused", total.refused},       {"released", total.released},
                        {"round_trips", {{"claims", gc.claim_round_trips},
                                         {"claim_requests", gc.claims},
                                         {"completes", gc.complete_round_trips},
                                         {"complete_requests", gc.completes},
                                         {"cycles", gc.cycle_round_trips},
                                         {"cycle_requests", gc.cycles}}},
                        {"tasks_per_second", secs > 0 ? total.completed / secs : 0.0},
                        {"pool", {{"created", m.created}, {"waits", m.waits}, {"errors", m.errors}}}};
    int failures = 0;
    for (const auto& e : errors) failures += e ? 1 : 0;
    out["errors"] = failures;
    if (job_status) out["job_status"] = *job_status;
    fmt::print("{}\n", out.dump());
    if (failures > 0) {
      g.exit_code = 2;  // each failure was logged with its SQLSTATE above
    } else if (job_status && *job_status != "completed") {
      if (idle_before_job_ended)
        spdlog::error("job {} is {}: the worker stopped after {} idle seconds (--exit-when-idle)",
                      a->until_job, *job_status, a->exit_when_idle);
      else
        spdlog::error("job {} ended {}", a->until_job, *job_status);
      g.exit_code = 1;  // as `watch`: the job did not complete
    }
  });
}

}  // namespace workflow::cli
