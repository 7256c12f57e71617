// Resolving a step-name spelling against the registry and alias tables.
#pragma once

#include <string>
#include <string_view>
#include <unordered_map>

namespace workflow::survey_ext {

// Folds `raw` with core::survey::step_name_key, then looks the key up in
// workflow.survey_step_names (a registry name wins) and then in
// workflow.survey_step_aliases. Unknown -> core::error 22023 naming the value
// and the accepted names. Must run inside an SpiScope.
std::string resolve_step_name(std::string_view raw);

// resolve_step_name with a per-call memo: a batch looks each spelling up once.
class StepNameCache {
 public:
  const std::string& resolve(std::string_view raw);

 private:
  std::unordered_map<std::string, std::string> by_raw_;
};

}  // namespace workflow::survey_ext
