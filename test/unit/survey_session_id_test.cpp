// Pure session-id parsing (src/core/survey_session_id.*).
#include "core/survey_session_id.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/error.hpp"

namespace survey = workflow::core::survey;

TEST(SurveySessionId, ParsesKindAndNormalisedId) {
  struct Case { std::string raw, kind, id; };
  const std::vector<Case> cases = {
      {"C024BE91L", "channel", "C024BE91L"},
      {"G0123ABCD", "group", "G0123ABCD"},
      {"D0ABCDEFGH", "direct", "D0ABCDEFGH"},
      {"  c024be91l\n", "channel", "C024BE91L"},
      {"C12345678901234567890", "channel", "C12345678901234567890"},
  };
  for (const auto& c : cases) {
    auto parsed = survey::parse_session_id(c.raw);
    EXPECT_EQ(parsed.kind, c.kind) << c.raw;
    EXPECT_EQ(parsed.id, c.id) << c.raw;
    EXPECT_TRUE(survey::is_valid_session_id(c.raw)) << c.raw;
  }
}

TEST(SurveySessionId, RejectsWithInvalidParameterValue) {
  const std::vector<std::string> rejects = {
      "", "   ", "C1234567", "C123456789012345678901", "X024BE91L", "U024BE91L",
      "C024BE91-", "C024 BE91L", "C024BE91L'", "C024BÉ91L", "1C024BE91", std::string("C024\0BE91L", 10),
  };
  for (const auto& raw : rejects) {
    EXPECT_FALSE(survey::is_valid_session_id(raw)) << raw;
    try {
      survey::parse_session_id(raw);
      ADD_FAILURE() << "accepted: " << raw;
    } catch (const workflow::core::error& e) {
      EXPECT_STREQ(e.sqlstate(), "22023");
      EXPECT_EQ(std::string(e.what()).rfind("invalid session id \"", 0), 0u) << e.what();
    }
  }
}

TEST(SurveySessionId, MessageExplainsTheRule) {
  try {
    survey::parse_session_id("X024BE91L");
    FAIL();
  } catch (const workflow::core::error& e) {
    EXPECT_EQ(std::string(e.what()),
              "invalid session id \"X024BE91L\": it must start with C (channel), G (group) or D "
              "(direct message)");
  }
}

TEST(SurveySessionId, KindNames) {
  EXPECT_STREQ(survey::session_kind_name('C'), "channel");
  EXPECT_STREQ(survey::session_kind_name('G'), "group");
  EXPECT_STREQ(survey::session_kind_name('D'), "direct");
  EXPECT_EQ(survey::session_kind_name('U'), nullptr);
}
