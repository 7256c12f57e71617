#include "exec_handler.hpp"

#include <fmt/core.h>

#include <stdexcept>

#include "subprocess.hpp"

namespace workflow::cli {
namespace {

// PostgreSQL text cannot hold NUL: "\\0" instead (the worker repairs
// invalid UTF-8 and caps the message at fail_task's 10000 characters).
std::string without_nul(const std::string& s) {
  std::string out;
  for (char c : s) c == '\0' ? out += "\\0" : out += c;
  return out;
}

// The end of stderr (where a traceback ends), within fail_task's limit.
std::string tail(const std::string& s, std::size_t n = 4000) {
  return s.size() <= n ? s : "..." + s.substr(s.size() - n);
}

[[noreturn]] void task_failed(const std::string& message) {
  throw std::runtime_error(without_nul(message));
}

}  // namespace

client::json run_exec_handler(const std::string& command, std::chrono::milliseconds timeout,
                              const client::Task& task) {
  const client::json input = {{"id", task.id},
                              {"job_id", task.job_id},
                              {"task_type", task.task_type},
                              {"stage", task.stage},
                              {"task_index", task.task_index},
                              {"retry_count", task.retry_count},
                              {"parameters", task.parameters}};
  const auto r = run_process(command, input.dump() + "\n",
                             {{"WORKFLOW_TASK_ID", task.id},
                              {"WORKFLOW_JOB_ID", task.job_id},
                              {"WORKFLOW_TASK_TYPE", task.task_type},
                              {"WORKFLOW_STAGE", std::to_string(task.stage)}},
                             timeout);
  if (r.timed_out)
    task_failed(fmt::format("--exec: timed out after {} s and was killed; stderr: {}",
                                         timeout.count() / 1000.0, tail(r.err)));
  if (r.signal != 0)
    task_failed(fmt::format("--exec: killed by signal {}; stderr: {}", r.signal, tail(r.err)));
  if (r.exit_code != 0)
    task_failed(fmt::format("--exec: exit status {}; stderr: {}", r.exit_code, tail(r.err)));
  if (r.out_truncated) task_failed("--exec: stdout is larger than 16 MiB");
  if (r.out.find_first_not_of(" \t\r\n") == std::string::npos) return client::json::object();
  client::json result;
  try {
    result = client::json::parse(r.out);
  } catch (const client::json::parse_error& e) {
    task_failed(fmt::format("--exec: stdout is not JSON ({}): {}", e.what(),
                                         tail(r.out, 500)));
  }
  // Valid JSON that jsonb refuses would fail the batch's completion instead.
  if (result.dump().find("\\u0000") != std::string::npos)
    task_failed("--exec: the result contains \\u0000, which jsonb cannot store");
  return result;
}

}  // namespace workflow::cli
