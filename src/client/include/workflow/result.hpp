// A query result (owns the PGresult). Values are read as text; typed getters
// parse and throw usage_error on NULL where a value is required.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

struct pg_result;

namespace workflow::client {

class Result {
 public:
  Result() = default;
  explicit Result(pg_result* res);

  int rows() const noexcept;
  int columns() const noexcept;
  int column(std::string_view name) const;  // index; usage_error when absent
  long affected() const;                    // rows changed by INSERT/UPDATE/DELETE

  bool is_null(int row, int col) const;
  std::string_view text(int row, int col) const;  // "" for NULL
  std::optional<std::string> optional_text(int row, int col) const;
  std::string string(int row, int col) const;
  std::int64_t int64(int row, int col) const;
  int int32(int row, int col) const { return static_cast<int>(int64(row, col)); }
  double float64(int row, int col) const;
  bool boolean(int row, int col) const;

  pg_result* raw() const noexcept { return res_.get(); }

 private:
  void require_value(int row, int col) const;
  struct Deleter { void operator()(pg_result* r) const noexcept; };
  std::shared_ptr<pg_result> res_;
};

}  // namespace workflow::client
