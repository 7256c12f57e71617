// Exponential backoff: the delay before retry number `attempt` (1-based),
// base * 2^(attempt-1), capped at `cap`. The jittered form draws uniformly
// from [delay/2, delay] ("equal jitter") so retries of many workers spread out.
// Used by the task retry policy (fail_task) and the client's reconnects.
#pragma once

#include <cstdint>

namespace workflow::core {

// The longest delay any backoff returns: 100 years (36525 days). A larger
// cap (or an overflowing base * 2^n) is clamped to it, so the delay stays a
// positive interval and now() + delay a valid timestamp.
inline constexpr double kMaxBackoffSeconds = 36525.0 * 86400.0;

struct BackoffPolicy {
  double base_seconds = 1.0;
  double cap_seconds = 3600.0;
};

// Deterministic delay in seconds, in [0, kMaxBackoffSeconds]; attempt < 1 is
// treated as 1; NaN or negative base/cap count as 0.
double backoff_delay(const BackoffPolicy& policy, int attempt) noexcept;

// Delay with equal jitter; `unit_random` in [0, 1) picks the point.
double backoff_delay_jittered(const BackoffPolicy& policy, int attempt,
                              double unit_random) noexcept;

// `seconds` as whole microseconds (an interval's time field), clamped to
// [0, kMaxBackoffSeconds]: never negative, never an int64 overflow.
std::int64_t backoff_microseconds(double seconds) noexcept;

}  // namespace workflow::core
