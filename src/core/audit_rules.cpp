// Pure rules of the audit feature (see audit_rules.hpp).
#include "core/audit_rules.hpp"

#include <string>

#include "core/error.hpp"

namespace workflow::core::audit {

std::string_view operation_name(Operation op) noexcept {
  switch (op) {
    case Operation::insert: return "INSERT";
    case Operation::update: return "UPDATE";
    case Operation::remove: return "DELETE";
    case Operation::truncate: return "TRUNCATE";
  }
  return "UNKNOWN";
}

UpdatedAtOptions parse_updated_at_args(int nargs, const char* const* args) {
  UpdatedAtOptions options;
  if (nargs > 2)
    throw error(sqlstate::invalid_parameter_value,
                "workflow.set_updated_at takes at most 2 arguments, got " + std::to_string(nargs),
                {}, "Use set_updated_at('column') or set_updated_at('column', 'skip_noop').");
  if (nargs >= 1) {
    std::string_view column = args[0] ? std::string_view(args[0]) : std::string_view();
    if (column.empty())
      throw error(sqlstate::invalid_parameter_value,
                  "workflow.set_updated_at: column name must not be empty");
    if (column.size() > kMaxIdentifierBytes)
      throw error(sqlstate::invalid_parameter_value,
                  "workflow.set_updated_at: column name \"" + std::string(column.substr(0, 20)) +
                      "...\" is longer than 63 bytes");
    options.column = column;
  }
  if (nargs == 2) {
    std::string_view option = args[1] ? std::string_view(args[1]) : std::string_view();
    if (option == "skip_noop")
      options.skip_noop = true;
    else if (option != "always")
      throw error(sqlstate::invalid_parameter_value,
                  "workflow.set_updated_at: unknown option \"" + std::string(option) + "\"", {},
                  "The second argument is 'skip_noop' or 'always'.");
  }
  return options;
}

}  // namespace workflow::core::audit
