// Survey session ids: chat channel ids, parsed without PostgreSQL headers.
//
// A session id is a kind letter - C (channel), G (group / private channel) or
// D (direct message) - followed by upper-case letters and digits, 9 to 21
// characters in all (Slack-style "C024BE91L"). Surrounding ASCII whitespace is
// trimmed and ASCII letters are folded to upper case before validation.
#pragma once

#include <string>
#include <string_view>

namespace workflow::core::survey {

inline constexpr std::size_t kMinSessionIdLength = 9;
inline constexpr std::size_t kMaxSessionIdLength = 21;

struct SessionId {
  std::string kind;  // "channel", "group" or "direct"
  std::string id;    // normalised: trimmed, upper case
};

// Throws core::error (22023) naming the value when it is not a session id.
SessionId parse_session_id(std::string_view raw);

bool is_valid_session_id(std::string_view raw) noexcept;

// "channel", "group", "direct" for 'C', 'G', 'D'; nullptr otherwise.
const char* session_kind_name(char kind_letter) noexcept;

}  // namespace workflow::core::survey
