#include "workflow/client.hpp"

#include <algorithm>
#include <thread>

#include "deadline.hpp"

namespace workflow::client {
namespace {

using Clock = std::chrono::steady_clock;

// In LISTEN mode the state is re-read this often even without a notification.
constexpr std::chrono::seconds kListenRecheck{5};

bool terminal(const std::string& status) {
  return status == "completed" || status == "failed" || status == "cancelled";
}

// The job a notification names ({"job_id": ..., ...}); "" for an unparsable
// payload. Only a filter: the payload is never trusted for the answer.
std::string payload_job(const std::string& payload) {
  json j = json::parse(payload, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return {};
  auto it = j.find("job_id");
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

bool wants_listen(Connection& c) {
  switch (c.settings().waits) {
    case WaitMode::listen: return true;
    case WaitMode::poll: return false;
    case WaitMode::automatic: return !c.behind_pooler();
  }
  return false;
}

// LISTEN on a leased connection for the duration of a wait; the lease is
// cleaned (UNLISTEN *) or discarded so no later user receives stray events.
class Listening {
 public:
  Listening(Lease lease, std::initializer_list<const char*> channels) : lease_(std::move(lease)) {
    try {
      for (const char* ch : channels) lease_->listen(ch);
    } catch (...) {
      lease_.discard();
      throw;
    }
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

bool Client::waits_listen() {
  return run([](Connection& c) { return wants_listen(c); });
}

// A pool whose connections are all in use is waited for until the deadline
// at most, not for the pool's whole checkout_timeout.
Lease Client::acquire_until(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return pool_.acquire(std::clamp(left, std::chrono::milliseconds(0), options_.pool.checkout_timeout));
}

template <class T>
std::optional<T> Client::wait_until(const std::string& job_id,
                                    std::initializer_list<const char*> channels,
                                    std::chrono::milliseconds timeout,
                                    const std::function<std::optional<T>(Connection&)>& decide) {
  const auto deadline = detail::deadline_after(timeout);
  // A LISTEN connection that fails (server restarted, backend terminated) is
  // replaced, as run() replaces one: LISTEN again, read the state again (what
  // happened meanwhile is in it). Retried as RetryPolicy allows, counted from
  // the last read that worked, and never past the deadline.
  const RetryPolicy& policy = options_.retry;
  int failures = 0;
  Clock::time_point first_failure{};
  for (;;) {
    try {
      Lease lease = acquire_until(deadline);
      if (!wants_listen(*lease)) break;
      Listening l(std::move(lease), channels);
      Connection& c = l.conn();
      for (;;) {
        // Read only now that we listen: an event before this point is in the state.
        if (auto answer = decide(c)) return answer;
        failures = 0;
        if (Clock::now() >= deadline) return std::nullopt;
        const auto until = std::min(deadline, Clock::now() + kListenRecheck);
        while (auto n = c.wait_notification(until)) {
          if (payload_job(n->payload) != job_id) continue;  // another job's event
          while (c.wait_notification(Clock::now())) {}     // one re-read for a burst
          break;
        }
      }
    } catch (const std::exception& e) {
      const auto now = Clock::now();
      if (failures++ == 0) first_failure = now;
      if (!is_retryable(e) || failures >= policy.max_attempts ||
          now - first_failure >= policy.max_elapsed || now >= deadline)
        throw;
      pool_.note_error();
      std::this_thread::sleep_for(std::min<Clock::duration>(
          std::chrono::duration_cast<Clock::duration>(
              std::chrono::duration<double>(retry_delay(policy, failures))),
          deadline - now));
    }
  }
  // Polling (a pooler, or WaitMode::poll): no connection is held between reads.
  for (;;) {
    std::optional<T> answer;
    retry_loop(options_.retry, [&] { Lease lease = acquire_until(deadline); answer = decide(*lease); },
               [&](const std::exception&, int) { pool_.note_error(); });
    if (answer) return answer;
    const auto now = Clock::now();
    if (now >= deadline) return std::nullopt;
    std::this_thread::sleep_for(
        std::min<Clock::duration>(options_.pool.settings.poll_interval, deadline - now));
  }
}

bool Client::wait_for_stage(const std::string& job_id, int stage,
                            std::chrono::milliseconds timeout) {
  const auto answer = wait_until<bool>(
      job_id, {"workflow_stage_complete", "workflow_job_complete"}, timeout,
      [&](Connection& c) -> std::optional<bool> {
        if (stage_done(c, job_id, stage)) return true;
        // An ended job's open stage never completes: no need to wait for the timeout.
        if (terminal(require_job_status(c, job_id))) return stage_done(c, job_id, stage);
        return std::nullopt;
      });
  return answer.value_or(false);
}

std::optional<std::string> Client::wait_for_job(const std::string& job_id,
                                                std::chrono::milliseconds timeout) {
  return wait_until<std::string>(job_id, {"workflow_job_complete"}, timeout,
                                 [&](Connection& c) -> std::optional<std::string> {
                                   std::string status = require_job_status(c, job_id);
                                   if (terminal(status)) return status;
                                   return std::nullopt;
                                 });
}

}  // namespace workflow::client
