#include "workflow/client.hpp"

namespace workflow::client {
namespace {

using Clock = std::chrono::steady_clock;

bool terminal(const std::string& status) {
  return status == "completed" || status == "failed" || status == "cancelled";
}

// Payloads are JSON ({"job_id": ..., "stage": N} / {"job_id": ..., "status": ...});
// an unparsable payload is ignored rather than trusted.
json parse_payload(const std::string& payload) {
  json j = json::parse(payload, nullptr, /*allow_exceptions=*/false);
  return j.is_object() ? j : json::object();
}

// LISTEN on a leased connection for the duration of a wait; the lease is
// cleaned (UNLISTEN *) or discarded so no later user receives stray events.
class Listening {
 public:
  Listening(Pool& pool, std::initializer_list<const char*> channels) : lease_(pool.acquire()) {
    for (const char* ch : channels) lease_->listen(ch);
  }
  ~Listening() {
    try {
      lease_->unlisten_all();
      while (lease_->wait_notification(Clock::now())) {}  // drain what arrived meanwhile
    } catch (...) {
      lease_.discard();
    }
  }
  Connection& conn() { return *lease_; }

 private:
  Lease lease_;
};

std::string require_job_status(Connection& c, const std::string& job_id) {
  Result r = c.query("SELECT status FROM workflow.jobs WHERE id = $1", {job_id});
  if (r.rows() == 0) throw sql_error("P0002", "job \"" + job_id + "\" does not exist");
  return r.string(0, 0);
}

bool stage_done(Connection& c, const std::string& job_id, int stage) {
  for (const auto& s : api::job_progress(c, job_id))
    if (s.stage == stage) return s.complete;
  return false;
}

}  // namespace

Client::Client(ClientOptions options) : options_(std::move(options)), pool_(options_.pool) {}

std::optional<std::string> Client::extension_version() {
  return run([](Connection& c) -> std::optional<std::string> {
    Result r = c.query(
        "SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'workflow'");
    if (r.rows() == 0) return std::nullopt;
    return r.string(0, 0);
  });
}

bool Client::wait_for_stage(const std::string& job_id, int stage,
                            std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  Listening l(pool_, {"workflow_stage_complete", "workflow_job_complete"});
  Connection& c = l.conn();
  // Read the state only now that we listen: an event before this point is in the state.
  if (stage_done(c, job_id, stage)) return true;
  if (terminal(require_job_status(c, job_id))) return stage_done(c, job_id, stage);
  while (auto n = c.wait_notification(deadline)) {
    const json p = parse_payload(n->payload);
    if (p.value("job_id", std::string()) != job_id) continue;
    if (n->channel == "workflow_stage_complete" && p.value("stage", -1) == stage) return true;
    if (n->channel == "workflow_job_complete") return stage_done(c, job_id, stage);
  }
  return false;
}

std::optional<std::string> Client::wait_for_job(const std::string& job_id,
                                                std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  Listening l(pool_, {"workflow_job_complete"});
  Connection& c = l.conn();
  if (std::string status = require_job_status(c, job_id); terminal(status)) return status;
  while (auto n = c.wait_notification(deadline)) {
    const json p = parse_payload(n->payload);
    if (p.value("job_id", std::string()) != job_id) continue;
    std::string status = p.value("status", std::string());
    return terminal(status) ? status : require_job_status(c, job_id);
  }
  return std::nullopt;
}

}  // namespace workflow::client
