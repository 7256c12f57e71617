// A bar chart of completions per second as inline SVG (no script, no library).
#pragma once

#include <nlohmann/json.hpp>

#include <string>

namespace workflow::serve {

// points: [{"second": epoch seconds, "completions": n}, ...] of the last
// `seconds` seconds up to `now` (epoch seconds); missing seconds are zero.
std::string completions_chart(const nlohmann::json& points, long now, int seconds);

}  // namespace workflow::serve
