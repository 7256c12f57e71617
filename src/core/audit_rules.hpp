// Pure rules of the audit feature, free of PostgreSQL headers so they are
// unit-tested without a server: trigger argument parsing and the names the
// log stores for each operation.
#pragma once

#include <string_view>

namespace workflow::core::audit {

enum class Operation { insert, update, remove, truncate };

// The text stored in workflow.audit_log.operation.
std::string_view operation_name(Operation op) noexcept;

// Options of the set_updated_at trigger, from CREATE TRIGGER's arguments:
//   EXECUTE FUNCTION workflow.set_updated_at()                  -> updated_at
//   EXECUTE FUNCTION workflow.set_updated_at('modified')        -> modified
//   EXECUTE FUNCTION workflow.set_updated_at('modified', 'skip_noop')
// With skip_noop, an UPDATE that changes no other column keeps the old stamp.
struct UpdatedAtOptions {
  std::string_view column = "updated_at";
  bool skip_noop = false;
};

// Throws core::error (22023) on an empty or too long column name, an unknown
// option or more than two arguments. `args` live as long as the result.
UpdatedAtOptions parse_updated_at_args(int nargs, const char* const* args);

// PostgreSQL truncates identifiers to NAMEDATALEN - 1 bytes.
inline constexpr std::size_t kMaxIdentifierBytes = 63;

}  // namespace workflow::core::audit
