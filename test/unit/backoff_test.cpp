#include "core/backoff.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>

using workflow::core::backoff_delay;
using workflow::core::backoff_delay_jittered;
using workflow::core::BackoffPolicy;
using workflow::core::backoff_microseconds;
using workflow::core::kMaxBackoffSeconds;

TEST(Backoff, DoublesFromBase) {
  BackoffPolicy p{2.0, 1000.0};
  EXPECT_DOUBLE_EQ(backoff_delay(p, 1), 2.0);
  EXPECT_DOUBLE_EQ(backoff_delay(p, 2), 4.0);
  EXPECT_DOUBLE_EQ(backoff_delay(p, 5), 32.0);
}

TEST(Backoff, CapsAndSurvivesHugeAttempts) {
  BackoffPolicy p{1.0, 60.0};
  EXPECT_DOUBLE_EQ(backoff_delay(p, 7), 60.0);
  EXPECT_DOUBLE_EQ(backoff_delay(p, 100000), 60.0);
  EXPECT_DOUBLE_EQ(backoff_delay(p, 0), 1.0);
  EXPECT_DOUBLE_EQ(backoff_delay(p, -5), 1.0);
}

TEST(Backoff, JitterStaysInUpperHalf) {
  BackoffPolicy p{1.0, 60.0};
  EXPECT_DOUBLE_EQ(backoff_delay_jittered(p, 3, 0.0), 2.0);
  EXPECT_DOUBLE_EQ(backoff_delay_jittered(p, 3, 1.0), 4.0);
  EXPECT_DOUBLE_EQ(backoff_delay_jittered(p, 3, 0.5), 3.0);
  EXPECT_DOUBLE_EQ(backoff_delay_jittered(p, 3, 7.0), 4.0);
}

// retry_delay used to turn a huge cap into a negative interval (the
// microseconds overflowed int64): now every delay is clamped to 100 years.
TEST(Backoff, HugeCapsAreClampedNotNegative) {
  const double million_years = 1e6 * 365.25 * 86400.0;
  BackoffPolicy p{3600.0, million_years};
  EXPECT_DOUBLE_EQ(backoff_delay(p, 1), 3600.0);
  EXPECT_DOUBLE_EQ(backoff_delay(p, 200), kMaxBackoffSeconds);
  EXPECT_DOUBLE_EQ(backoff_delay(BackoffPolicy{million_years, million_years}, 1), kMaxBackoffSeconds);
  EXPECT_LE(backoff_delay_jittered(p, 1000, 0.999), kMaxBackoffSeconds);
  EXPECT_GT(backoff_delay_jittered(p, 1000, 0.0), 0.0);
  EXPECT_EQ(backoff_microseconds(backoff_delay(p, 200)),
            static_cast<std::int64_t>(kMaxBackoffSeconds) * 1000000);
  EXPECT_EQ(backoff_microseconds(million_years), static_cast<std::int64_t>(kMaxBackoffSeconds) * 1000000);
  EXPECT_EQ(backoff_microseconds(1e300), static_cast<std::int64_t>(kMaxBackoffSeconds) * 1000000);
  EXPECT_EQ(backoff_microseconds(-5.0), 0);
  EXPECT_EQ(backoff_microseconds(1.5), 1500000);
  EXPECT_DOUBLE_EQ(backoff_delay(BackoffPolicy{1.0, -1.0}, 3), 0.0);
  EXPECT_DOUBLE_EQ(backoff_delay(BackoffPolicy{std::nan(""), 10.0}, 3), 0.0);
}
