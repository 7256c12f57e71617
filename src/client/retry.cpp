#include "workflow/retry.hpp"

#include <random>
#include <thread>

#include "core/backoff.hpp"

namespace workflow::client {

bool is_retryable(const std::exception& e) noexcept {
  if (auto* c = dynamic_cast<const connection_error*>(&e)) {
    // Refused at connect (unknown role or database, failed authentication):
    // retrying cannot help, and a worker would retry it silently for ever.
    const std::string& s = c->sqlstate();
    return s.rfind("28", 0) != 0 && s != "3D000";
  }
  if (auto* s = dynamic_cast<const sql_error*>(&e)) return s->is_transient();
  return false;
}

double retry_delay(const RetryPolicy& policy, int attempt) {
  thread_local std::mt19937 rng(std::random_device{}());
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  return core::backoff_delay_jittered({policy.base_seconds, policy.cap_seconds}, attempt,
                                      unit(rng));
}

void retry_loop(const RetryPolicy& policy, const std::function<void()>& fn,
                const std::function<void(const std::exception&, int)>& on_retry) {
  const auto start = std::chrono::steady_clock::now();
  for (int attempt = 1;; ++attempt) {
    try {
      fn();
      return;
    } catch (const std::exception& e) {
      const bool exhausted = attempt >= policy.max_attempts ||
                             std::chrono::steady_clock::now() - start >= policy.max_elapsed;
      if (!is_retryable(e) || exhausted) throw;
      if (on_retry) on_retry(e, attempt);
      std::this_thread::sleep_for(std::chrono::duration<double>(retry_delay(policy, attempt)));
    }
  }
}

}  // namespace workflow::client
