#include "core/backoff.hpp"

#include <algorithm>
#include <cmath>

namespace workflow::core {

namespace {

// x clamped to [0, kMaxBackoffSeconds]; NaN -> 0.
double clamp_seconds(double x) noexcept {
  if (!(x > 0.0)) return 0.0;  // also NaN
  return std::min(x, kMaxBackoffSeconds);
}

}  // namespace

double backoff_delay(const BackoffPolicy& policy, int attempt) noexcept {
  const double base = clamp_seconds(policy.base_seconds);
  const double cap = clamp_seconds(policy.cap_seconds);
  const int exponent = std::clamp(attempt, 1, 1024) - 1;
  // 2^exponent overflows to inf for large exponents; min() then yields cap.
  return clamp_seconds(std::min(cap, base * std::ldexp(1.0, exponent)));
}

std::int64_t backoff_microseconds(double seconds) noexcept {
  // kMaxBackoffSeconds * 1e6 (3.2e15) is far inside int64 and exact in a double.
  return static_cast<std::int64_t>(std::llround(clamp_seconds(seconds) * 1e6));
}

double backoff_delay_jittered(const BackoffPolicy& policy, int attempt,
                              double unit_random) noexcept {
  const double delay = backoff_delay(policy, attempt);
  const double u = std::clamp(unit_random, 0.0, 1.0);
  return delay / 2.0 + u * (delay / 2.0);
}

}  // namespace workflow::core
