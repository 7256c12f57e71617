// Small guarded conversions between SQL text and C++ strings for the survey
// functions, over the shared helpers of pg/datum.hpp. Every call that may
// ereport goes through pg_call (one at a time, never nested).
#pragma once

#include "pg/datum.hpp"

#include <string_view>

#include "core/error.hpp"

namespace workflow::survey_ext {

// The text argument `n` as a view into its detoasted bytes (valid for the call).
// A NULL argument raises 22004 naming `what`.
inline std::string_view text_arg(FunctionCallInfo fcinfo, int n, const char* what) {
  if (PG_ARGISNULL(n))
    throw core::error(core::sqlstate::null_value_not_allowed, std::string(what) + " must not be null");
  return pg::text_view(pg::text_arg_or_null(fcinfo, n));
}

using pg::text_datum;

}  // namespace workflow::survey_ext
