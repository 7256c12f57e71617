#include "core/engine_ids.hpp"

#include <gtest/gtest.h>

#include <string>

#include "core/error.hpp"

using namespace workflow::core;

namespace {
std::string sqlstate_of(bool is_null, std::string_view v, std::size_t max_len) {
  try {
    check_required_text("task_id", is_null, v, max_len);
  } catch (const error& e) {
    return e.sqlstate();
  }
  return "ok";
}
}  // namespace

TEST(EngineIds, RequiredTextRejectsNullEmptyAndHuge) {
  EXPECT_EQ(sqlstate_of(true, "", 10), "22004");
  EXPECT_EQ(sqlstate_of(false, "", 10), "22023");
  EXPECT_EQ(sqlstate_of(false, std::string(11, 'x'), 10), "22023");
  EXPECT_EQ(sqlstate_of(false, std::string(10, 'x'), 10), "ok");
  EXPECT_EQ(sqlstate_of(false, "j'1:\"2\"", 10), "ok");
}

// Only spaces is as empty; spaces around a name are kept, as the SQL check does.
TEST(EngineIds, RequiredTextRejectsOnlySpaces) {
  EXPECT_EQ(sqlstate_of(false, " ", 10), "22023");
  EXPECT_EQ(sqlstate_of(false, "   ", 10), "22023");
  EXPECT_EQ(sqlstate_of(false, " w ", 10), "ok");
  EXPECT_EQ(sqlstate_of(false, " \t", 10), "22023");  // a control character, not blank
}

// Control characters are 22023, as in the SQL functions' checks; UTF-8 is not.
TEST(EngineIds, RequiredTextRejectsControlCharacters) {
  EXPECT_EQ(sqlstate_of(false, std::string("w\x01", 2), 10), "22023");
  EXPECT_EQ(sqlstate_of(false, "w\n1", 10), "22023");
  EXPECT_EQ(sqlstate_of(false, "w\x7f", 10), "22023");
  EXPECT_EQ(sqlstate_of(false, std::string("\0", 1), 10), "22023");
  EXPECT_EQ(sqlstate_of(false, "w\xc3\xa9 1", 10), "ok");
}

TEST(EngineIds, ErrorMessageNamesArgumentAndValue) {
  try {
    check_required_text("job_id", false, std::string(100, 'q'), 50);
    FAIL() << "no error";
  } catch (const error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("job_id"), std::string::npos);
    EXPECT_NE(msg.find("100 characters"), std::string::npos);
    EXPECT_NE(msg.find("qqqq"), std::string::npos);
    EXPECT_LT(msg.size(), 200u);  // the value is cut short
  }
}

// Limits count characters, as SQL's length() does: a job id of 101 'é'
// (202 bytes) is within the 200-character limit create_job applies.
TEST(EngineIds, RequiredTextCountsCharactersNotBytes) {
  std::string e101;
  for (int i = 0; i < 101; ++i) e101 += "\xc3\xa9";  // é
  EXPECT_EQ(utf8_length(e101), 101u);
  EXPECT_EQ(sqlstate_of(false, e101, 200), "ok");
  EXPECT_EQ(sqlstate_of(false, e101, 101), "ok");
  EXPECT_EQ(sqlstate_of(false, e101, 100), "22023");
  EXPECT_EQ(utf8_length(""), 0u);
  EXPECT_EQ(utf8_length("abc"), 3u);
  EXPECT_EQ(utf8_length("\xf0\x9f\x98\x80x"), 2u);  // a 4-byte emoji and an x
  EXPECT_EQ(utf8_length("\xe6\x97\xa5\xe6\x9c\xac"), 2u);  // 日本
}

TEST(EngineIds, TooLongMessageCountsCharactersAndCutsOnABoundary) {
  std::string e300;
  for (int i = 0; i < 300; ++i) e300 += "\xc3\xa9";
  try {
    check_required_text("job_id", false, e300, 200);
    FAIL() << "no error";
  } catch (const error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("300 characters, at most 200"), std::string::npos) << msg;
    // The shown value is 60 whole characters: every é intact.
    std::string shown60;
    for (int i = 0; i < 60; ++i) shown60 += "\xc3\xa9";
    EXPECT_NE(msg.find("'" + shown60 + "'..."), std::string::npos) << msg;
  }
}

TEST(EngineIds, TaskIdAndSlot) {
  EXPECT_EQ(task_id("job-1", 2, 17), "job-1:2:17");
  EXPECT_EQ(task_id("a:b", 1, 0), "a:b:1:0");
  EXPECT_EQ(task_slot(0, 256), 0);
  EXPECT_EQ(task_slot(257, 256), 1);
  EXPECT_EQ(task_slot(5, 1), 0);
}

TEST(EngineIds, JsonPayloadsEscape) {
  EXPECT_EQ(stage_complete_payload("j1", 3), "{\"job_id\": \"j1\", \"stage\": 3}");
  EXPECT_EQ(job_complete_payload("a\"b\\c\n\x01", "failed"),
            "{\"job_id\": \"a\\\"b\\\\c\\n\\u0001\", \"status\": \"failed\"}");
  EXPECT_EQ(json_quote("żółw"), "\"żółw\"");
  EXPECT_EQ(sql_quote("it's"), "'it''s'");
}
