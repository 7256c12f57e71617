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
