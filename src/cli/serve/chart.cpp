// Completions-per-second chart (see chart.hpp).
#include "chart.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <vector>

namespace workflow::serve {

std::string completions_chart(const nlohmann::json& points, long now, int seconds) {
  constexpr int kWidth = 600, kHeight = 120, kPad = 16;
  std::vector<long> per(seconds, 0);
  for (const auto& p : points) {
    const long at = p.at("second").get<long>();
    const long i = seconds - 1 - (now - at);
    if (i >= 0 && i < seconds) per[i] += p.at("completions").get<long>();
  }
  const long peak = std::max<long>(1, *std::max_element(per.begin(), per.end()));
  const double bar = static_cast<double>(kWidth) / seconds;
  std::string out = fmt::format(
      "<svg class=\"chart\" role=\"img\" width=\"{}\" height=\"{}\" viewBox=\"0 0 {} {}\">"
      "<title>completions per second, last {} s (peak {})</title>",
      kWidth, kHeight + kPad, kWidth, kHeight + kPad, seconds, peak);
  for (int i = 0; i < seconds; ++i) {
    if (!per[i]) continue;
    const double h = static_cast<double>(per[i]) * kHeight / peak;
    out += fmt::format("<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\"><title>{}/s</title></rect>",
                       i * bar, kHeight - h, std::max(bar - 1, 1.0), h, per[i]);
  }
  out += fmt::format("<text x=\"2\" y=\"{}\">-{} s</text><text x=\"{}\" y=\"{}\">now · peak {}/s</text></svg>",
                     kHeight + 12, seconds, kWidth - 110, kHeight + 12, peak);
  return out;
}

}  // namespace workflow::serve
