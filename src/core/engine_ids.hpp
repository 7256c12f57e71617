// Pure rules of the job -> stage -> task engine shared by the SQL-callable
// functions: argument checks, task ids, counter slots, NOTIFY payloads.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace workflow::core {

// Characters (UTF-8 code points, the server encoding) in `value`, counted
// the way SQL's length() counts them: every byte that does not continue a
// sequence (10xxxxxx) starts a character.
std::size_t utf8_length(std::string_view value) noexcept;

// Throws core::error: 22004 when is_null, 22023 when empty, only spaces, with an ASCII
// control character, or longer than max_chars characters (utf8_length, as
// the SQL checks count). The message
// names the argument and the bad value (cut short on a character boundary).
void check_required_text(std::string_view arg_name, bool is_null, std::string_view value,
                         std::size_t max_chars);

// job_id || ':' || stage || ':' || task_index
std::string task_id(std::string_view job_id, int stage, int task_index);

// The stage counter slot a task belongs to (slot_count >= 1, index >= 0).
int task_slot(int task_index, int slot_count) noexcept;

// `value` as a JSON string literal (quotes, backslashes, control characters
// escaped; UTF-8 passed through).
std::string json_quote(std::string_view value);

// `value` as an SQL string literal for messages: 'it''s' (quote_literal).
std::string sql_quote(std::string_view value);

// {"job_id": "...", "stage": N}  (channel workflow_stage_complete)
std::string stage_complete_payload(std::string_view job_id, int stage);

// {"job_id": "...", "status": "..."}  (channel workflow_job_complete)
std::string job_complete_payload(std::string_view job_id, std::string_view status);

}  // namespace workflow::core
