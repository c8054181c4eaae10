// Tests for greenline/once.h: the function runs exactly once however many goroutines race for
// it, every caller returns only after it completed and sees what it wrote, callers that arrive
// while it runs park their goroutine (the worker keeps running others), and a function that throws
// still spends the Once while its exception reaches the caller.
#include "greenline/once.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "greenline/goroutine.h"
#include "greenline/runtime.h"
#include "greenline/state.h"
#include "greenline/wait_group.h"
#include "tests/util/child_process.h"
#include "tests/util/goroutines.h"

namespace greenline {
namespace {

using namespace std::chrono_literals;
using testing::Procs;

TEST(OnceTest, StressHundredGoroutinesRunItOnceAndAllSeeItsEffects) {
  constexpr int kGoroutines = 100;
  std::atomic<int> calls{0};
  std::atomic<int> saw_value{0};
  greenline::Run(
      [&] {
        Once once;
        int value = 0;  // plain: written by f, read by every caller after Do
        WaitGroup wg;
        for (int i = 0; i < kGoroutines; ++i) {
          wg.Add(1);
          Go([&] {
            once.Do([&] {
              calls.fetch_add(1);
              Sleep(5ms);  // others arrive meanwhile and must wait for the end
              value = 42;
            });
            if (value == 42) saw_value.fetch_add(1);
            wg.Done();
          });
        }
        wg.Wait();
      },
      Procs(2));
  EXPECT_EQ(calls.load(), 1);
  EXPECT_EQ(saw_value.load(), kGoroutines);
}

TEST(OnceTest, LaterCallsDoNothing) {
  Once once;
  int a = 0, b = 0;
  EXPECT_FALSE(once.done());
  const auto first = [&] { ++a; };  // a const callable works too
  once.Do(first);
  once.Do([&] { ++b; });
  once.Do([&] { ++a; });
  EXPECT_TRUE(once.done());
  EXPECT_EQ(a, 1);
  EXPECT_EQ(b, 0);
}

TEST(OnceTest, WaitersParkSoTheWorkerRunsOthers) {
  // One worker: f parks until the main goroutine releases it; callers arriving meanwhile must park
  // (on the Once's mutex) rather than block the worker, or main could never run.
  int64_t waiting_on_mutex = 0;
  int calls = 0;
  greenline::Run(
      [&] {
        Once once;
        WaitGroup gate, done;
        gate.Add(1);
        for (int i = 0; i < 4; ++i) {
          done.Add(1);
          Go([&] {
            once.Do([&] {
              ++calls;
              gate.Wait();
            });
            done.Done();
          });
        }
        // All four call Do: one runs f, three park. Main runs meanwhile only if they park.
        testing::AwaitParked(WaitReason::kSyncMutexLock, 3);
        waiting_on_mutex = testing::ParkedFor(WaitReason::kSyncMutexLock);
        gate.Done();
        done.Wait();
      },
      Procs(1));
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(waiting_on_mutex, 3);
}

TEST(OnceTest, AThrowingFunctionStillCountsAsDone) {
  // Go: "if f panics, Do considers it to have returned; future calls of Do return without calling
  // f". The exception reaches the caller whose Do ran f.
  bool thrown_to_caller = false;
  int second_calls = 0;
  bool done_after = false;
  greenline::Run(
      [&] {
        Once once;
        try {
          once.Do([] { throw std::runtime_error("init failed"); });
        } catch (const std::runtime_error& e) {
          thrown_to_caller = std::string(e.what()) == "init failed";
        }
        done_after = once.done();
        WaitGroup wg;
        wg.Add(1);
        Go([&] {  // another goroutine: does not run f again, does not wait forever
          once.Do([&] { ++second_calls; });
          wg.Done();
        });
        wg.Wait();
      },
      Procs(2));
  EXPECT_TRUE(thrown_to_caller);
  EXPECT_TRUE(done_after);
  EXPECT_EQ(second_calls, 0);
}

TEST(OnceTest, PlainThreadsToo) {
  Once once;
  std::atomic<int> calls{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      once.Do([&] {
        calls.fetch_add(1);
        std::this_thread::sleep_for(5ms);
      });
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(calls.load(), 1);
}

}  // namespace
}  // namespace greenline
