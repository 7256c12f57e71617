// Step-name resolution against the registry (see survey_step_lookup.hpp).
#include "extension/survey_step_lookup.hpp"

#include "core/error.hpp"
#include "core/survey_step_name.hpp"
#include "extension/survey_text.hpp"
#include "pg/datum.hpp"
#include "pg/spi.hpp"

namespace workflow::survey_ext {
namespace {

std::string text_column_or_empty(int col) { return pg::text_column(0, col); }

}  // namespace

std::string resolve_step_name(std::string_view raw) {
  static pg::Statement lookup{
      "SELECT n.name FROM workflow.survey_step_names n WHERE n.name = $1 "
      "UNION ALL SELECT a.step_name FROM workflow.survey_step_aliases a WHERE a.alias = $1 "
      "LIMIT 1",
      {TEXTOID}};
  static pg::Statement accepted{
      "SELECT pg_catalog.string_agg(n.name, ', ' ORDER BY n.name) FROM workflow.survey_step_names n",
      {}};

  std::string key = core::survey::step_name_key(raw);
  Datum arg = text_datum(key);
  if (pg::execute(lookup, &arg, nullptr, /*read_only=*/true, 1) == 1) return text_column_or_empty(1);

  pg::execute(accepted, nullptr, nullptr, /*read_only=*/true, 1);
  std::string names = text_column_or_empty(1);
  throw core::error(core::sqlstate::invalid_parameter_value,
                    "unknown survey step name " + core::survey::quote_for_message(raw) +
                        " (folded to \"" + key + "\"); accepted names: " + names,
                    {}, "Legacy spellings are listed in workflow.survey_step_aliases.");
}

const std::string& StepNameCache::resolve(std::string_view raw) {
  std::string raw_copy(raw);
  auto it = by_raw_.find(raw_copy);
  if (it != by_raw_.end()) return it->second;
  std::string name = resolve_step_name(raw);
  return by_raw_.emplace(std::move(raw_copy), std::move(name)).first->second;
}

}  // namespace workflow::survey_ext
