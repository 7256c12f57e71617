// The task handler of `workflow worker --exec CMD`: any program is a worker.
// The task goes to the command's stdin as JSON, its stdout is the task's
// JSON result, a non-zero exit (or a signal, or invalid JSON) fails the task
// with stderr as the error, and a command that outlives the timeout is killed
// and fails the task (retried with backoff like any failure).
#pragma once

#include <chrono>
#include <string>

#include "workflow/types.hpp"

namespace workflow::cli {

// Throws std::runtime_error (a retryable task failure) on any failure.
client::json run_exec_handler(const std::string& command, std::chrono::milliseconds timeout,
                              const client::Task& task);

}  // namespace workflow::cli
