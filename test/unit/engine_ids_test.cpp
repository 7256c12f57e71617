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

TEST(EngineIds, ErrorMessageNamesArgumentAndValue) {
  try {
    check_required_text("job_id", false, std::string(100, 'q'), 50);
    FAIL() << "no error";
  } catch (const error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("job_id"), std::string::npos);
    EXPECT_NE(msg.find("100 bytes"), std::string::npos);
    EXPECT_NE(msg.find("qqqq"), std::string::npos);
    EXPECT_LT(msg.size(), 200u);  // the value is cut short
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
