// Tests for server/outbox.h: the output budget is exhausted at its limit and reopens below three
// quarters of it, notifying each registered waiter once (and not one that withdrew); an outbox
// counts in the budget exactly what it holds, drops its queue and releases it when it overflows
// past the hard limit, and releases what is left when destroyed; the soft limit's deadline is
// reported as the queue goes over and back under, and its expiry cuts a reader that did not drain
// at the minimum rate while one that did gets a new grace.
#include "server/outbox.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

namespace greenline::server {
namespace {

using namespace std::chrono_literals;

// A message whose Cost() is `cost` (64 of it is the record's share).
OutMessage* Message(size_t cost, int32_t refs = 1) {
  return OutMessage::Make(std::string(cost - 64, 'm'), refs);
}

TEST(OutputBudgetTest, ExhaustedAtTheLimitReopensBelowThreeQuartersAndNotifiesWaitersOnce) {
  OutputBudget budget(1000);
  EXPECT_EQ(budget.low_water(), 750u);
  BudgetWaiter a, b;
  budget.Add(999);
  EXPECT_FALSE(budget.exhausted());
  EXPECT_FALSE(budget.WaitOpen(&a)) << "registered while open";
  budget.Add(1);
  EXPECT_TRUE(budget.exhausted());
  EXPECT_EQ(budget.exhaustions(), 1u);
  EXPECT_TRUE(budget.WaitOpen(&a));
  EXPECT_TRUE(budget.WaitOpen(&a));  // once, however often
  EXPECT_TRUE(budget.WaitOpen(&b));
  budget.Release(200);  // 800: still above the low-water mark
  EXPECT_TRUE(budget.exhausted());
  EXPECT_FALSE(a.notifier.TryWait());
  budget.Release(100);  // 700: open
  EXPECT_FALSE(budget.exhausted());
  EXPECT_TRUE(a.notifier.TryWait());
  EXPECT_FALSE(a.notifier.TryWait()) << "notified twice: it was registered twice";
  EXPECT_TRUE(b.notifier.TryWait());
  EXPECT_EQ(budget.used(), 700u);

  // A waiter that withdraws is not notified; the others are.
  budget.Add(300);
  EXPECT_TRUE(budget.exhausted());
  EXPECT_EQ(budget.exhaustions(), 2u);
  EXPECT_TRUE(budget.WaitOpen(&a));
  EXPECT_TRUE(budget.WaitOpen(&b));
  budget.CancelWait(&a);
  budget.CancelWait(&a);  // withdrawing twice is harmless
  budget.Release(1000);
  EXPECT_FALSE(a.notifier.TryWait());
  EXPECT_TRUE(b.notifier.TryWait());
  EXPECT_EQ(budget.used(), 0u);
}

TEST(OutboxTest, CountsInTheBudgetWhatItHoldsAndReleasesItWrittenOrDestroyed) {
  OutputBudget budget(1 << 20);
  {
    Outbox box(OutLimits{}, &budget);
    EXPECT_EQ(box.Put(Message(100)), Outbox::Push::kQueued);
    EXPECT_EQ(box.Put(Message(200)), Outbox::Push::kQueued);
    EXPECT_EQ(budget.used(), 300u);
    EXPECT_EQ(box.bytes(), 300u);
    std::vector<OutMessage*> batch;
    ASSERT_EQ(box.TryTake(&batch), Outbox::Taken::kBatch);
    ASSERT_EQ(batch.size(), 2u);
    EXPECT_EQ(budget.used(), 300u) << "being written still counts";
    size_t cost = 0;
    for (OutMessage* m : batch) {
      cost += Outbox::Cost(m);
      m->Unref();
    }
    box.Written(cost);
    EXPECT_EQ(budget.used(), 0u);
    batch.clear();
    EXPECT_EQ(box.TryTake(&batch), Outbox::Taken::kEmpty);
    EXPECT_EQ(box.Put(Message(150)), Outbox::Push::kQueued);
    EXPECT_EQ(budget.used(), 150u);
  }
  EXPECT_EQ(budget.used(), 0u) << "what was never written is released when the outbox goes";
}

TEST(OutboxTest, PastTheHardLimitItOverflowsAndDropsWhatIsQueued) {
  OutputBudget budget(1 << 20);
  Outbox box(OutLimits{.soft = 100, .hard = 300}, &budget);
  OutMessage* shared = Message(100, 2);  // also in someone else's queue
  EXPECT_EQ(box.Put(shared), Outbox::Push::kQueued);
  EXPECT_EQ(box.Put(Message(100)), Outbox::Push::kQueued);
  EXPECT_EQ(box.Put(Message(100)), Outbox::Push::kQueued);
  EXPECT_EQ(box.Put(Message(100)), Outbox::Push::kOverflow);
  EXPECT_TRUE(box.overflowed());
  EXPECT_EQ(budget.used(), 0u) << "the queue is dropped at once";
  EXPECT_EQ(shared->refs.load(), 1) << "its reference was released";
  shared->Unref();
  EXPECT_EQ(box.Put(Message(100)), Outbox::Push::kDropped);
  std::vector<OutMessage*> batch;
  EXPECT_EQ(box.TryTake(&batch), Outbox::Taken::kDone);
  EXPECT_EQ(budget.used(), 0u);
}

TEST(OutboxTest, TheSoftLimitsDeadlineFollowsTheQueueAndItsExpiryCutsOnlyAReaderNotDraining) {
  std::vector<OutClock::time_point> told;
  OutLimits limits{.soft = 150, .hard = 10'000, .grace = 1s, .min_rate = 100};
  Outbox box(limits, nullptr, [&](OutClock::time_point at) { told.push_back(at); });
  auto before = OutClock::now();
  box.Put(Message(100));
  EXPECT_TRUE(told.empty()) << "under the soft limit: no deadline";
  box.Put(Message(100));  // 200: over
  ASSERT_EQ(told.size(), 1u);
  EXPECT_GE(told[0], before + 1s);
  EXPECT_LE(told[0], OutClock::now() + 1s);
  // A write that timed out before the grace is over (the deadline moved as it passed): no cut, and
  // the deadline is set where it is once more.
  EXPECT_FALSE(box.SoftLimitExpired(told[0] - 1ms));
  ASSERT_EQ(told.size(), 2u);
  EXPECT_EQ(told[1], told[0]);
  // Drained 300 bytes in 2 s: 150 B/s, above the minimum rate: a new grace, not a cut.
  box.Drained(300);
  auto t = told[0] + 1s;
  EXPECT_FALSE(box.SoftLimitExpired(t));
  EXPECT_FALSE(box.overflowed());
  ASSERT_EQ(told.size(), 3u);
  EXPECT_EQ(told[2], t + 1s);
  // Nothing drained over the next grace: too slow.
  EXPECT_TRUE(box.SoftLimitExpired(t + 1s));
  EXPECT_TRUE(box.overflowed());
  EXPECT_EQ(told.size(), 3u) << "nothing is told once overflowed";

  // Back under the soft limit: the deadline is lifted (the zero time).
  std::vector<OutClock::time_point> told2;
  Outbox box2(limits, nullptr, [&](OutClock::time_point at) { told2.push_back(at); });
  box2.Put(Message(100));
  box2.Put(Message(100));
  std::vector<OutMessage*> batch;
  ASSERT_EQ(box2.TryTake(&batch), Outbox::Taken::kBatch);
  for (OutMessage* m : batch) m->Unref();
  box2.Written(200);
  ASSERT_EQ(told2.size(), 2u);
  EXPECT_EQ(told2[1], OutClock::time_point{});
  EXPECT_FALSE(box2.SoftLimitExpired(OutClock::now() + 1h)) << "under the soft limit";
}

}  // namespace
}  // namespace greenline::server
