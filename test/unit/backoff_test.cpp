#include "core/backoff.hpp"

#include <gtest/gtest.h>

using workflow::core::backoff_delay;
using workflow::core::backoff_delay_jittered;
using workflow::core::BackoffPolicy;

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
