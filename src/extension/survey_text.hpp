// Small guarded conversions between SQL text and C++ strings for the survey
// functions. Every call that may ereport goes through pg_call.
#pragma once

#include "pg/boundary.hpp"

extern "C" {
#include "utils/builtins.h"
}

#include <string_view>

#include "core/error.hpp"

namespace workflow::survey_ext {

// The text argument `n` as a view into its detoasted bytes (valid for the call).
// A NULL argument raises 22004 naming `what`.
inline std::string_view text_arg(FunctionCallInfo fcinfo, int n, const char* what) {
  if (PG_ARGISNULL(n))
    throw core::error(core::sqlstate::null_value_not_allowed, std::string(what) + " must not be null");
  text* t = pg::pg_call([&] { return PG_GETARG_TEXT_PP(n); });
  return {VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t)};
}

inline Datum text_datum(std::string_view s) {
  return pg::pg_call([&] { return PointerGetDatum(cstring_to_text_with_len(s.data(), static_cast<int>(s.size()))); });
}

}  // namespace workflow::survey_ext
