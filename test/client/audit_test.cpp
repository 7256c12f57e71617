// Typed audit calls: enable/disable_audit, row_history, row_as_of,
// purge_audit_log, each with its error path.
#include <thread>

#include "test_db.hpp"

WFTEST_DATABASE("wf_client_audit");

using namespace wftest;
using namespace std::chrono_literals;
namespace a = workflow::client::api;

TEST(ClientAudit, HistoryAndRowAsOf) {
  Connection c(settings());
  c.exec("CREATE TABLE accounts(id int PRIMARY KEY, owner text, balance int, secret text)");
  a::enable_audit(c, "accounts", {"secret"});
  c.exec("INSERT INTO accounts VALUES (1, 'ann', 10, 's1')");
  const std::string between = c.exec("SELECT clock_timestamp()::text").string(0, 0);
  std::this_thread::sleep_for(10ms);
  c.exec("UPDATE accounts SET balance = 20, secret = 's2' WHERE id = 1");
  c.exec("UPDATE accounts SET owner = 'it''s \"ü\"' WHERE id = 1");

  const json history = a::row_history(c, "accounts", {{"id", 1}});
  ASSERT_TRUE(history.is_array());
  ASSERT_EQ(history.size(), 3u);
  EXPECT_EQ(history[0]["operation"], "INSERT");
  EXPECT_EQ(history[1]["operation"], "UPDATE");
  EXPECT_EQ(history[2]["operation"], "UPDATE");
  EXPECT_EQ(history[0]["row_key"], (json{{"id", 1}}));
  EXPECT_EQ(history.dump().find("s2"), std::string::npos);  // excluded column not logged

  const auto then = a::row_as_of(c, "accounts", {{"id", 1}}, between);
  ASSERT_TRUE(then);
  EXPECT_EQ((*then)["balance"], 10);
  EXPECT_EQ((*then)["owner"], "ann");
  const auto now = a::row_as_of(c, "accounts", {{"id", 1}}, "infinity");
  ASSERT_TRUE(now);
  EXPECT_EQ((*now)["owner"], "it's \"ü\"");
  EXPECT_FALSE(a::row_as_of(c, "accounts", {{"id", 1}}, "2000-01-01"));  // before it existed
  EXPECT_TRUE(a::row_history(c, "accounts", {{"id", 999}}).empty());

  EXPECT_NE(sqlstate_of([&] { a::row_history(c, "no_such_table", {{"id", 1}}); }), "");
  EXPECT_EQ(sqlstate_of([&] { a::row_history(c, "accounts", json::array()); }), "22023");
  EXPECT_EQ(a::purge_audit_log(c, "100 years"), 0);
  EXPECT_NE(sqlstate_of([&] { a::purge_audit_log(c, "-1 day"); }), "");

  a::disable_audit(c, "accounts");
  c.exec("UPDATE accounts SET balance = 30 WHERE id = 1");
  EXPECT_EQ(a::row_history(c, "accounts", {{"id", 1}}).size(), 3u);  // no longer logged
  EXPECT_NE(sqlstate_of([&] { a::enable_audit(c, "no_such_table"); }), "");
}
