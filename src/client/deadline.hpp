// now + timeout as a steady_clock deadline, or the end of time for a timeout
// too long to add (milliseconds::max() as "as long as it takes" must not wrap
// into the past). Internal to the client library: Pool::acquire, Client's waits
// and wait_until_ready.
#pragma once

#include <chrono>

namespace workflow::client::detail {

inline std::chrono::steady_clock::time_point deadline_after(std::chrono::milliseconds timeout) {
  using Clock = std::chrono::steady_clock;
  const auto now = Clock::now();
  if (timeout >= std::chrono::duration_cast<std::chrono::milliseconds>(Clock::time_point::max() - now))
    return Clock::time_point::max();
  return now + timeout;
}

}  // namespace workflow::client::detail
