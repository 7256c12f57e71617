// The entry point: a pool, a retry policy, and the typed calls (api.hpp) run
// on pooled connections with retries. Every engine call the client makes is
// safe to repeat after a lost reply (complete is idempotent and repeats its
// stage-complete answer; claim's lost tasks come back when their lease expires).
#pragma once

#include <chrono>
#include <functional>
#include <initializer_list>
#include <optional>
#include <string>

#include "workflow/api.hpp"
#include "workflow/error.hpp"
#include "workflow/pool.hpp"
#include "workflow/retry.hpp"
#include "workflow/transaction.hpp"

namespace workflow::client {

struct ClientOptions {
  PoolOptions pool;
  RetryPolicy retry;
};

class Client {
 public:
  explicit Client(ClientOptions options = {});

  Pool& pool() noexcept { return pool_; }
  const RetryPolicy& retry_policy() const noexcept { return options_.retry; }

  // fn(Connection&) with a pooled connection, retried on connection failure.
  template <class F>
  auto run(F&& fn) {
    return with_connection(pool_, options_.retry, std::forward<F>(fn));
  }
  // fn(Connection&) in a transaction, retried on connection failure, 40001, 40P01.
  template <class F>
  auto transaction(F&& fn, const std::string& begin = "BEGIN") {
    return in_transaction(pool_, options_.retry, std::forward<F>(fn), begin);
  }

  // True when the server answers and the extension is installed (version text).
  std::optional<std::string> extension_version();

  // Wait until the stage is complete / the job has ended (or the timeout).
  // Both return only what they read from workflow.stages / workflow.jobs: a
  // notification (which any role that can connect may send, with any payload)
  // only makes them read the state again, it never decides the answer.
  // How they wait is Settings::waits: LISTEN on workflow_stage_complete /
  // workflow_job_complete needs a DIRECT or SESSION-MODE connection (behind
  // PgBouncer in transaction mode LISTEN hears nothing); the default
  // (automatic) listens on a direct connection and polls every
  // Settings::poll_interval when it detects a pooler (Connection::behind_pooler).
  // In LISTEN mode the state is read after LISTEN, so an event that fired
  // earlier is not missed, and again every 5 s, so a lost notification only
  // delays the answer. A connection lost while waiting (server restart,
  // terminated backend) is replaced and the wait goes on, in either mode:
  // retried as the RetryPolicy allows (counted from the last read that
  // worked), never past the timeout; then the connection_error is thrown.
  // A pool whose connections are all in use is waited for until the timeout
  // at most (then pool_timeout), not for its whole checkout_timeout.
  // P0002 when the job does not exist.
  // True when the stage is complete; false on timeout or when the job ended
  // without completing it (it never will).
  bool wait_for_stage(const std::string& job_id, int stage, std::chrono::milliseconds timeout);
  // Returns the job's final status, or nullopt on timeout.
  std::optional<std::string> wait_for_job(const std::string& job_id,
                                          std::chrono::milliseconds timeout);
  // Whether waits LISTEN (true) or poll (false) here: Settings::waits, and for
  // automatic whether a pooled connection is behind a pooler.
  bool waits_listen();

 private:
  // decide(conn) reads the state: a value ends the wait. Woken by a
  // notification on `channels` for job_id (LISTEN) or every poll_interval.
  template <class T>
  std::optional<T> wait_until(const std::string& job_id,
                              std::initializer_list<const char*> channels,
                              std::chrono::milliseconds timeout,
                              const std::function<std::optional<T>(Connection&)>& decide);
  Lease acquire_until(std::chrono::steady_clock::time_point deadline);
  ClientOptions options_;
  Pool pool_;
};

}  // namespace workflow::client
