// Errors raised by pure C++ code. They carry a five-character SQLSTATE so the
// boundary (src/pg/boundary.hpp) can report them with the right errcode
// without src/core ever including a PostgreSQL header.
#pragma once

#include <stdexcept>
#include <string>

namespace workflow::core {

class error : public std::runtime_error {
 public:
  error(const char* sqlstate, const std::string& message, std::string detail = {},
        std::string hint = {})
      : std::runtime_error(message),
        detail_(std::move(detail)),
        hint_(std::move(hint)) {
    for (int i = 0; i < 5; ++i) sqlstate_[i] = sqlstate[i];
    sqlstate_[5] = '\0';
  }
  const char* sqlstate() const noexcept { return sqlstate_; }
  const std::string& detail() const noexcept { return detail_; }
  const std::string& hint() const noexcept { return hint_; }

 private:
  char sqlstate_[6];
  std::string detail_;
  std::string hint_;
};

// The SQLSTATEs the project raises, named as in PostgreSQL's errcodes.txt.
namespace sqlstate {
inline constexpr const char* invalid_parameter_value = "22023";
inline constexpr const char* null_value_not_allowed = "22004";
inline constexpr const char* no_data_found = "P0002";
inline constexpr const char* object_not_in_prerequisite_state = "55000";
inline constexpr const char* invalid_text_representation = "22P02";
inline constexpr const char* program_limit_exceeded = "54000";
inline constexpr const char* serialization_failure = "40001";
inline constexpr const char* internal_error = "XX000";
}  // namespace sqlstate

}  // namespace workflow::core
