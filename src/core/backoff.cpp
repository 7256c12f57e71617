#include "core/backoff.hpp"

#include <algorithm>
#include <cmath>

namespace workflow::core {

double backoff_delay(const BackoffPolicy& policy, int attempt) noexcept {
  const double base = std::max(0.0, policy.base_seconds);
  const double cap = std::max(0.0, policy.cap_seconds);
  const int exponent = std::clamp(attempt, 1, 1024) - 1;
  // 2^exponent overflows to inf for large exponents; min() then yields cap.
  return std::min(cap, base * std::ldexp(1.0, exponent));
}

double backoff_delay_jittered(const BackoffPolicy& policy, int attempt,
                              double unit_random) noexcept {
  const double delay = backoff_delay(policy, attempt);
  const double u = std::clamp(unit_random, 0.0, 1.0);
  return delay / 2.0 + u * (delay / 2.0);
}

}  // namespace workflow::core
