// `workflow watch JOB`: a live progress bar per stage (from job_progress)
// until the job ends, and what running handlers reported of themselves
// (report_progress, 1.4). On a terminal the frame redraws in place.
#include <fmt/core.h>
#include <unistd.h>

#include <thread>

#include "commands.hpp"

namespace workflow::cli {
namespace {

std::string bar(int done, int total, int width) {
  const int filled = total > 0 ? static_cast<int>(static_cast<long long>(done) * width / total) : 0;
  return std::string(filled, '#') + std::string(width - filled, '.');
}

}  // namespace

void add_watch(CLI::App& app, Global& g) {
  auto* cmd = app.add_subcommand("watch", "show live progress of a job until it ends");
  auto job_id = std::make_shared<std::string>();
  auto interval_ms = std::make_shared<int>(250);
  cmd->add_option("job", *job_id, "job id")->required();
  cmd->add_option("--interval-ms", *interval_ms, "refresh interval")->check(CLI::Range(20, 60000))->capture_default_str();
  cmd->callback([&g, job_id, interval_ms] {
    client::Client c(g.options());
    const bool tty = isatty(STDOUT_FILENO);
    int lines_drawn = 0;
    bool has_progress = true;
    const auto t0 = std::chrono::steady_clock::now();
    for (;;) {
      const auto job = c.run([&](client::Connection& conn) { return client::api::get_job(conn, *job_id); });
      if (!job) throw client::sql_error("P0002", "job \"" + *job_id + "\" does not exist");
      const auto stages =
          c.run([&](client::Connection& conn) { return client::api::job_progress(conn, *job_id); });
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::vector<std::string> lines;
      lines.push_back(fmt::format("job {} [{}] stage {}/{} status {}  ({:.1f}s)", job->id,
                                  job->job_type, job->stage, job->total_stages, job->status, secs));
      for (const auto& s : stages)
        lines.push_back(fmt::format(
            "  stage {} [{}] {:>7}/{:<7} {:>5.1f}%{}{}", s.stage,
            bar(s.completed_tasks, s.total_tasks, 40), s.completed_tasks, s.total_tasks,
            s.total_tasks ? 100.0 * s.completed_tasks / s.total_tasks : 0.0,
            s.failed_tasks ? fmt::format(" failed {}", s.failed_tasks) : "",
            s.complete ? " complete" : (s.sealed ? "" : " (open)")));
      // Claimed tasks that reported progress, newest first (a database before 1.4
      // has no tasks.progress: nothing to show).
      if (has_progress) {
        try {
          const auto running = c.run([&](client::Connection& conn) {
            return conn.query(
                "SELECT id, coalesce(claimed_by, ''), progress::text FROM workflow.tasks "
                "WHERE job_id = $1 AND status = 'claimed' AND progress IS NOT NULL "
                "ORDER BY updated_at DESC LIMIT 5",
                {*job_id});
          });
          for (int i = 0; i < running.rows(); ++i)
            lines.push_back(fmt::format("  task {} ({}): {}", running.string(i, 0), running.string(i, 1),
                                        running.string(i, 2).substr(0, 200)));
        } catch (const client::sql_error& e) {
          if (e.sqlstate() != "42703") throw;
          has_progress = false;
        }
      }
      // On a terminal: move up over the previous frame and clear each line's rest.
      std::string out;
      if (tty && lines_drawn) out += fmt::format("\033[{}A", lines_drawn);
      for (const auto& l : lines) out += l + (tty ? "\033[K\n" : "\n");
      fmt::print("{}", out);
      std::fflush(stdout);
      lines_drawn = static_cast<int>(lines.size());
      if (job->status == "completed" || job->status == "failed" || job->status == "cancelled") {
        g.exit_code = job->status == "completed" ? 0 : 1;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(*interval_ms));
    }
  });
}

}  // namespace workflow::cli
