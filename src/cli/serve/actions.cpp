// The dashboard's actions (see actions.hpp).
#include "actions.hpp"

#include <fmt/core.h>
#include <spdlog/spdlog.h>

#include <map>
#include <vector>

namespace workflow::serve {
namespace {

struct Action {
  std::string sql;                 // one statement returning one boolean
  std::vector<std::string> args;   // body keys, in $1.. order
  std::string done, nothing;       // messages for true / false ({} = the first argument)
};

const std::map<std::string, Action>& actions() {
  static const std::map<std::string, Action> a = {
      {"cancel-job", {"SELECT workflow.cancel_job($1, 'cancelled from the dashboard')", {"job_id"},
                      "job {} cancelled", "job {} had already ended"}},
      {"retry-task", {"SELECT workflow.retry_task($2, $1)", {"job_id", "task_id"},
                      "task queued again (job {})", "nothing to retry (job {})"}},
      {"retry-job", {"SELECT workflow.retry_job($1)", {"job_id"}, "job {} retried", "job {}: nothing to retry"}},
      {"pause-task-type", {"SELECT workflow.pause_task_type($1)", {"task_type"},
                           "task type {} paused", "task type {} was paused already"}},
      {"resume-task-type", {"SELECT workflow.resume_task_type($1)", {"task_type"},
                            "task type {} resumed", "task type {} was not paused"}},
  };
  return a;
}

Rendered answer(int status, bool ok, const std::string& message) {
  return {status, nlohmann::json{{"ok", ok}, {"message", message}}.dump(), "application/json"};
}

int status_for(const std::string& sqlstate) {
  if (sqlstate == "42883") return 501;                 // the function is not in this extension version
  if (sqlstate == "42501") return 403;                 // the role may not
  if (sqlstate == "P0002") return 404;                 // no such job or task
  if (sqlstate.rfind("22", 0) == 0) return 400;        // bad value
  return 409;
}

}  // namespace

bool same_secret(const std::string& a, const std::string& b) {
  if (b.empty() || a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

Rendered run_action(Db& db, const ActionPolicy& policy, const ActionRequest& req) {
  if (!policy.allowed) return answer(403, false, "actions are disabled: start workflow serve with --allow-actions");
  const std::string bearer = "Bearer ";
  const std::string given =
      req.authorization.rfind(bearer, 0) == 0 ? req.authorization.substr(bearer.size()) : std::string();
  if (!same_secret(given, policy.token)) {
    spdlog::warn("action {} from {} refused: bad or missing token", req.name, req.peer);
    return answer(403, false, "refused: bad or missing action token");
  }
  const auto it = actions().find(req.name);
  if (it == actions().end()) return answer(404, false, "no such action: " + req.name);
  const Action& a = it->second;
  const auto body = nlohmann::json::parse(req.body, nullptr, false);
  if (!body.is_object()) return answer(400, false, "the body must be a JSON object");
  client::Params params;
  for (const auto& k : a.args) {
    if (!body.contains(k) || !body[k].is_string() || body[k].get<std::string>().empty())
      return answer(400, false, fmt::format("{} needs \"{}\" (a non-empty string)", req.name, k));
    params.push_back(body[k].get<std::string>());
  }
  try {
    const bool changed = db.client().run([&](client::Connection& conn) {
      return conn.query(a.sql, params).boolean(0, 0);
    });
    spdlog::info("action {} {} from {}: {}", req.name, body.dump(), req.peer, changed);
    return answer(200, true, fmt::format(fmt::runtime(changed ? a.done : a.nothing), *params[0]));
  } catch (const client::sql_error& e) {
    return answer(status_for(e.sqlstate()), false, fmt::format("{} (SQLSTATE {})", e.what(), e.sqlstate()));
  }
}

}  // namespace workflow::serve
