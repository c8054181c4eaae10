// Checks runtime/fiber/fiber.h: fibers on StackPool stacks switched with SwitchFiber, as the
// scheduler uses them. A thread fiber (InitThreadFiber) describes the calling thread's stack; a
// fiber ping-pongs with it 100,000 times; a finishing fiber leaves for good with SwitchFiberFinal,
// and resuming it anyway is a fatal error; one stack and one Fiber serve 1,000 fibers in turn
// (UnpoisonStack between uses); 64 live fibers round-robin without disturbing each other's stacks;
// fibers switch directly to each other; exceptions are thrown and caught inside a fiber; a fiber
// suspended on one thread resumes on another with its own rounding mode; and, as a stress test
// that also runs under TSan, fibers migrate between four threads through a shared queue. Every test
// is meant to be clean under ASan+UBSan and TSan, which is what the sanitizer annotations in
// SwitchFiber are for.
#include "runtime/fiber/fiber.h"

#include <fenv.h>
#include <gtest/gtest.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "runtime/fiber/stack.h"

#if defined(GREENLINE_ASAN)
#include <sanitizer/asan_interface.h>
#endif

namespace greenline {
namespace {

// Owns the stacks a test takes from a pool and gives them back, unpoisoned, at the end.
class PooledStacks {
 public:
  explicit PooledStacks(size_t size = kDefaultStackSize) : pool_(size) {}
  ~PooledStacks() {
    for (const Stack& s : stacks_) {
      UnpoisonStack(s.lo, s.size);
      pool_.Release(s);
    }
  }
  // Returns a stack, or one with lo == nullptr if the pool is exhausted.
  Stack Take() {
    Stack s;
    if (!pool_.Allocate(&s)) return Stack{};
    stacks_.push_back(s);
    return s;
  }
  StackPool& pool() { return pool_; }

 private:
  StackPool pool_;
  std::vector<Stack> stacks_;
};

bool Within(const void* p, const void* lo, size_t size) {
  auto a = reinterpret_cast<uintptr_t>(p), l = reinterpret_cast<uintptr_t>(lo);
  return a >= l && a < l + size;
}

// --- Thread fibers ---------------------------------------------------------------------------

TEST(FiberTest, ThreadFiberDescribesTheCallingThreadsStack) {
  Fiber main_fiber;
  InitThreadFiber(&main_fiber);
  ASSERT_NE(main_fiber.stack_lo, nullptr);
  EXPECT_TRUE(Within(__builtin_frame_address(0), main_fiber.stack_lo, main_fiber.stack_size));

  Fiber other;
  const void* other_frame = nullptr;
  std::thread([&] {
    InitThreadFiber(&other);
    other_frame = __builtin_frame_address(0);
  }).join();
  ASSERT_NE(other.stack_lo, nullptr);
  EXPECT_TRUE(Within(other_frame, other.stack_lo, other.stack_size));
  EXPECT_FALSE(Within(__builtin_frame_address(0), other.stack_lo, other.stack_size));
}

TEST(FiberTest, InitFiberRecordsTheStackBounds) {
  PooledStacks stacks;
  Stack s = stacks.Take();
  ASSERT_NE(s.lo, nullptr);
  Fiber f;
  InitFiber(
      &f, s.lo, s.size, s.hi(), [](void*) { __builtin_trap(); }, nullptr);
  EXPECT_EQ(f.stack_lo, s.lo);
  EXPECT_EQ(f.stack_size, s.size);
  EXPECT_EQ(f.asan_fake_stack, nullptr);
  EXPECT_TRUE(Within(reinterpret_cast<void*>(ContextSp(f.ctx) - 1), s.lo, s.size));
  void* tsan_fiber = f.tsan_fiber;
  InitFiber(
      &f, s.lo, s.size, s.hi(), [](void*) { __builtin_trap(); }, nullptr);
  EXPECT_EQ(f.tsan_fiber, tsan_fiber) << "re-initialising must reuse the TSan fiber";
  DestroyFiber(&f);
  EXPECT_EQ(f.tsan_fiber, nullptr);
}

// --- Ping-pong -------------------------------------------------------------------------------

struct Echo {
  Fiber* main = nullptr;
  Fiber self;
  uint64_t request = 0;
  uint64_t reply = 0;
  int64_t served = 0;
  bool stop = false;
  bool finished = false;
  const void* frame = nullptr;
};

void EchoEntry(void* arg) {
  FiberEntered();
  auto* e = static_cast<Echo*>(arg);
  e->frame = __builtin_frame_address(0);
  while (!e->stop) {
    e->reply = e->request ^ 0x5555555555555555ull;
    ++e->served;
    SwitchFiber(&e->self, e->main);
  }
  e->finished = true;
  SwitchFiberFinal(&e->self, e->main);
}

TEST(FiberTest, PingPongsWithTheThreadFiberOnAPooledStack) {
  constexpr int64_t kRounds = 100'000;
  PooledStacks stacks;
  Stack s = stacks.Take();
  ASSERT_NE(s.lo, nullptr);
  Fiber main_fiber;
  InitThreadFiber(&main_fiber);
  Echo e;
  e.main = &main_fiber;
  InitFiber(&e.self, s.lo, s.size, s.hi(), &EchoEntry, &e);
  int64_t wrong = 0;
  for (int64_t i = 0; i < kRounds; ++i) {
    e.request = static_cast<uint64_t>(i) * 0x9e3779b97f4a7c15ull;
    SwitchFiber(&main_fiber, &e.self);
    if (e.reply != (e.request ^ 0x5555555555555555ull)) ++wrong;
  }
  EXPECT_TRUE(Within(e.frame, s.lo, s.size)) << "the fiber did not run on its stack";
  EXPECT_FALSE(e.finished);
  e.stop = true;
  SwitchFiber(&main_fiber, &e.self);
  EXPECT_TRUE(e.finished);
  EXPECT_EQ(wrong, 0);
  EXPECT_EQ(e.served, kRounds);
  DestroyFiber(&e.self);
}

// --- Finishing -------------------------------------------------------------------------------

struct OneShot {
  Fiber* main = nullptr;
  Fiber self;
  int runs = 0;
  uint64_t checksum = 0;
};

// Uses a few KiB of stack in frames with arrays (ASan gives each its redzones).
__attribute__((noinline)) uint64_t Churn(int depth) {
  volatile char buf[200];
  for (int i = 0; i < 200; ++i) buf[i] = static_cast<char>(depth + i);
  uint64_t sum = depth > 0 ? Churn(depth - 1) : 0;
  for (int i = 0; i < 200; ++i) sum += static_cast<unsigned char>(buf[i]);
  return sum;
}

void OneShotEntry(void* arg) {
  FiberEntered();
  auto* o = static_cast<OneShot*>(arg);
  ++o->runs;
  o->checksum += Churn(20);
  SwitchFiberFinal(&o->self, o->main);
}

TEST(FiberTest, FinishedFiberSwitchesBackForGood) {
  PooledStacks stacks;
  Stack s = stacks.Take();
  ASSERT_NE(s.lo, nullptr);
  Fiber main_fiber;
  InitThreadFiber(&main_fiber);
  OneShot o;
  o.main = &main_fiber;
  InitFiber(&o.self, s.lo, s.size, s.hi(), &OneShotEntry, &o);
  SwitchFiber(&main_fiber, &o.self);
  EXPECT_EQ(o.runs, 1);
  EXPECT_EQ(o.checksum, Churn(20));
  DestroyFiber(&o.self);
}

TEST(FiberDeathTest, ResumingAFinishedFiberIsFatal) {
#if defined(GREENLINE_ASAN)
  if (__asan_get_current_fake_stack() != nullptr) {
    GTEST_SKIP() << "with detect_stack_use_after_return ASan frees a finished fiber's fake frames, "
                    "so resuming it faults before it reaches Fatal";
  }
#endif
  EXPECT_EXIT(
      {
        PooledStacks stacks;
        Stack s = stacks.Take();
        Fiber main_fiber;
        InitThreadFiber(&main_fiber);
        OneShot o;
        o.main = &main_fiber;
        InitFiber(&o.self, s.lo, s.size, s.hi(), &OneShotEntry, &o);
        SwitchFiber(&main_fiber, &o.self);
        SwitchFiber(&main_fiber, &o.self);  // must not return
        _exit(0);
      },
      testing::ExitedWithCode(2), "fatal error: runtime: a finished fiber was resumed");
}

TEST(FiberTest, OneStackServesAThousandFibersInTurn) {
  constexpr int kFibers = 1000;
  PooledStacks stacks;
  Stack s = stacks.Take();
  ASSERT_NE(s.lo, nullptr);
  Fiber main_fiber;
  InitThreadFiber(&main_fiber);
  OneShot o;
  o.main = &main_fiber;
  for (int i = 0; i < kFibers; ++i) {
    InitFiber(&o.self, s.lo, s.size, s.hi(), &OneShotEntry, &o);
    SwitchFiber(&main_fiber, &o.self);
    UnpoisonStack(s.lo, s.size);  // the finished fiber's frames are abandoned, not unwound
  }
  DestroyFiber(&o.self);
  EXPECT_EQ(o.runs, kFibers);
  EXPECT_EQ(o.checksum, kFibers * Churn(20));
}

#if defined(GREENLINE_ASAN)
// Leaves this frame, with its array's redzones, poisoned on the stack: it is never unwound.
void PoisonLeavingEntry(void* arg) {
  FiberEntered();
  auto* o = static_cast<OneShot*>(arg);
  volatile char buf[64];
  for (int i = 0; i < 64; ++i) buf[i] = static_cast<char>(i);
  o->checksum += static_cast<unsigned char>(buf[63]);
  SwitchFiberFinal(&o->self, o->main);
}

TEST(FiberTest, UnpoisonStackClearsTheRedzonesAFinishedFiberLeaves) {
  PooledStacks stacks;
  Stack s = stacks.Take();
  ASSERT_NE(s.lo, nullptr);
  ASSERT_EQ(__asan_region_is_poisoned(s.lo, s.size), nullptr);
  Fiber main_fiber;
  InitThreadFiber(&main_fiber);
  OneShot o;
  o.main = &main_fiber;
  InitFiber(&o.self, s.lo, s.size, s.hi(), &PoisonLeavingEntry, &o);
  SwitchFiber(&main_fiber, &o.self);
  // With detect_stack_use_after_return the array lived on a fake stack instead.
  if (__asan_get_current_fake_stack() == nullptr) {
    EXPECT_NE(__asan_region_is_poisoned(s.lo, s.size), nullptr);
  }
  UnpoisonStack(s.lo, s.size);
  EXPECT_EQ(__asan_region_is_poisoned(s.lo, s.size), nullptr);
  DestroyFiber(&o.self);
}
#endif

// --- Many fibers -----------------------------------------------------------------------------

struct Member {
  Fiber* main = nullptr;
  Fiber self;
  int id = 0;
  int rounds = 0;
  int64_t corrupted = 0;  // rounds after which the fiber found its own locals changed
};

void MemberEntry(void* arg) {
  FiberEntered();
  auto* m = static_cast<Member*>(arg);
  volatile uint32_t mine[256];  // a KiB of locals another fiber's stack must never overlap
  for (int i = 0; i < 256; ++i) mine[i] = static_cast<uint32_t>(m->id * 1000 + i);
  for (;;) {
    SwitchFiber(&m->self, m->main);
    ++m->rounds;
    for (int i = 0; i < 256; ++i) {
      if (mine[i] != static_cast<uint32_t>(m->id * 1000 + i)) {
        ++m->corrupted;
        break;
      }
    }
  }
}

TEST(FiberTest, RoundRobinsSixtyFourLiveFibers) {
  constexpr int kFibers = 64, kRounds = 100;
  PooledStacks stacks;
  Fiber main_fiber;
  InitThreadFiber(&main_fiber);
  std::vector<std::unique_ptr<Member>> members;
  for (int i = 0; i < kFibers; ++i) {
    Stack s = stacks.Take();
    ASSERT_NE(s.lo, nullptr);
    auto m = std::make_unique<Member>();
    m->main = &main_fiber;
    m->id = i;
    InitFiber(&m->self, s.lo, s.size, s.hi(), &MemberEntry, m.get());
    members.push_back(std::move(m));
  }
  for (int round = 0; round <= kRounds; ++round) {
    for (auto& m : members) SwitchFiber(&main_fiber, &m->self);
  }
  // The members stay suspended; PooledStacks unpoisons their stacks.
  for (auto& m : members) {
    EXPECT_EQ(m->rounds, kRounds) << "fiber " << m->id;
    EXPECT_EQ(m->corrupted, 0) << "fiber " << m->id;
    DestroyFiber(&m->self);
  }
}

struct Relay {
  Fiber main;
  Fiber a;
  Fiber b;
  std::string trace;
};

void RelayA(void* arg) {
  FiberEntered();
  auto* r = static_cast<Relay*>(arg);
  r->trace += 'a';
  SwitchFiber(&r->a, &r->b);
  r->trace += 'A';
  SwitchFiberFinal(&r->a, &r->main);
}

void RelayB(void* arg) {
  FiberEntered();
  auto* r = static_cast<Relay*>(arg);
  r->trace += 'b';
  SwitchFiberFinal(&r->b, &r->a);
}

TEST(FiberTest, FibersSwitchDirectlyToEachOther) {
  PooledStacks stacks;
  Stack sa = stacks.Take(), sb = stacks.Take();
  ASSERT_NE(sa.lo, nullptr);
  ASSERT_NE(sb.lo, nullptr);
  Relay r;
  InitThreadFiber(&r.main);
  InitFiber(&r.a, sa.lo, sa.size, sa.hi(), &RelayA, &r);
  InitFiber(&r.b, sb.lo, sb.size, sb.hi(), &RelayB, &r);
  SwitchFiber(&r.main, &r.a);
  r.trace += 'm';
  EXPECT_EQ(r.trace, "abAm");
  DestroyFiber(&r.a);
  DestroyFiber(&r.b);
}

// --- Exceptions ------------------------------------------------------------------------------

__attribute__((noinline)) void ThrowFrom(int depth) {
  if (depth == 0) throw std::runtime_error("thrown on a fiber");
  ThrowFrom(depth - 1);
  asm volatile("");  // not a tail call: keep the frames
}

struct Thrower {
  Fiber* main = nullptr;
  Fiber self;
  int caught = 0;
  std::string what;
};

void ThrowerEntry(void* arg) {
  FiberEntered();
  auto* t = static_cast<Thrower*>(arg);
  for (int i = 0; i < 3; ++i) {
    try {
      ThrowFrom(5);
    } catch (const std::runtime_error& e) {
      ++t->caught;
      t->what = e.what();
    }
    SwitchFiber(&t->self, t->main);  // suspended between two throws
  }
  SwitchFiberFinal(&t->self, t->main);
}

TEST(FiberTest, ExceptionsAreThrownAndCaughtInsideAFiber) {
  PooledStacks stacks;
  Stack s = stacks.Take();
  ASSERT_NE(s.lo, nullptr);
  Fiber main_fiber;
  InitThreadFiber(&main_fiber);
  Thrower t;
  t.main = &main_fiber;
  InitFiber(&t.self, s.lo, s.size, s.hi(), &ThrowerEntry, &t);
  int main_caught = 0;
  for (int i = 0; i < 4; ++i) {
    SwitchFiber(&main_fiber, &t.self);
    try {
      ThrowFrom(3);
    } catch (const std::runtime_error&) {
      ++main_caught;
    }
  }
  EXPECT_EQ(t.caught, 3);
  EXPECT_EQ(t.what, "thrown on a fiber");
  EXPECT_EQ(main_caught, 4);
  DestroyFiber(&t.self);
}

// --- Migration between threads -----------------------------------------------------------------

long ThreadId() { return syscall(SYS_gettid); }

struct Migrant {
  Fiber* return_to = nullptr;  // the thread fiber of whichever thread resumed it last
  Fiber self;
  long first_tid = 0;
  long second_tid = 0;
  int mode_after_migration = -1;
  bool finished = false;
};

void MigrantEntry(void* arg) {
  FiberEntered();
  auto* m = static_cast<Migrant*>(arg);
  m->first_tid = ThreadId();
  fesetround(FE_UPWARD);
  SwitchFiber(&m->self, m->return_to);
  m->second_tid = ThreadId();
  m->mode_after_migration = fegetround();
  fesetround(FE_TONEAREST);
  m->finished = true;
  SwitchFiberFinal(&m->self, m->return_to);
}

TEST(FiberTest, ResumesOnAnotherThreadWithItsOwnRoundingMode) {
  PooledStacks stacks;
  Stack s = stacks.Take();
  ASSERT_NE(s.lo, nullptr);
  Migrant m;
  InitFiber(&m.self, s.lo, s.size, s.hi(), &MigrantEntry, &m);
  int first_thread_mode = -1, second_thread_mode = -1;
  std::thread([&] {
    Fiber g0;
    InitThreadFiber(&g0);
    m.return_to = &g0;
    SwitchFiber(&g0, &m.self);
    first_thread_mode = fegetround();
  }).join();
  std::thread([&] {
    Fiber g0;
    InitThreadFiber(&g0);
    m.return_to = &g0;
    SwitchFiber(&g0, &m.self);
    second_thread_mode = fegetround();
  }).join();
  EXPECT_TRUE(m.finished);
  EXPECT_NE(m.first_tid, m.second_tid);
  EXPECT_EQ(m.mode_after_migration, FE_UPWARD) << "the rounding mode must travel with the fiber";
  EXPECT_EQ(first_thread_mode, FE_TONEAREST) << "the fiber's mode leaked into its first thread";
  EXPECT_EQ(second_thread_mode, FE_TONEAREST);
  DestroyFiber(&m.self);
}

// Fibers hop between threads through a mutex-protected queue, as goroutines move between workers.
// Each fiber's counter is plain memory handed over with the fiber: TSan sees the hand-off through
// the queue's mutex and the fiber switches.
struct Hopper {
  Fiber* return_to = nullptr;
  Fiber self;
  int rounds = 0;
  int threads_seen_changes = 0;
  uint64_t local_sum = 0;  // copied out of the fiber's stack when it finishes
  bool finished = false;
};

constexpr int kHopRounds = 300;

void HopperEntry(void* arg) {
  FiberEntered();
  auto* h = static_cast<Hopper*>(arg);
  uint64_t sum = 0;  // lives on the fiber's stack across migrations
  long last_tid = ThreadId();
  for (int r = 0; r < kHopRounds; ++r) {
    sum += static_cast<uint64_t>(r) * 7 + 1;
    ++h->rounds;
    SwitchFiber(&h->self, h->return_to);
    long tid = ThreadId();
    if (tid != last_tid) ++h->threads_seen_changes;
    last_tid = tid;
  }
  h->local_sum = sum;
  h->finished = true;
  SwitchFiberFinal(&h->self, h->return_to);
}

TEST(FiberTest, StressFibersMigrateBetweenThreads) {
  constexpr int kThreads = 4, kFibers = 64;
  PooledStacks stacks;
  std::vector<std::unique_ptr<Hopper>> hoppers;
  std::mutex mu;
  std::deque<Hopper*> ready;  // guarded by mu
  for (int i = 0; i < kFibers; ++i) {
    Stack s = stacks.Take();
    ASSERT_NE(s.lo, nullptr);
    auto h = std::make_unique<Hopper>();
    InitFiber(&h->self, s.lo, s.size, s.hi(), &HopperEntry, h.get());
    ready.push_back(h.get());
    hoppers.push_back(std::move(h));
  }
  std::atomic<int> finished{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      Fiber g0;
      InitThreadFiber(&g0);
      while (finished.load(std::memory_order_acquire) < kFibers) {
        Hopper* h = nullptr;
        {
          std::lock_guard<std::mutex> lock(mu);
          if (!ready.empty()) {
            h = ready.front();
            ready.pop_front();
          }
        }
        if (h == nullptr) {
          std::this_thread::yield();
          continue;
        }
        h->return_to = &g0;
        SwitchFiber(&g0, &h->self);
        if (h->finished) {
          finished.fetch_add(1, std::memory_order_release);
        } else {
          std::lock_guard<std::mutex> lock(mu);
          ready.push_back(h);
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  uint64_t expected_sum = 0;
  for (int r = 0; r < kHopRounds; ++r) expected_sum += static_cast<uint64_t>(r) * 7 + 1;
  int migrations = 0;
  for (auto& h : hoppers) {
    EXPECT_TRUE(h->finished);
    EXPECT_EQ(h->rounds, kHopRounds);
    EXPECT_EQ(h->local_sum, expected_sum);
    migrations += h->threads_seen_changes;
    DestroyFiber(&h->self);
  }
  // With one CPU the threads may still take turns; only report how much migration happened.
  RecordProperty("migrations", migrations);
}

}  // namespace
}  // namespace greenline
