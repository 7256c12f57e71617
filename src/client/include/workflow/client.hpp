// The entry point: a pool, a retry policy, and the typed calls (api.hpp) run
// on pooled connections with retries. Every engine call the client makes is
// safe to repeat after a lost reply (complete is idempotent and repeats its
// stage-complete answer; claim's lost tasks come back when their lease expires).
#pragma once

#include <chrono>
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

  // Wait (LISTEN, no polling) until the stage is complete / the job has ended.
  // The state is read after LISTEN, so an event that fired earlier is not missed.
  bool wait_for_stage(const std::string& job_id, int stage, std::chrono::milliseconds timeout);
  // Returns the job's final status, or nullopt on timeout.
  std::optional<std::string> wait_for_job(const std::string& job_id,
                                          std::chrono::milliseconds timeout);

 private:
  ClientOptions options_;
  Pool pool_;
};

}  // namespace workflow::client
