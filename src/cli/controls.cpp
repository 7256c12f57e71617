// `workflow retry | pause | resume | purge`: the 1.4 engine controls from the
// shell (one SQL call each, workflow/controls.hpp). Each prints what changed;
// exit 1 when nothing did (the task was not dead, the type already paused...).
#include <fmt/core.h>

#include "commands.hpp"
#include "workflow/controls.hpp"

namespace workflow::cli {
namespace {

struct Target {
  std::string task;
  std::string job;
  std::string type;
};

// pause and resume: of a task type (--type) or of a job (--job).
void add_pause_or_resume(CLI::App& app, Global& g, bool pause) {
  auto* cmd = app.add_subcommand(pause ? "pause" : "resume",
                                 pause ? "stop claims of a task type or of a job"
                                       : "let a paused task type or job be claimed again");
  auto t = std::make_shared<Target>();
  auto* type = cmd->add_option("--type", t->type, "task type");
  auto* job = cmd->add_option("--job", t->job, "job id");
  type->excludes(job);
  cmd->callback([&g, t, pause] {
    if (t->type.empty() == t->job.empty()) throw CLI::ValidationError("give --type or --job");
    client::Client c(g.options());
    const bool changed = c.run([&](client::Connection& conn) {
      namespace a = client::api;
      if (!t->type.empty()) return pause ? a::pause_task_type(conn, t->type) : a::resume_task_type(conn, t->type);
      return pause ? a::pause_job(conn, t->job) : a::resume_job(conn, t->job);
    });
    fmt::print("{} {} {}: {}\n", pause ? "pause" : "resume", t->type.empty() ? "job" : "task type",
               t->type.empty() ? t->job : t->type, changed ? "done" : "nothing to change");
    if (!changed) g.exit_code = 1;
  });
}

}  // namespace

void add_controls(CLI::App& app, Global& g) {
  auto* retry = app.add_subcommand("retry", "queue a dead task again, or every dead task of a failed job");
  auto t = std::make_shared<Target>();
  retry->add_option("task", t->task, "dead task id (omit to retry the whole --job)");
  retry->add_option("--job", t->job, "the task's job, or the failed job to retry")->required();
  retry->callback([&g, t] {
    client::Client c(g.options());
    const bool done = c.run([&](client::Connection& conn) {
      return t->task.empty() ? client::api::retry_job(conn, t->job)
                             : client::api::retry_task(conn, t->task, t->job);
    });
    fmt::print("retry {}: {}\n", t->task.empty() ? "job " + t->job : "task " + t->task,
               done ? "queued again" : "nothing to retry");
    if (!done) g.exit_code = 1;
  });

  add_pause_or_resume(app, g, true);
  add_pause_or_resume(app, g, false);

  auto* purge = app.add_subcommand("purge", "delete finished jobs older than an interval, in bounded batches");
  auto older = std::make_shared<std::string>();
  auto statuses = std::make_shared<std::vector<std::string>>(
      std::vector<std::string>{"completed", "failed", "cancelled"});
  auto batch = std::make_shared<int>(1000);
  purge->add_option("--older-than", *older, "finished longer ago than this interval, e.g. '7 days'")->required();
  purge->add_option("--status", *statuses, "statuses to purge")->delimiter(',')->capture_default_str();
  purge->add_option("--batch", *batch, "jobs per transaction")->check(CLI::Range(1, 100000))->capture_default_str();
  purge->callback([&g, older, statuses, batch] {
    client::Client c(g.options());
    long total = 0;
    for (;;) {  // one bounded batch per call and transaction, until none is left
      const int n = c.run([&](client::Connection& conn) {
        return client::api::purge_jobs(conn, *older, *statuses, *batch);
      });
      total += n;
      if (n == 0) break;
    }
    fmt::print("purged {} jobs\n", total);
  });
}

}  // namespace workflow::cli
