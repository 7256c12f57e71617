// workflow.retry_delay(attempt, base, cap, jitter): the task retry backoff of
// fail_task, computed by src/core/backoff.hpp.
#include "core/backoff.hpp"
#include "pg/boundary.hpp"

extern "C" {
#include "common/pg_prng.h"
#include "datatype/timestamp.h"
#include "utils/timestamp.h"
}

#include <cmath>

namespace {

// Seconds in an interval, months counted as 30 days (as justify_days does).
double interval_seconds(const Interval* iv) {
  return iv->time / 1e6 + (iv->day + iv->month * 30.0) * SECS_PER_DAY;
}

}  // namespace

WF_FUNCTION(workflow_retry_delay) {
  int32 attempt = PG_GETARG_INT32(0);
  const Interval* base = PG_GETARG_INTERVAL_P(1);
  const Interval* cap = PG_GETARG_INTERVAL_P(2);
  bool jitter = PG_GETARG_BOOL(3);
  if (attempt < 1)
    throw workflow::core::error(workflow::core::sqlstate::invalid_parameter_value,
                                "attempt " + std::to_string(attempt) + " must be >= 1");
  workflow::core::BackoffPolicy policy{interval_seconds(base), interval_seconds(cap)};
  double seconds = jitter ? workflow::core::backoff_delay_jittered(
                                policy, attempt, pg_prng_double(&pg_global_prng_state))
                          : workflow::core::backoff_delay(policy, attempt);
  Interval* result = static_cast<Interval*>(palloc0(sizeof(Interval)));
  result->time = workflow::core::backoff_microseconds(seconds);  // clamped, never negative
  PG_RETURN_INTERVAL_P(result);
}
