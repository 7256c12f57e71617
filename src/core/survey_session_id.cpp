// Survey session ids (see survey_session_id.hpp).
#include "core/survey_session_id.hpp"

#include "core/error.hpp"
#include "core/survey_step_name.hpp"

namespace workflow::core::survey {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

// Empty string when valid, otherwise why not; `id` receives the normalised form.
std::string check(std::string_view raw, std::string& id) {
  std::string_view s = raw;
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  if (s.empty()) return "it is empty";
  if (s.size() < kMinSessionIdLength || s.size() > kMaxSessionIdLength)
    return "it has " + std::to_string(s.size()) + " characters, " +
           std::to_string(kMinSessionIdLength) + " to " + std::to_string(kMaxSessionIdLength) +
           " are accepted";
  id.assign(s.data(), s.size());
  for (std::size_t i = 0; i < id.size(); ++i) {
    char& c = id[i];
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    bool ok = (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!ok) return "character at position " + std::to_string(i + 1) + " is not a letter or digit";
  }
  if (session_kind_name(id[0]) == nullptr)
    return "it must start with C (channel), G (group) or D (direct message)";
  return {};
}

}  // namespace

const char* session_kind_name(char kind_letter) noexcept {
  switch (kind_letter) {
    case 'C': return "channel";
    case 'G': return "group";
    case 'D': return "direct";
    default: return nullptr;
  }
}

SessionId parse_session_id(std::string_view raw) {
  SessionId out;
  std::string why = check(raw, out.id);
  if (!why.empty())
    throw error(sqlstate::invalid_parameter_value,
                "invalid session id " + quote_for_message(raw) + ": " + why, {},
                "A session id is a chat channel id such as \"C024BE91L\".");
  out.kind = session_kind_name(out.id[0]);
  return out;
}

bool is_valid_session_id(std::string_view raw) noexcept {
  try {
    std::string id;
    return check(raw, id).empty();
  } catch (...) {
    return false;  // std::bad_alloc only
  }
}

}  // namespace workflow::core::survey
