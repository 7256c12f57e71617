#include "core/engine_batch.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/error.hpp"

using namespace workflow::core;

TEST(EngineBatch, LockOrderIsByJobThenTask) {
  std::vector<BatchTask> tasks = {{"j2", "j2:1:0", 1}, {"j1", "j1:1:5", 1}, {"j1", "j1:1:10", 1}, {"j1", "j1:2:0", 2}};
  EXPECT_EQ(batch_lock_order(tasks), (std::vector<std::size_t>{2, 1, 3, 0}));
}

TEST(EngineBatch, TaskTwiceIsRefusedNamingBothPositions) {
  std::vector<BatchTask> tasks = {{"j", "a", 1}, {"j", "b", 1}, {"j", "a", 1}};
  try {
    batch_lock_order(tasks);
    FAIL() << "no error";
  } catch (const error& e) {
    EXPECT_STREQ(e.sqlstate(), "22023");
    EXPECT_NE(std::string(e.what()).find("task_ids[3] 'a' of job 'j' repeats task_ids[1]"), std::string::npos)
        << e.what();
  }
  // The same task id in two jobs is two tasks.
  std::vector<BatchTask> two_jobs = {{"j", "a", 1}, {"k", "a", 1}};
  EXPECT_EQ(batch_lock_order(two_jobs).size(), 2u);
}

TEST(EngineBatch, SlotsAreGroupedAndCountedInOrder) {
  std::vector<BatchTask> tasks = {{"j", "t0", 1}, {"j", "t1", 1}, {"j", "t2", 1}, {"i", "u0", 3}, {"j", "t3", 2}};
  // (index, slot) in lock order as the UPDATEs return them.
  std::vector<CompletedTask> done = {{3, 0}, {0, 1}, {1, 0}, {2, 1}, {4, 0}};
  auto slots = group_by_slot(tasks, done);
  ASSERT_EQ(slots.size(), 4u);
  EXPECT_EQ(slots[0].job_id, "i");
  EXPECT_EQ(slots[0].count, 1);
  EXPECT_EQ(slots[1].job_id, "j");
  EXPECT_EQ(slots[1].stage, 1);
  EXPECT_EQ(slots[1].slot, 0);
  EXPECT_EQ(slots[1].count, 1);
  EXPECT_EQ(slots[2].slot, 1);
  EXPECT_EQ(slots[2].count, 2);
  EXPECT_EQ(slots[2].last_task, 2u);
  EXPECT_EQ(slots[3].stage, 2);
}

TEST(EngineBatch, StagesCountZeroedSlotsAndNameOneCompleter) {
  std::vector<SlotDecrement> zeroed = {{"i", 3, 0, 1, 3}, {"j", 1, 0, 1, 1}, {"j", 1, 1, 2, 2}, {"j", 2, 0, 1, 4}};
  auto stages = group_by_stage(zeroed);
  ASSERT_EQ(stages.size(), 3u);
  EXPECT_EQ(stages[0].zeroed_slots, 1);
  EXPECT_EQ(stages[0].completer, 3u);
  EXPECT_EQ(stages[1].zeroed_slots, 2);
  EXPECT_EQ(stages[1].completer, 2u);
  EXPECT_EQ(stages[2].stage, 2);
  EXPECT_TRUE(group_by_stage({}).empty());
}

TEST(EngineBatch, UnitsAreCountedPerStageWithFirstSlotAndLastTask) {
  std::vector<BatchTask> tasks = {{"j", "t0", 1}, {"j", "t1", 1}, {"j", "t2", 1}, {"i", "u0", 3}, {"j", "t3", 2}};
  // (index, slot) in lock order as the task UPDATEs return them.
  std::vector<CompletedTask> done = {{3, 7}, {0, 5}, {1, 0}, {2, 1}, {4, 2}};
  auto stages = group_units_by_stage(tasks, done);
  ASSERT_EQ(stages.size(), 3u);
  EXPECT_EQ(stages[0].job_id, "i");
  EXPECT_EQ(stages[0].units, 1);
  EXPECT_EQ(stages[0].preferred_slot, 7);
  EXPECT_EQ(stages[1].job_id, "j");
  EXPECT_EQ(stages[1].stage, 1);
  EXPECT_EQ(stages[1].units, 3);
  EXPECT_EQ(stages[1].preferred_slot, 5);  // the first of the stage in lock order
  EXPECT_EQ(stages[1].last_task, 2u);
  EXPECT_EQ(stages[2].stage, 2);
  EXPECT_EQ(stages[2].units, 1);
  EXPECT_TRUE(group_units_by_stage(tasks, {}).empty());
}
