#include "core/engine_ids.hpp"

#include <cstdio>

#include "core/error.hpp"

namespace workflow::core {
namespace {

bool continues(char c) noexcept { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

// The value for an error message: quoted, at most 60 characters (never cut
// inside a character, so the message stays valid UTF-8).
std::string shown(std::string_view value) {
  constexpr std::size_t kShown = 60;
  std::size_t chars = 0, end = 0;
  for (; end < value.size(); ++end) {
    if (!continues(value[end]) && chars++ == kShown) break;
  }
  if (end == value.size()) return sql_quote(value);
  return sql_quote(value.substr(0, end)) + "...";
}

}  // namespace

std::size_t utf8_length(std::string_view value) noexcept {
  std::size_t n = 0;
  for (char c : value) n += continues(c) ? 0 : 1;
  return n;
}

void check_required_text(std::string_view arg_name, bool is_null, std::string_view value,
                         std::size_t max_chars) {
  const std::string name(arg_name);
  if (is_null) throw error(sqlstate::null_value_not_allowed, name + " must not be NULL");
  if (value.empty()) throw error(sqlstate::invalid_parameter_value, name + " must not be empty");
  if (value.find_first_not_of(' ') == std::string_view::npos)
    throw error(sqlstate::invalid_parameter_value, name + " must not be only spaces");
  // As the SQL functions' check ([[:cntrl:]] in the C locale): ASCII controls.
  for (char c : value) {
    const auto b = static_cast<unsigned char>(c);
    if (b < 0x20 || b == 0x7F)
      throw error(sqlstate::invalid_parameter_value, name + " must not contain control characters");
  }
  if (value.size() <= max_chars) return;  // fewer bytes than the limit: fewer characters too
  const std::size_t chars = utf8_length(value);
  if (chars > max_chars)
    throw error(sqlstate::invalid_parameter_value,
                name + " is too long (" + std::to_string(chars) + " characters, at most " +
                    std::to_string(max_chars) + "): " + shown(value));
}

std::string task_id(std::string_view job_id, int stage, int task_index) {
  std::string id(job_id);
  id += ':';
  id += std::to_string(stage);
  id += ':';
  id += std::to_string(task_index);
  return id;
}

int task_slot(int task_index, int slot_count) noexcept {
  return slot_count > 0 && task_index >= 0 ? task_index % slot_count : 0;
}

std::string json_quote(std::string_view value) {
  std::string out;
  out.reserve(value.size() + 2);
  out += '"';
  for (char c : value) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
          out += buf;
        } else {
          out += c;
        }
    }
  }
  out += '"';
  return out;
}

std::string sql_quote(std::string_view value) {
  std::string out = "'";
  for (char c : value) {
    if (c == '\'') out += '\'';
    out += c;
  }
  out += '\'';
  return out;
}

std::string stage_complete_payload(std::string_view job_id, int stage) {
  return "{\"job_id\": " + json_quote(job_id) + ", \"stage\": " + std::to_string(stage) + "}";
}

std::string job_complete_payload(std::string_view job_id, std::string_view status) {
  return "{\"job_id\": " + json_quote(job_id) + ", \"status\": " + json_quote(status) + "}";
}

}  // namespace workflow::core
