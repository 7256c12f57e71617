// POST /action/NAME: the dashboard's writes, each one SQL function call.
// Refused (403, nothing written) unless serve runs with --allow-actions and
// the request carries the token (Authorization: Bearer TOKEN). The body is a
// JSON object of the arguments; the answer {"ok": bool, "message": text}.
#pragma once

#include <string>

#include "cache.hpp"
#include "db.hpp"

namespace workflow::serve {

struct ActionRequest {
  std::string name;           // cancel-job, retry-task, retry-job, pause-task-type, resume-task-type
  std::string authorization;  // the Authorization header
  std::string body;           // JSON object
  std::string peer;           // for the log
};

struct ActionPolicy {
  bool allowed = false;  // --allow-actions
  std::string token;     // required, non-empty when allowed
};

Rendered run_action(Db& db, const ActionPolicy& policy, const ActionRequest& req);

// Constant-time comparison (the token check must not leak a prefix).
bool same_secret(const std::string& a, const std::string& b);

}  // namespace workflow::serve
