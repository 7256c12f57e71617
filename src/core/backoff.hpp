// Exponential backoff: the delay before retry number `attempt` (1-based),
// base * 2^(attempt-1), capped at `cap`. The jittered form draws uniformly
// from [delay/2, delay] ("equal jitter") so retries of many workers spread out.
// Used by the task retry policy (fail_task) and the client's reconnects.
#pragma once

#include <cstdint>

namespace workflow::core {

struct BackoffPolicy {
  double base_seconds = 1.0;
  double cap_seconds = 3600.0;
};

// Deterministic delay in seconds; attempt < 1 is treated as 1.
double backoff_delay(const BackoffPolicy& policy, int attempt) noexcept;

// Delay with equal jitter; `unit_random` in [0, 1) picks the point.
double backoff_delay_jittered(const BackoffPolicy& policy, int attempt,
                              double unit_random) noexcept;

}  // namespace workflow::core
