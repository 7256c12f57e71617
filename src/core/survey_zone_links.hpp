// The legacy time zone names that tzdata 2024b turned into links, and the
// geographic zone each now names (tzdata's `backward` file). Whether a system
// has them as zones depends on its packaging (Debian trixie ships them only
// in tzdata-legacy), so a survey session's week must not: a name found here
// is read as its link target everywhere (survey_week_start), and
// set_session_timezone stores the target.
#pragma once

#include <optional>
#include <string_view>

namespace workflow::core::survey {

// The target of a legacy zone name (ASCII case-insensitive, exact otherwise),
// e.g. "cet" -> "Europe/Brussels"; nullopt for any other name.
std::optional<std::string_view> legacy_zone_link(std::string_view name) noexcept;

}  // namespace workflow::core::survey
