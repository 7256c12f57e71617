#include "core/survey_zone_links.hpp"

#include <array>
#include <utility>

namespace workflow::core::survey {
namespace {

constexpr std::array<std::pair<std::string_view, std::string_view>, 11> kLinks{{
    {"CET", "Europe/Brussels"},
    {"CST6CDT", "America/Chicago"},
    {"EET", "Europe/Athens"},
    {"EST", "America/Panama"},
    {"EST5EDT", "America/New_York"},
    {"HST", "Pacific/Honolulu"},
    {"MET", "Europe/Brussels"},
    {"MST", "America/Phoenix"},
    {"MST7MDT", "America/Denver"},
    {"PST8PDT", "America/Los_Angeles"},
    {"WET", "Europe/Lisbon"},
}};

bool equal_ignoring_ascii_case(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'a' && x <= 'z') x = static_cast<char>(x - 'a' + 'A');
    if (y >= 'a' && y <= 'z') y = static_cast<char>(y - 'a' + 'A');
    if (x != y) return false;
  }
  return true;
}

}  // namespace

std::optional<std::string_view> legacy_zone_link(std::string_view name) noexcept {
  for (const auto& [legacy, target] : kLinks)
    if (equal_ignoring_ascii_case(name, legacy)) return target;
  return std::nullopt;
}

}  // namespace workflow::core::survey
