// Runs a shell command as a child process: writes `input` to its stdin,
// collects stdout and stderr, and kills its whole process group when it
// outlives the timeout. Used by `workflow worker --exec`.
#pragma once

#include <chrono>
#include <string>
#include <utility>
#include <vector>

namespace workflow::cli {

struct ProcessResult {
  int exit_code = -1;     // exit status when it exited, else -1
  int signal = 0;         // the signal that ended it, else 0
  bool timed_out = false; // killed (SIGKILL to its group) after the timeout
  std::string out;        // stdout, at most max_output bytes
  std::string err;        // stderr, at most max_output bytes (the last ones)
  bool out_truncated = false;
};

// `command` runs under /bin/sh -c with the current environment plus `env`.
// Throws std::system_error when the process cannot be started.
ProcessResult run_process(const std::string& command, const std::string& input,
                          const std::vector<std::pair<std::string, std::string>>& env,
                          std::chrono::milliseconds timeout, std::size_t max_output = 16u << 20);

}  // namespace workflow::cli
