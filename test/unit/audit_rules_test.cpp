#include "core/audit_rules.hpp"

#include <gtest/gtest.h>

#include <string>

#include "core/error.hpp"

using namespace workflow::core::audit;

TEST(AuditRules, OperationNames) {
  EXPECT_EQ(operation_name(Operation::insert), "INSERT");
  EXPECT_EQ(operation_name(Operation::update), "UPDATE");
  EXPECT_EQ(operation_name(Operation::remove), "DELETE");
  EXPECT_EQ(operation_name(Operation::truncate), "TRUNCATE");
}

TEST(AuditRules, UpdatedAtDefaults) {
  UpdatedAtOptions o = parse_updated_at_args(0, nullptr);
  EXPECT_EQ(o.column, "updated_at");
  EXPECT_FALSE(o.skip_noop);
}

TEST(AuditRules, UpdatedAtColumnAndOption) {
  const char* one[] = {"modified"};
  EXPECT_EQ(parse_updated_at_args(1, one).column, "modified");
  const char* two[] = {"modified", "skip_noop"};
  UpdatedAtOptions o = parse_updated_at_args(2, two);
  EXPECT_EQ(o.column, "modified");
  EXPECT_TRUE(o.skip_noop);
  const char* always[] = {"m", "always"};
  EXPECT_FALSE(parse_updated_at_args(2, always).skip_noop);
}

TEST(AuditRules, UpdatedAtRejectsBadArguments) {
  const char* empty[] = {""};
  const char* null_arg[] = {nullptr};
  const char* bad_option[] = {"updated_at", "sometimes"};
  const char* three[] = {"a", "skip_noop", "x"};
  std::string huge(64, 'x');
  const char* too_long[] = {huge.c_str()};
  for (auto [n, args] : {std::pair<int, const char* const*>{1, empty}, {1, null_arg},
                         {2, bad_option}, {3, three}, {1, too_long}}) {
    try {
      parse_updated_at_args(n, args);
      ADD_FAILURE() << "accepted bad arguments";
    } catch (const workflow::core::error& e) {
      EXPECT_STREQ(e.sqlstate(), "22023");
    }
  }
  std::string max(63, 'y');
  const char* ok[] = {max.c_str()};
  EXPECT_EQ(parse_updated_at_args(1, ok).column.size(), 63u);
}
