// Pure step-name spelling rules (src/core/survey_step_name.*).
#include "core/survey_step_name.hpp"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "core/error.hpp"

namespace survey = workflow::core::survey;

TEST(SurveyStepNameKey, FoldsSpellingsIntoSnakeCase) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"workload_today", "workload_today"},
      {"Workload Today", "workload_today"},
      {"workloadToday", "workload_today"},
      {"WorkloadToday", "workload_today"},
      {"WORKLOAD_TODAY", "workload_today"},
      {"  workload-today \t\n", "workload_today"},
      {"workload__today", "workload_today"},
      {"workload - today", "workload_today"},
      {"workload.today", "workload_today"},
      {"_workload_today_", "workload_today"},
      {"dayOffNextWeek", "day_off_next_week"},
      {"DayOFFNextWeek", "day_off_next_week"},
      {"day_off_nextweek", "day_off_nextweek"},
      {"dayOff_nextweek", "day_off_nextweek"},
      {"HTTPServer", "http_server"},
      {"step2Done", "step2_done"},
      {"Q3", "q3"},
      {"x", "x"},
  };
  for (const auto& [raw, key] : cases) {
    EXPECT_EQ(survey::step_name_key(raw), key) << "raw: " << raw;
    EXPECT_TRUE(survey::is_step_name_key(key)) << key;
    EXPECT_EQ(survey::step_name_key(key), key) << "not idempotent: " << key;
  }
}

TEST(SurveyStepNameKey, RejectsWithInvalidParameterValueNamingTheValue) {
  const std::vector<std::string> rejects = {
      "", "   ", "\t\n", "---", "_", "workload'today", "workload\"today", "workload;drop",
      "wörkload", "步骤", "workload/today", std::string("work\0load", 9),
      std::string(survey::kMaxStepNameBytes + 1, 'a'),
  };
  for (const auto& raw : rejects) {
    try {
      survey::step_name_key(raw);
      ADD_FAILURE() << "accepted: " << raw;
    } catch (const workflow::core::error& e) {
      EXPECT_STREQ(e.sqlstate(), "22023");
      EXPECT_NE(std::string(e.what()).find("invalid survey step name \""), std::string::npos)
          << e.what();
    }
  }
}

TEST(SurveyStepNameKey, MessageQuotesTheOffendingCharacter) {
  try {
    survey::step_name_key("work'load");
    FAIL();
  } catch (const workflow::core::error& e) {
    EXPECT_EQ(std::string(e.what()),
              "invalid survey step name \"work'load\": character \"'\" at byte 5 is not accepted");
  }
}

namespace {

// Well-formed UTF-8 (RFC 3629): what a strict client decoder accepts.
bool is_valid_utf8(const std::string& s) {
  std::size_t i = 0;
  while (i < s.size()) {
    auto b = static_cast<unsigned char>(s[i]);
    std::size_t n = b < 0x80 ? 1 : b >= 0xC2 && b <= 0xDF ? 2 : b >= 0xE0 && b <= 0xEF ? 3 : b >= 0xF0 && b <= 0xF4 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    char32_t cp = n == 1 ? b : b & (0x7F >> n);
    for (std::size_t k = 1; k < n; ++k) {
      auto c = static_cast<unsigned char>(s[i + k]);
      if ((c & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (c & 0x3F);
    }
    const char32_t min_for_length[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_for_length[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n;
  }
  return true;
}

std::string step_name_error(const std::string& raw) {
  try {
    survey::step_name_key(raw);
  } catch (const workflow::core::error& e) {
    EXPECT_STREQ(e.sqlstate(), "22023");
    return e.what();
  }
  ADD_FAILURE() << "accepted: " << raw;
  return {};
}

}  // namespace

// A non-ASCII character is named whole, never as its first byte alone.
TEST(SurveyStepNameKey, MessageNamesAWholeMultiByteCharacter) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"a\xC3\xA9",  // "aé", 2 bytes
       "invalid survey step name \"a\xC3\xA9\": character \"\xC3\xA9\" at byte 2 is not accepted"},
      {"\xE6\x97\xA5\xE6\x9C\xAC",  // "日本", 3 bytes each
       "invalid survey step name \"\xE6\x97\xA5\xE6\x9C\xAC\": character \"\xE6\x97\xA5\" at byte 1 is not "
       "accepted"},
      {"ok\xF0\x9F\x98\x80",  // "ok😀", 4 bytes
       "invalid survey step name \"ok\xF0\x9F\x98\x80\": character \"\xF0\x9F\x98\x80\" at byte 3 is not "
       "accepted"},
  };
  for (const auto& [raw, expected] : cases) {
    std::string msg = step_name_error(raw);
    EXPECT_TRUE(is_valid_utf8(msg)) << msg;
    EXPECT_EQ(msg, expected);
  }
}

// Bytes that are not well-formed UTF-8 are shown escaped, in ASCII.
TEST(SurveyStepNameKey, MessageEscapesBytesThatAreNotUtf8) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"a\xC3",  // truncated 2-byte sequence
       "invalid survey step name \"a\\xc3\": invalid UTF-8 byte \"\\xc3\" at byte 2 is not accepted"},
      {"\xFF", "invalid survey step name \"\\xff\": invalid UTF-8 byte \"\\xff\" at byte 1 is not accepted"},
      {"a\xC3z",  // lead byte followed by ASCII
       "invalid survey step name \"a\\xc3z\": invalid UTF-8 byte \"\\xc3\" at byte 2 is not accepted"},
      {"a\xC0\xAF",  // overlong '/'
       "invalid survey step name \"a\\xc0\\xaf\": invalid UTF-8 byte \"\\xc0\" at byte 2 is not accepted"},
      {"a\xED\xA0\x80",  // UTF-16 surrogate U+D800
       "invalid survey step name \"a\\xed\\xa0\\x80\": invalid UTF-8 byte \"\\xed\" at byte 2 is not accepted"},
      {"a\xA9",  // lone continuation byte
       "invalid survey step name \"a\\xa9\": invalid UTF-8 byte \"\\xa9\" at byte 2 is not accepted"},
  };
  for (const auto& [raw, expected] : cases) {
    std::string msg = step_name_error(raw);
    EXPECT_TRUE(is_valid_utf8(msg)) << msg;
    EXPECT_EQ(msg, expected);
  }
}

TEST(SurveyStepNameKey, AcceptsTheLongestAllowedName) {
  std::string raw(survey::kMaxStepNameBytes, 'a');
  EXPECT_EQ(survey::step_name_key(raw), raw);
}

TEST(SurveyStepNameKey, RecognisesKeys) {
  EXPECT_TRUE(survey::is_step_name_key("a1_b2"));
  EXPECT_FALSE(survey::is_step_name_key(""));
  EXPECT_FALSE(survey::is_step_name_key("_a"));
  EXPECT_FALSE(survey::is_step_name_key("a_"));
  EXPECT_FALSE(survey::is_step_name_key("a__b"));
  EXPECT_FALSE(survey::is_step_name_key("A"));
  EXPECT_FALSE(survey::is_step_name_key("a-b"));
}

TEST(SurveyQuoteForMessage, TruncatesOnCharacterBoundaryAndEscapesControls) {
  EXPECT_EQ(survey::quote_for_message("a\tb"), "\"a\\x09b\"");
  std::string long_ascii(100, 'x');
  EXPECT_EQ(survey::quote_for_message(long_ascii), "\"" + std::string(64, 'x') + "...\"");
  // 63 ASCII bytes then a 3-byte character straddling the 64-byte cut.
  std::string straddle = std::string(63, 'y') + "\xe6\xad\xa5" + "zzz";
  EXPECT_EQ(survey::quote_for_message(straddle), "\"" + std::string(63, 'y') + "...\"");
  // A stray lead byte at the cut is escaped, not copied.
  std::string stray = std::string(63, 'y') + "\xC3" + "zzz";
  EXPECT_EQ(survey::quote_for_message(stray), "\"" + std::string(63, 'y') + "\\xc3...\"");
  EXPECT_EQ(survey::quote_for_message("\xE6\x97\xA5\xE6\x97"), "\"\xE6\x97\xA5\\xe6\\x97\"");
}

// Found by the fuzzer: camelCase splitting grows the key, so an input within
// the limit could fold to a key that was itself rejected.
TEST(SurveyStepNameKey, KeyNeverExceedsTheLimitSoFoldingIsIdempotent) {
  std::string raw;
  while (raw.size() + 2 <= survey::kMaxStepNameBytes) raw += "aB";
  EXPECT_THROW(survey::step_name_key(raw), workflow::core::error);
  std::string fits;
  while (fits.size() + 2 <= survey::kMaxStepNameBytes * 2 / 3) fits += "aB";
  std::string key = survey::step_name_key(fits);
  EXPECT_LE(key.size(), survey::kMaxStepNameBytes);
  EXPECT_EQ(survey::step_name_key(key), key);
}
