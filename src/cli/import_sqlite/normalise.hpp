// import-sqlite: the canonical form of a value on both sides of a copy, and
// the order-independent checksum of a table built from it. Pure C++: the
// SQLite reader (sqlite_source) and the PostgreSQL reader (pg_target) each
// turn a column into text with the kind's reading expression, then both go
// through canonical() so that equal data gives equal checksums whatever the
// row order and whatever the type change (0/1 -> boolean, REAL -> float8,
// text timestamps -> timestamptz, BLOB -> bytea).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace workflow::import {

// How a column's values are compared, decided by its PostgreSQL type.
enum class ValueKind {
  text,       // bytes as they are
  integer,    // decimal digits
  floating,   // a double, shortest form that round-trips (%.17g); -0 is 0
  numeric,    // a decimal, trailing zeros dropped (93.50 = 93.5)
  boolean,    // t / f (SQLite 0/1, 't'/'f', 'true'/'false')
  timestamp,  // milliseconds since 1970-01-01 UTC (both sides compute it in SQL)
  bytes,      // lower-case hex (both sides compute it in SQL)
};

// The kind for a PostgreSQL type as format_type() prints it.
ValueKind kind_for_pg_type(std::string_view pg_type);
const char* kind_name(ValueKind kind);

// The canonical text of one value (nullopt = NULL). A value the kind cannot
// read (e.g. 'maybe' as a boolean) is kept as "?" + raw, so it still differs.
std::optional<std::string> canonical(ValueKind kind, std::optional<std::string_view> raw);

// Sum (mod 2^64) of a 64-bit hash of each row's canonical values: the same
// for the same multiset of rows in any order; a changed, lost or duplicated
// row changes it.
class TableChecksum {
 public:
  void add_row(const std::vector<std::optional<std::string>>& canonical_values);
  std::uint64_t value() const noexcept { return sum_; }
  long rows() const noexcept { return rows_; }
  std::string hex() const;

 private:
  std::uint64_t sum_ = 0;
  long rows_ = 0;
};

}  // namespace workflow::import
