// Retry with exponential backoff and equal jitter (core/backoff) for
// connection failures and, inside a retried transaction, 40001/40P01.
#pragma once

#include <chrono>
#include <functional>

#include "workflow/error.hpp"
#include "workflow/pool.hpp"
#include "workflow/transaction.hpp"

namespace workflow::client {

struct RetryPolicy {
  int max_attempts = 8;          // total tries, including the first
  double base_seconds = 0.05;
  double cap_seconds = 2.0;
  std::chrono::milliseconds max_elapsed{30000};  // give up after this much time in total
};

// True for errors worth a new attempt: a lost/failed connection, 40001, 40P01;
// not a connection refused for good (class 28: unknown role, failed
// authentication; 3D000: no such database).
bool is_retryable(const std::exception& e) noexcept;

// Seconds to sleep before retry number `attempt` (1-based), jittered.
double retry_delay(const RetryPolicy& policy, int attempt);

// Calls fn() until it returns, or throws a non-retryable error, or the policy
// is exhausted (then the last error is rethrown). on_retry sees each retried error.
void retry_loop(const RetryPolicy& policy, const std::function<void()>& fn,
                const std::function<void(const std::exception&, int attempt)>& on_retry = {});

// fn(Connection&) on a pooled connection, retried on a new lease when the
// connection fails. Use for idempotent statements.
template <class F>
auto with_connection(Pool& pool, const RetryPolicy& policy, F&& fn) {
  using R = decltype(fn(std::declval<Connection&>()));
  if constexpr (std::is_void_v<R>) {
    retry_loop(policy, [&] { Lease lease = pool.acquire(); fn(*lease); },
               [&](const std::exception&, int) { pool.note_error(); });
  } else {
    std::optional<R> out;
    retry_loop(policy, [&] { Lease lease = pool.acquire(); out.emplace(fn(*lease)); },
               [&](const std::exception&, int) { pool.note_error(); });
    return std::move(*out);
  }
}

// fn(Connection&) inside BEGIN ... COMMIT; the whole transaction is run again
// on connection failure, 40001 or 40P01 (fn must not have outside effects it cannot repeat).
template <class F>
auto in_transaction(Pool& pool, const RetryPolicy& policy, F&& fn,
                    const std::string& begin = "BEGIN") {
  return with_connection(pool, policy, [&](Connection& conn) {
    Transaction tx(conn, begin);
    if constexpr (std::is_void_v<decltype(fn(conn))>) {
      fn(conn);
      tx.commit();
    } else {
      auto r = fn(conn);
      tx.commit();
      return r;
    }
  });
}

}  // namespace workflow::client
