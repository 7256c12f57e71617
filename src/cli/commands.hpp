// Subcommands of the `workflow` CLI; each registers itself on the CLI11 app
// and returns the exit code through `exit_code`.
#pragma once

#include <CLI/CLI.hpp>

#include <memory>
#include <string>

#include "workflow/client.hpp"

namespace workflow::cli {

struct Global {
  std::string conninfo;  // --db; default DATABASE_URL / PG* variables
  bool verbose = false;  // log every statement with its time
  std::string statements;  // --statements / WORKFLOW_STATEMENTS; empty = the library's default
  std::string waits;       // --waits / WORKFLOW_WAITS; empty = the library's default
  int exit_code = 0;
  client::ClientOptions options() const;
};

void add_health(CLI::App& app, Global& g);
void add_submit(CLI::App& app, Global& g);
void add_worker(CLI::App& app, Global& g);
void add_watch(CLI::App& app, Global& g);
void add_history(CLI::App& app, Global& g);
void add_export(CLI::App& app, Global& g);
void add_controls(CLI::App& app, Global& g);  // retry, pause, resume, purge
void add_serve(CLI::App& app, Global& g);
void add_import_sqlite(CLI::App& app, Global& g);

// Fan-out convention of `submit --tasks a,b,c`: the job's parameters carry
// "stage_tasks": [a, b, c]; when stage s completes, stage s+1 gets its tasks.
// An empty stage is complete as soon as it is sealed, and no task completion
// will report it: the caller that sealed it advances the job past it.
void fan_out_next_stage(client::Client& c, const std::string& job_id, int stage);
// Adds `count` tasks to a stage in chunks, sealing with the last chunk.
// Returns true when sealing completed the stage (count == 0).
bool add_stage_tasks(client::Client& c, const std::string& job_id, int stage,
                     const std::string& task_type, int count);

}  // namespace workflow::cli
