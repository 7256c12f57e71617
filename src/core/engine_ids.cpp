#include "core/engine_ids.hpp"

#include <cstdio>

#include "core/error.hpp"

namespace workflow::core {
namespace {

// The value for an error message: quoted, at most 60 bytes.
std::string shown(std::string_view value) {
  constexpr std::size_t kShown = 60;
  if (value.size() <= kShown) return sql_quote(value);
  return sql_quote(value.substr(0, kShown)) + "...";
}

}  // namespace

void check_required_text(std::string_view arg_name, bool is_null, std::string_view value,
                         std::size_t max_len) {
  const std::string name(arg_name);
  if (is_null) throw error(sqlstate::null_value_not_allowed, name + " must not be NULL");
  if (value.empty()) throw error(sqlstate::invalid_parameter_value, name + " must not be empty");
  if (value.size() > max_len)
    throw error(sqlstate::invalid_parameter_value,
                name + " is too long (" + std::to_string(value.size()) + " bytes, at most " +
                    std::to_string(max_len) + "): " + shown(value));
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
