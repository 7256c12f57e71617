// Survey step names: the pure spelling rules, no PostgreSQL headers.
//
// step_name_key() folds any accepted spelling ("Workload Today",
// "workloadToday", " WORKLOAD-today ") into one snake_case key
// ("workload_today"). Whether the key names a known step (the registry) or a
// legacy alias is decided by the extension against its tables.
#pragma once

#include <string>
#include <string_view>

namespace workflow::core::survey {

// Longest raw step name accepted, in bytes.
inline constexpr std::size_t kMaxStepNameBytes = 200;

// Trims ASCII whitespace, folds case, and turns spaces, hyphens, dots and
// camelCase boundaries into single underscores. The result matches
// ^[a-z0-9]+(_[a-z0-9]+)*$. Throws core::error (22023) naming the value when
// it is empty, too long or contains a character other than ASCII letters,
// digits, whitespace, '_', '-' or '.'.
std::string step_name_key(std::string_view raw);

// True when `key` is already in the form step_name_key() produces.
bool is_step_name_key(std::string_view key) noexcept;

// The value quoted for an error message: at most 64 bytes (cut on a UTF-8
// character boundary, "..." appended) with control bytes and bytes that are
// not well-formed UTF-8 shown as \xNN, so the result is always valid UTF-8.
std::string quote_for_message(std::string_view value);

}  // namespace workflow::core::survey
