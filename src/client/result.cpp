#include "workflow/result.hpp"

#include <libpq-fe.h>

#include <cstdlib>
#include <string>

#include "workflow/error.hpp"

namespace workflow::client {

void Result::Deleter::operator()(pg_result* r) const noexcept { PQclear(r); }

Result::Result(pg_result* res) : res_(res, Deleter{}) {}

int Result::rows() const noexcept { return res_ ? PQntuples(res_.get()) : 0; }
int Result::columns() const noexcept { return res_ ? PQnfields(res_.get()) : 0; }

int Result::column(std::string_view name) const {
  const std::string n(name);
  const int idx = res_ ? PQfnumber(res_.get(), n.c_str()) : -1;
  if (idx < 0) throw usage_error("result has no column \"" + n + "\"");
  return idx;
}

long Result::affected() const {
  const char* s = res_ ? PQcmdTuples(res_.get()) : "";
  return (s && *s) ? std::strtol(s, nullptr, 10) : 0;
}

bool Result::is_null(int row, int col) const {
  if (row < 0 || row >= rows() || col < 0 || col >= columns())
    throw usage_error("result cell (" + std::to_string(row) + "," + std::to_string(col) +
                      ") out of range");
  return PQgetisnull(res_.get(), row, col) != 0;
}

std::string_view Result::text(int row, int col) const {
  if (is_null(row, col)) return {};
  return {PQgetvalue(res_.get(), row, col),
          static_cast<std::size_t>(PQgetlength(res_.get(), row, col))};
}

std::optional<std::string> Result::optional_text(int row, int col) const {
  if (is_null(row, col)) return std::nullopt;
  return std::string(text(row, col));
}

void Result::require_value(int row, int col) const {
  if (is_null(row, col))
    throw usage_error(std::string("unexpected NULL in column \"") +
                      PQfname(res_.get(), col) + "\"");
}

std::string Result::string(int row, int col) const {
  require_value(row, col);
  return std::string(text(row, col));
}

std::int64_t Result::int64(int row, int col) const {
  require_value(row, col);
  return std::strtoll(PQgetvalue(res_.get(), row, col), nullptr, 10);
}

double Result::float64(int row, int col) const {
  require_value(row, col);
  return std::strtod(PQgetvalue(res_.get(), row, col), nullptr);
}

bool Result::boolean(int row, int col) const {
  require_value(row, col);
  return PQgetvalue(res_.get(), row, col)[0] == 't';
}

}  // namespace workflow::client
