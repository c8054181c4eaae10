// Tests for greenline/panic.h: deferred calls run last-first on return and on panic, with
// their arguments evaluated when deferred; the Go blog's "Defer, Panic, and Recover" example with
// Go's output; recover returning nothing outside a panic, on normal return and in nested calls,
// and a visible zero panic value; re-panic chains reported in Go's format; Goexit; foreign C++
// exceptions as panics; unrecovered panics in any goroutine (exit 2, Go's report); panics crossing
// blocking deferred calls on many workers; 1,000 goroutines panicking beside 1,000 working.
#include "greenline/panic.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

#include "greenline/chan.h"
#include "greenline/goroutine.h"
#include "greenline/runtime.h"
#include "greenline/wait_group.h"
#include "tests/util/child_process.h"

namespace greenline {
namespace {

using namespace std::chrono_literals;
using testing::Procs;
using testing::RunInChild;

TEST(PanicTest, DeferredCallsRunLastFirstOnReturn) {
  std::string order;
  int r = Frame([&](Defer& defer) {
    for (int i = 0; i < 6; ++i) defer([&, i] { order += std::to_string(i); });  // past inline room
    order += "body;";
    return 7;
  });
  EXPECT_EQ(r, 7);
  EXPECT_EQ(order, "body;543210");
}

TEST(PanicTest, ArgumentsAreEvaluatedWhenDeferred) {
  std::vector<int> seen;
  int i = 1;  // outside the body: deferred calls run after the body's own locals are gone
  Frame([&](Defer& defer) {
    defer.Call([&seen](int v) { seen.push_back(v); }, i);  // defer f(i): i is 1 now
    defer([&seen, i] { seen.push_back(i * 10); });         // [=]: captured now
    defer([&seen, &i] { seen.push_back(i * 100); });       // [&]: read when it runs
    i = 2;
  });
  EXPECT_EQ(seen, (std::vector<int>{200, 10, 1}));
}

TEST(PanicTest, GoSpecExamples) {
  // for i := 0; i <= 3; i++ { defer fmt.Print(i) }  prints 3210
  std::string printed;
  Frame([&](Defer& defer) {
    for (int i = 0; i <= 3; ++i) defer.Call([&printed](int v) { printed += std::to_string(v); }, i);
  });
  EXPECT_EQ(printed, "3210");
  // func f() (result int) { defer func() { result *= 7 }(); return 6 }  returns 42
  int r = Frame<int>([](Defer& defer, int& result) {
    defer([&result] { result *= 7; });
    result = 6;
  });
  EXPECT_EQ(r, 42);
  // A deferred call that recovers can choose what the frame returns.
  int chosen = Frame<int>([](Defer& defer, int& result) {
    defer([&result] {
      if (Recover()) result = -1;
    });
    result = 1;
    Panic("x");
  });
  EXPECT_EQ(chosen, -1);
}

// The Go blog's "Defer, Panic, and Recover" example, line for line.
void G(int i, std::string& out) {
  Frame([&](Defer& defer) {
    if (i > 3) {
      out += "Panicking!\n";
      Panic(std::to_string(i));
    }
    defer([&out, i] { out += "Defer in g " + std::to_string(i) + "\n"; });
    out += "Printing in g " + std::to_string(i) + "\n";
    G(i + 1, out);
  });
}

void F(std::string& out) {
  Frame([&](Defer& defer) {
    defer([&out] {
      if (PanicValue r = Recover()) out += "Recovered in f " + r.String() + "\n";
    });
    out += "Calling g.\n";
    G(0, out);
    out += "Returned normally from g.\n";
  });
}

TEST(PanicTest, GoBlogDeferPanicRecoverExample) {
  std::string out;
  F(out);
  out += "Returned normally from f.\n";
  EXPECT_EQ(out,
            "Calling g.\n"
            "Printing in g 0\n"
            "Printing in g 1\n"
            "Printing in g 2\n"
            "Printing in g 3\n"
            "Panicking!\n"
            "Defer in g 3\n"
            "Defer in g 2\n"
            "Defer in g 1\n"
            "Defer in g 0\n"
            "Recovered in f 4\n"
            "Returned normally from f.\n");
}

__attribute__((noinline)) PanicValue RecoverFromAHelper() { return Recover(); }

TEST(PanicTest, RecoverReturnsNothingOutsideAPanicAndInNestedCalls) {
  EXPECT_FALSE(Recover());  // no panic
  bool in_normal_defer = true, in_helper = true, outer = false;
  Frame([&](Defer& defer) { defer([&] { in_normal_defer = Recover().has_value(); }); });
  Frame([&](Defer& defer) {
    defer([&] { outer = Recover().has_value(); });  // the helper did not stop it: this does
    Frame([&](Defer& inner) {
      inner([&] { in_helper = RecoverFromAHelper().has_value(); });
      Panic("x");
    });
  });
  EXPECT_FALSE(in_normal_defer);
  EXPECT_FALSE(in_helper);
  EXPECT_TRUE(outer);
}

__attribute__((noinline)) void PanicFromANamedFunction() { Panic("deep"); }

TEST(PanicTest, PanicStackIsWherePanicWasCalledAndOnlyDuringAPanic) {
  EXPECT_EQ(PanicStack(), "");  // no panic
  std::string during, normal, foreign;
  Frame([&](Defer& defer) { defer([&] { normal = PanicStack(); }); });
  Frame([&](Defer& defer) {
    defer([&] {
      Recover();
      during = PanicStack();  // still the panic's stack after Recover, as debug.Stack() is
    });
    PanicFromANamedFunction();
  });
  Frame([&](Defer& defer) {
    defer([&] {
      Recover();
      foreign = PanicStack();
    });
    throw std::runtime_error("not raised by Panic");
  });
  EXPECT_EQ(normal, "");
  EXPECT_NE(during.find("PanicFromANamedFunction"), std::string::npos) << during;
  EXPECT_EQ(foreign, "");
}

TEST(PanicTest, APanicWithValueZeroIsNotNoPanic) {
  PanicValue got;
  int r = Frame([&](Defer& defer) {
    defer([&] { got = Recover(); });
    Panic(0);
    return 5;
  });
  EXPECT_EQ(r, 0);  // a recovered frame returns the zero value
  ASSERT_TRUE(got.has_value());
  ASSERT_NE(got.As<int>(), nullptr);
  EXPECT_EQ(*got.As<int>(), 0);
  EXPECT_EQ(got.String(), "0");
}

TEST(PanicTest, ValuesPrintAsGoPrintsThem) {
  struct Err {
    std::string Error() const { return "bad thing"; }
  };
  EXPECT_EQ(PanicValue::Of(std::string("text")).String(), "text");
  EXPECT_EQ(PanicValue::Of(42).String(), "42");
  EXPECT_EQ(PanicValue::Of(true).String(), "true");
  EXPECT_EQ(PanicValue::Of(Err{}).String(), "bad thing");
  EXPECT_EQ(PanicValue::Of(std::runtime_error("oops")).String(), "oops");
  EXPECT_EQ(PanicValue().String(), "<nil>");
}

TEST(PanicTest, ForeignExceptionIsAPanicWithTheExceptionAsValue) {
  std::string what;
  Frame([&](Defer& defer) {
    defer([&] {
      PanicValue v = Recover();
      try {
        std::rethrow_exception(v.Exception());
      } catch (const std::out_of_range& e) {
        what = e.what();
      }
    });
    throw std::out_of_range("index 9");
  });
  EXPECT_EQ(what, "index 9");
}

TEST(PanicTest, APanicInADeferredCallReplacesTheFirst) {
  std::string got;
  Frame([&](Defer& defer) {
    defer([&] { got = Recover().String(); });  // sees the second
    defer([] { Panic("second"); });
    Panic("first");
  });
  EXPECT_EQ(got, "second");
}

// Go: a deferred call that panics during a normal return starts a panic the remaining deferred
// calls see; one of them may recover it, and the function then returns its (named) result.
TEST(PanicTest, ADeferredCallPanickingOnNormalReturnStartsAPanic) {
  std::string got;
  std::vector<int> ran;
  int r = Frame<int>([&](Defer& defer, int& result) {
    defer([&] {
      got = Recover().String();
      result = -1;
    });
    defer([&] { ran.push_back(2); });
    defer([&] { Panic("late"); });
    defer([&] { ran.push_back(4); });
    result = 5;
  });
  EXPECT_EQ(got, "late");
  EXPECT_EQ(r, -1);
  EXPECT_EQ(ran, (std::vector<int>{4, 2}));
  // The same with the only deferred call panicking (the peeled first call), unrecovered: it
  // reaches the caller as a panic, and an outer frame recovers it.
  std::string outer;
  int zero = Frame([&](Defer& defer) {
    defer([&] { outer = Recover().String(); });
    return Frame([](Defer& inner) {
      inner([] { Panic(std::string("only")); });
      return 3;
    });
  });
  EXPECT_EQ(outer, "only");
  EXPECT_EQ(zero, 0);
  // Recovered by a later call of the same frame on the peeled path.
  std::string same;
  int v = Frame([&](Defer& defer) {
    defer([&] { same = Recover().String(); });
    defer([] { Panic(7); });
    return 9;
  });
  EXPECT_EQ(same, "7");
  EXPECT_EQ(v, 0);
}

TEST(PanicTest, UnrecoveredChainsAreReportedAsGoReportsThem) {
  auto r = RunInChild([] {
    greenline::Run([] {
      Frame([](Defer& defer) {
        defer([] {
          Recover();
          Panic("second");
        });
        Panic("first");
      });
    });
  });
  ASSERT_TRUE(r.exited) << r.output;
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("panic: first [recovered]\n\tpanic: second\n\ngoroutine 1 [running]:"),
            std::string::npos)
      << r.output;
  auto plain = RunInChild([] {
    greenline::Run([] {
      Frame([](Defer& defer) {
        defer([] { Panic("second"); });
        Panic("first");
      });
    });
  });
  EXPECT_NE(plain.output.find("panic: first\n\tpanic: second\n\ngoroutine 1 [running]:"),
            std::string::npos)
      << plain.output;
}

TEST(PanicTest, UnrecoveredPanicInAnyGoroutineEndsTheProgramWithItsTrace) {
  auto r = RunInChild([] {
    greenline::Run([] {
      Go([] { Panic(std::string("boom")); });
      Sleep(10s);
    });
  });
  ASSERT_TRUE(r.exited) << r.output;
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("panic: boom\n\ngoroutine "), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("goroutine 1 [running]"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("#0 "), std::string::npos) << "no backtrace\n" << r.output;
}

TEST(PanicTest, GoexitRunsEveryDeferredCallAndRecoverSeesNothing) {
  std::vector<std::string> ran;
  bool after_goexit = false;
  bool recovered_something = true;
  greenline::Run([&] {
    WaitGroup wg;
    wg.Add(1);
    Go([&] {
      Frame([&](Defer& outer) {
        outer([&] {
          ran.push_back("outer");
          wg.Done();
        });
        Frame([&](Defer& inner) {
          inner([&] {
            recovered_something = Recover().has_value();
            ran.push_back("inner");
          });
          Goexit();
        });
        after_goexit = true;
      });
      after_goexit = true;
    });
    wg.Wait();
  });
  EXPECT_EQ(ran, (std::vector<std::string>{"inner", "outer"}));
  EXPECT_FALSE(after_goexit);
  EXPECT_FALSE(recovered_something);
}

TEST(PanicStressTest, PanicsCrossBlockingDeferredCallsOnManyWorkers) {
  // Deferred calls that sleep, yield and use channels while a panic unwinds, on 4 workers: the
  // goroutine resumes on other threads mid-panic, and still recovers its own value.
  std::atomic<int> right{0};
  greenline::Run(
      [&] {
        auto ch = MakeChan<int>(8);
        WaitGroup wg;
        for (int i = 0; i < 200; ++i) {
          wg.Add(1);
          Go([&, i] {
            // Outside the body: the deferred calls run after it has returned (panic.h).
            int value = -1;
            int got = Frame([&](Defer& defer) {
              defer([&] {
                Yield();
                if (PanicValue v = Recover()) value = *v.As<int>();
                right.fetch_add(value == i ? 1 : 0);
              });
              defer([&] {
                Sleep(std::chrono::microseconds(50));
                ch.Send(i);
                ch.Recv();
                Yield();
              });
              Panic(i);
              return 1;
            });
            if (got != 0) right.fetch_sub(1000);
            wg.Done();
          });
        }
        wg.Wait();
      },
      Procs(4));
  EXPECT_EQ(right.load(), 200);
}

TEST(PanicStressTest, AThousandPanickingGoroutinesDoNotDisturbAThousandWorking) {
  std::atomic<int> recovered{0}, finished{0};
  std::atomic<int64_t> bad_sums{0};
  greenline::Run(
      [&] {
        WaitGroup wg;
        for (int i = 0; i < 1000; ++i) {
          wg.Add(2);
          Go([&, i] {
            Frame([&](Defer& defer) {
              defer([&] {
                if (Recover()) recovered.fetch_add(1);
                wg.Done();
              });
              Yield();
              if (i % 2) Panic(i);
              throw std::runtime_error("also a panic");
            });
          });
          Go([&, i] {
            int64_t sum = 0;
            for (int k = 0; k <= i; ++k) {
              sum += k;
              if (k % 64 == 0) Yield();
            }
            if (sum != int64_t{i} * (i + 1) / 2) bad_sums.fetch_add(1);
            finished.fetch_add(1);
            wg.Done();
          });
        }
        wg.Wait();
      },
      Procs(2));
  EXPECT_EQ(recovered.load(), 1000);
  EXPECT_EQ(finished.load(), 1000);
  EXPECT_EQ(bad_sums.load(), 0);
}

}  // namespace
}  // namespace greenline
