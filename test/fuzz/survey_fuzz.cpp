// libFuzzer target for the pure survey parsing code (src/core/survey_*).
// Invariants checked on every input, besides "no crash, no sanitizer report":
//  - step_name_key either throws core::error 22023 or returns a key that
//    is_step_name_key accepts and that folds to itself (idempotent);
//  - parse_session_id throws core::error 22023 exactly when
//    is_valid_session_id is false, and a parsed id parses to itself.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "core/error.hpp"
#include "core/survey_session_id.hpp"
#include "core/survey_step_name.hpp"

namespace survey = workflow::core::survey;

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

void fuzz_step_name(std::string_view in) {
  std::string key;
  try {
    key = survey::step_name_key(in);
  } catch (const workflow::core::error& e) {
    check(std::strcmp(e.sqlstate(), "22023") == 0);
    return;
  }
  check(survey::is_step_name_key(key));
  check(survey::step_name_key(key) == key);
}

void fuzz_session_id(std::string_view in) {
  bool valid = survey::is_valid_session_id(in);
  try {
    auto parsed = survey::parse_session_id(in);
    check(valid);
    check(survey::session_kind_name(parsed.id[0]) == parsed.kind);
    check(survey::parse_session_id(parsed.id).id == parsed.id);
  } catch (const workflow::core::error& e) {
    check(!valid);
    check(std::strcmp(e.sqlstate(), "22023") == 0);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  fuzz_step_name(in);
  fuzz_session_id(in);
  (void)survey::quote_for_message(in);
  return 0;
}
