// Survey step names: the pure spelling rules (see survey_step_name.hpp).
#include "core/survey_step_name.hpp"

#include "core/error.hpp"

namespace workflow::core::survey {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
bool is_upper(char c) { return c >= 'A' && c <= 'Z'; }
bool is_lower(char c) { return c >= 'a' && c <= 'z'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_separator(char c) { return is_space(c) || c == '_' || c == '-' || c == '.'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

[[noreturn]] void reject(std::string_view raw, const std::string& why) {
  throw error(sqlstate::invalid_parameter_value,
              "invalid survey step name " + quote_for_message(raw) + ": " + why,
              {}, "Use letters, digits, spaces, '_' or '-', e.g. \"workload_today\" or \"Workload Today\".");
}

// A camelCase word boundary falls before an upper-case letter that follows a
// lower-case letter or digit ("workloadToday"), or that starts a new word
// after an upper-case run ("HTTPServer" -> "http_server").
bool starts_word(std::string_view s, std::size_t i) {
  if (i == 0 || !is_upper(s[i])) return false;
  char prev = s[i - 1];
  if (is_lower(prev) || is_digit(prev)) return true;
  return is_upper(prev) && i + 1 < s.size() && is_lower(s[i + 1]);
}

// Length of the well-formed UTF-8 sequence starting at s[i] (RFC 3629: no
// overlong forms, surrogates or code points past U+10FFFF), or 0 when the
// bytes there are not one.
std::size_t utf8_sequence_length(std::string_view s, std::size_t i) {
  auto at = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char b = at(i);
  if (b < 0x80) return 1;
  std::size_t n = b >= 0xC2 && b <= 0xDF ? 2 : b >= 0xE0 && b <= 0xEF ? 3 : b >= 0xF0 && b <= 0xF4 ? 4 : 0;
  if (n == 0 || i + n > s.size()) return 0;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (b == 0xE0) lo = 0xA0;
  if (b == 0xED) hi = 0x9F;
  if (b == 0xF0) lo = 0x90;
  if (b == 0xF4) hi = 0x8F;
  if (at(i + 1) < lo || at(i + 1) > hi) return 0;
  for (std::size_t k = 2; k < n; ++k)
    if ((at(i + k) & 0xC0) != 0x80) return 0;
  return n;
}

}  // namespace

std::string step_name_key(std::string_view raw) {
  std::string_view s = trim(raw);
  if (s.empty()) reject(raw, "it is empty");
  if (raw.size() > kMaxStepNameBytes)
    reject(raw, "it is " + std::to_string(raw.size()) + " bytes long, at most " +
                    std::to_string(kMaxStepNameBytes) + " are accepted");

  std::string key;
  key.reserve(s.size() + 4);
  auto separate = [&key] {
    if (!key.empty() && key.back() != '_') key.push_back('_');
  };
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (is_separator(c)) {
      separate();
    } else if (is_upper(c)) {
      if (starts_word(s, i)) separate();
      key.push_back(static_cast<char>(c - 'A' + 'a'));
    } else if (is_lower(c) || is_digit(c)) {
      key.push_back(c);
    } else {
      // The whole character, or the one byte (escaped) when it is not UTF-8.
      std::size_t n = utf8_sequence_length(s, i);
      reject(raw, (n ? "character " : "invalid UTF-8 byte ") + quote_for_message(s.substr(i, n ? n : 1)) +
                      " at byte " + std::to_string(i + 1) + " is not accepted");
    }
  }
  if (!key.empty() && key.back() == '_') key.pop_back();
  if (key.empty()) reject(raw, "it has no letters or digits");
  // camelCase boundaries add underscores; bounding the key keeps folding
  // idempotent (a key is always accepted as input).
  if (key.size() > kMaxStepNameBytes)
    reject(raw, "its snake_case form is " + std::to_string(key.size()) + " bytes long, at most " +
                    std::to_string(kMaxStepNameBytes) + " are accepted");
  return key;
}

bool is_step_name_key(std::string_view key) noexcept {
  if (key.empty() || key.front() == '_' || key.back() == '_') return false;
  char prev = 0;
  for (char c : key) {
    if (c == '_') {
      if (prev == '_') return false;
    } else if (!is_lower(c) && !is_digit(c)) {
      return false;
    }
    prev = c;
  }
  return true;
}

std::string quote_for_message(std::string_view value) {
  constexpr std::size_t kMaxShown = 64;
  static const char* hex = "0123456789abcdef";
  std::string out = "\"";
  std::size_t i = 0;
  while (i < value.size()) {
    // Whole UTF-8 characters are copied; control bytes and bytes that are not
    // part of a well-formed sequence are shown as \xNN, so the result is
    // always valid UTF-8 and no character is split.
    std::size_t n = utf8_sequence_length(value, i);
    if (i + (n ? n : 1) > kMaxShown) break;
    auto u = static_cast<unsigned char>(value[i]);
    if (n == 0 || u < 0x20 || u == 0x7f) {
      out += "\\x";
      out.push_back(hex[u >> 4]);
      out.push_back(hex[u & 15]);
      n = 1;
    } else {
      out.append(value.substr(i, n));
    }
    i += n;
  }
  out += i < value.size() ? "...\"" : "\"";
  return out;
}

}  // namespace workflow::core::survey
