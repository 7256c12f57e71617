// Small conversions between SQL values (Datums, SPI result columns) and C++
// values, shared by the extension's files instead of a copy in each.
//
//   std::string_view id = workflow::pg::text_view(PG_GETARG_TEXT_PP(0));
//   int32 slot = workflow::pg::int_column(0, 1);          // after pg::execute
//   std::string status = workflow::pg::text_column(0, 2);
//   Datum d = workflow::pg::text_datum("completed");
//
// Every call that may ereport goes through pg_call, one at a time: none of
// these helpers runs inside another pg_call (a nested pg_call would leave
// PostgreSQL's error stack pointing at a dead frame when it throws). So do
// not call them from inside a pg_call lambda either.
#pragma once

#include "pg/spi.hpp"

extern "C" {
#include "utils/builtins.h"
}

#include <string>
#include <string_view>

namespace workflow::pg {

// The bytes of a detoasted text (PG_GETARG_TEXT_PP, an array element, an SPI
// value); valid as long as the text is. No copy, no PostgreSQL call.
inline std::string_view text_view(const text* t) {
  return {VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t)};
}
inline std::string_view text_view(Datum d) {
  return text_view(reinterpret_cast<const text*>(DatumGetPointer(d)));
}

// The text argument `n`, detoasted (nullptr when SQL NULL).
inline text* text_arg_or_null(FunctionCallInfo fcinfo, int n) {
  if (PG_ARGISNULL(n)) return nullptr;
  return pg_call([&] { return PG_GETARG_TEXT_PP(n); });
}

// A new text Datum (palloc'd in the current memory context).
inline Datum text_datum(std::string_view s) {
  return pg_call([&] {
    return PointerGetDatum(cstring_to_text_with_len(s.data(), static_cast<int>(s.size())));
  });
}

// Column `col` (1-based) of row `row` of the last execute(); SQL NULL gives
// `if_null`.
inline int32 int_column(uint64 row, int col, int32 if_null = 0) {
  bool isnull = false;
  Datum d = column(row, col, &isnull);
  return isnull ? if_null : DatumGetInt32(d);
}

inline bool bool_column(uint64 row, int col, bool if_null = false) {
  bool isnull = false;
  Datum d = column(row, col, &isnull);
  return isnull ? if_null : DatumGetBool(d);
}

// A text column as a std::string (SQL NULL -> "" and *isnull = true).
inline std::string text_column(uint64 row, int col, bool* isnull = nullptr) {
  bool null = false;
  Datum d = column(row, col, &null);  // one pg_call ...
  if (isnull) *isnull = null;
  if (null) return {};
  text* t = pg_call([&] { return DatumGetTextPP(d); });  // ... then another, not nested
  return std::string(text_view(t));
}

}  // namespace workflow::pg
