// Checks runtime/fiber/stack.h: StackPool rounds sizes up to whole pages (at least two); hands out
// page-aligned, writable, disjoint stacks, filling a chunk before mapping another; reuses released
// stacks without mapping more, zeroed; costs few mappings for 10,000 stacks with MADV_GUARD_INSTALL
// guards and about two per stack with mprotect guards (both counted in /proc/self/maps); commits
// only the pages a stack touches and returns them on Release (RSS from /proc/self/statm); picks its
// guard mode from the kernel and GREENLINE_STACK_GUARD; hands out canary stacks in kCanary mode and
// falls back to them when the mapping limit is reached (in a child process); and, in the tests
// named *Overflow*, that one byte below `lo` or a runaway recursion on a fiber hits a real guard
// page (skipped under qemu-user, whose MADV_GUARD_INSTALL guards nothing). Stack::CanaryIntact is
// checked on a hand-built stack, and a stress test allocates and releases from four threads.
#include "runtime/fiber/stack.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "runtime/fiber/fiber.h"

#if defined(GREENLINE_ASAN)
#include <sanitizer/asan_interface.h>
#endif

namespace greenline {
namespace {

size_t PageSize() { return static_cast<size_t>(sysconf(_SC_PAGESIZE)); }

bool UnderQemu() { return std::getenv("GREENLINE_UNDER_QEMU") != nullptr; }

// Number of VMAs in this process.
int CountMappings() {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  int n = 0;
  while (std::getline(maps, line)) ++n;
  return n;
}

// Resident set size in pages.
long ResidentPages() {
  std::ifstream statm("/proc/self/statm");
  long size = 0, resident = -1;
  statm >> size >> resident;
  return resident;
}

// Sets or unsets an environment variable for one scope.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value != nullptr) {
      setenv(name, value, 1);
    } else {
      unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      setenv(name_, old_->c_str(), 1);
    } else {
      unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

// --- Sizes and layout --------------------------------------------------------------------------

TEST(StackPoolTest, RoundsTheSizeUpToWholePagesAndAtLeastTwo) {
  const size_t page = PageSize();
  EXPECT_EQ(StackPool(0).stack_size(), 2 * page);
  EXPECT_EQ(StackPool(1).stack_size(), 2 * page);
  EXPECT_EQ(StackPool(page).stack_size(), 2 * page);
  EXPECT_EQ(StackPool(2 * page).stack_size(), 2 * page);
  EXPECT_EQ(StackPool(2 * page + 1).stack_size(), 3 * page);
  EXPECT_EQ(StackPool(5 * page - 1).stack_size(), 5 * page);
  EXPECT_EQ(StackPool(kDefaultStackSize).stack_size(), kDefaultStackSize);
  EXPECT_EQ(StackPool(kDefaultStackSize).page_size(), page);
}

TEST(StackPoolTest, HandsOutPageAlignedWritableDisjointStacks) {
  constexpr int kStacks = 100;
  const size_t page = PageSize();
  StackPool pool(3 * page + 100);
  EXPECT_EQ(pool.chunk_count(), 0u) << "the pool maps nothing before the first Allocate";
  std::vector<Stack> stacks(kStacks);
  for (Stack& s : stacks) {
    ASSERT_TRUE(pool.Allocate(&s));
    EXPECT_EQ(reinterpret_cast<uintptr_t>(s.lo) % page, 0u);
    EXPECT_EQ(s.size, 4 * page);
    std::memset(s.lo, 0xAB, s.size);  // every byte is writable
  }
  EXPECT_EQ(pool.stacks_handed_out(), static_cast<size_t>(kStacks));
  EXPECT_EQ(pool.chunk_count(), 1u) << "100 small stacks fit in one chunk";
  std::sort(stacks.begin(), stacks.end(),
            [](const Stack& a, const Stack& b) { return a.lo < b.lo; });
  for (int i = 0; i + 1 < kStacks; ++i) {
    // A guard page between neighbours (and no overlap in any mode).
    if (stacks[i].guarded) {
      EXPECT_GE(stacks[i + 1].lo, stacks[i].hi() + page);
    } else {
      EXPECT_GE(stacks[i + 1].lo, stacks[i].hi());
    }
  }
  for (const Stack& s : stacks) pool.Release(s);
  EXPECT_EQ(pool.stacks_handed_out(), 0u);
}

TEST(StackPoolTest, FillsAChunkBeforeMappingAnother) {
  // ~32 MiB chunks hold ~480 stacks of 64 KiB plus guard.
  StackPool pool(kDefaultStackSize);
  std::vector<Stack> stacks(2000);
  for (Stack& s : stacks) ASSERT_TRUE(pool.Allocate(&s));
  const size_t slot = kDefaultStackSize + pool.page_size();
  const size_t bytes = stacks.size() * slot;
  EXPECT_GE(pool.chunk_count(), bytes / (40u << 20));
  EXPECT_LE(pool.chunk_count(), bytes / (24u << 20) + 1);
  for (const Stack& s : stacks) pool.Release(s);
}

// --- Reuse -------------------------------------------------------------------------------------

TEST(StackPoolTest, ReleasedStackIsReusedWithoutMappingMore) {
  StackPool pool(kDefaultStackSize);
  Stack first;
  ASSERT_TRUE(pool.Allocate(&first));
  const size_t chunks = pool.chunk_count();
  EXPECT_EQ(pool.stacks_handed_out(), 1u);
  pool.Release(first);
  EXPECT_EQ(pool.stacks_handed_out(), 0u);
  Stack again;
  ASSERT_TRUE(pool.Allocate(&again));
  EXPECT_EQ(again.lo, first.lo);
  EXPECT_EQ(again.size, first.size);
  EXPECT_EQ(again.guarded, first.guarded);
  EXPECT_EQ(pool.chunk_count(), chunks);
  pool.Release(again);

  // Many at once: the same set of stacks comes back, still without a new mapping.
  std::vector<Stack> batch(600);  // more than one chunk's worth
  for (Stack& s : batch) ASSERT_TRUE(pool.Allocate(&s));
  const size_t batch_chunks = pool.chunk_count();
  std::vector<char*> los;
  for (const Stack& s : batch) {
    los.push_back(s.lo);
    pool.Release(s);
  }
  for (Stack& s : batch) ASSERT_TRUE(pool.Allocate(&s));
  EXPECT_EQ(pool.chunk_count(), batch_chunks);
  std::vector<char*> los_again;
  for (const Stack& s : batch) los_again.push_back(s.lo);
  std::sort(los.begin(), los.end());
  std::sort(los_again.begin(), los_again.end());
  EXPECT_EQ(los, los_again);
  for (const Stack& s : batch) pool.Release(s);
}

TEST(StackPoolTest, ReleasedStackComesBackZeroed) {
  StackPool pool(kDefaultStackSize);
  Stack s;
  ASSERT_TRUE(pool.Allocate(&s));
  ASSERT_TRUE(s.guarded);
  std::memset(s.lo, 0x5A, s.size);
  pool.Release(s);
  Stack again;
  ASSERT_TRUE(pool.Allocate(&again));
  ASSERT_EQ(again.lo, s.lo);
  size_t nonzero = 0;
  for (size_t i = 0; i < again.size; ++i) nonzero += again.lo[i] != 0;
  EXPECT_EQ(nonzero, 0u) << "Release must give the pages back (MADV_DONTNEED zero-fills them)";
  pool.Release(again);
}

// --- Mappings ----------------------------------------------------------------------------------

TEST(StackPoolTest, TenThousandMadviseGuardedStacksNeedFewMappings) {
  if (!StackPool::KernelHasMadviseGuard()) {
    GTEST_SKIP() << "the kernel lacks MADV_GUARD_INSTALL (Linux >= 6.13)";
  }
  constexpr int kStacks = 10'000;
  StackPool pool(kDefaultStackSize, GuardMode::kMadviseGuard);
  std::vector<Stack> stacks(kStacks);
  const int before = CountMappings();
  for (Stack& s : stacks) ASSERT_TRUE(pool.Allocate(&s));
  const int after = CountMappings();
  EXPECT_EQ(pool.guard_mode(), GuardMode::kMadviseGuard) << "fell back from madvise guards";
  for (const Stack& s : stacks) EXPECT_TRUE(s.guarded);
  EXPECT_LT(after - before, 50) << "with MADV_GUARD_INSTALL a guard must not split the mapping ("
                                << pool.chunk_count() << " chunks)";
  for (const Stack& s : stacks) pool.Release(s);
}

TEST(StackPoolTest, MprotectGuardsCostAboutTwoMappingsPerStack) {
  constexpr int kStacks = 1000;
  StackPool pool(kDefaultStackSize, GuardMode::kMprotect);
  std::vector<Stack> stacks(kStacks);
  const int before = CountMappings();
  for (Stack& s : stacks) ASSERT_TRUE(pool.Allocate(&s));
  const int after = CountMappings();
  EXPECT_EQ(pool.guard_mode(), GuardMode::kMprotect);
  for (const Stack& s : stacks) EXPECT_TRUE(s.guarded);
  // [guard][stack] per slot: two VMAs each (the last stack merges with the chunk's unused tail).
  EXPECT_GE(after - before, 2 * kStacks - 10);
  EXPECT_LE(after - before, 2 * kStacks + 10);
  for (const Stack& s : stacks) pool.Release(s);
}

// --- Memory ------------------------------------------------------------------------------------

TEST(StackPoolTest, CommitsOnlyThePagesAStackTouches) {
  constexpr int kStacks = 1000;
  StackPool pool(kDefaultStackSize);
  std::vector<Stack> stacks(kStacks);
  for (Stack& s : stacks) ASSERT_TRUE(pool.Allocate(&s));
  const long before = ResidentPages();
  ASSERT_GT(before, 0);
  // What an idle goroutine does: a few frames at the top of its stack.
  for (const Stack& s : stacks) std::memset(s.hi() - 512, 1, 512);
  const long grown = ResidentPages() - before;
  const long stack_pages = static_cast<long>(pool.stack_size() / pool.page_size());
  // About one page each (the measurement must see them), never anything like the whole stack.
  EXPECT_GE(grown, kStacks * 9 / 10);
  EXPECT_LT(grown, 3 * kStacks) << "each stack of " << stack_pages << " pages cost "
                                << static_cast<double>(grown) / kStacks << " pages";
  for (const Stack& s : stacks) pool.Release(s);
}

TEST(StackPoolTest, ReleaseReturnsTouchedPagesToTheKernel) {
  constexpr size_t kBig = 4 << 20;  // 1,024 pages of 4 KiB
  StackPool pool(kBig);
  Stack s;
  ASSERT_TRUE(pool.Allocate(&s));
  const long pages = static_cast<long>(s.size / pool.page_size());
  const long before = ResidentPages();
  std::memset(s.lo, 7, s.size);
  const long touched = ResidentPages();
  EXPECT_GE(touched - before, pages * 9 / 10);
  pool.Release(s);
  const long released = ResidentPages();
#if defined(GREENLINE_ASAN)
  // Release unpoisons the stack, which commits its ASan shadow: one page per eight released.
  EXPECT_GE(touched - released, pages * 3 / 4) << "Release kept the pages resident";
#else
  EXPECT_GE(touched - released, pages * 9 / 10) << "Release kept the pages resident";
#endif
}

// --- Guard modes -------------------------------------------------------------------------------

TEST(StackPoolTest, AutoModeFollowsTheKernelAndTheEnvironment) {
  {
    ScopedEnv env("GREENLINE_STACK_GUARD", nullptr);
    EXPECT_EQ(StackPool(kDefaultStackSize).guard_mode(),
              StackPool::KernelHasMadviseGuard() ? GuardMode::kMadviseGuard : GuardMode::kMprotect);
  }
  {
    ScopedEnv env("GREENLINE_STACK_GUARD", "mprotect");
    EXPECT_EQ(StackPool(kDefaultStackSize).guard_mode(), GuardMode::kMprotect);
    // An explicit mode wins over the environment.
    EXPECT_EQ(StackPool(kDefaultStackSize, GuardMode::kCanary).guard_mode(), GuardMode::kCanary);
  }
  {
    ScopedEnv env("GREENLINE_STACK_GUARD", "madvise");
    EXPECT_EQ(StackPool(kDefaultStackSize).guard_mode(), GuardMode::kMadviseGuard);
  }
}

TEST(StackPoolTest, GuardModesHaveDistinctNames) {
  const GuardMode modes[] = {GuardMode::kAuto, GuardMode::kMadviseGuard, GuardMode::kMprotect,
                             GuardMode::kCanary};
  std::vector<std::string> names;
  for (GuardMode m : modes) {
    ASSERT_NE(GuardModeName(m), nullptr);
    names.emplace_back(GuardModeName(m));
    EXPECT_FALSE(names.back().empty());
  }
  std::sort(names.begin(), names.end());
  EXPECT_EQ(std::unique(names.begin(), names.end()), names.end());
}

// --- Canaries ----------------------------------------------------------------------------------

TEST(StackTest, CanaryIntactUntilTheLowestWordIsOverwritten) {
  alignas(16) static char buffer[4096];
  Stack s;
  s.lo = buffer;
  s.size = sizeof buffer;
  s.guarded = false;
  std::memcpy(buffer, &kStackCanary, sizeof kStackCanary);
  EXPECT_TRUE(s.CanaryIntact());
  std::memset(buffer + 8, 0xFF, sizeof buffer - 8);  // the rest of the stack is not the canary
  EXPECT_TRUE(s.CanaryIntact());
  buffer[7] ^= 1;  // an overflow reaching the lowest word, by a single bit
  EXPECT_FALSE(s.CanaryIntact());
  buffer[7] ^= 1;
  EXPECT_TRUE(s.CanaryIntact());
  std::memset(buffer, 0, 8);
  EXPECT_FALSE(s.CanaryIntact());
  // A guarded stack has no canary to check.
  s.guarded = true;
  EXPECT_TRUE(s.CanaryIntact());
}

TEST(StackPoolTest, CanaryModeHandsOutUnguardedStacksWithACanary) {
  StackPool pool(kDefaultStackSize, GuardMode::kCanary);
  Stack s;
  ASSERT_TRUE(pool.Allocate(&s));
  EXPECT_FALSE(s.guarded);
  EXPECT_TRUE(s.CanaryIntact());
  uint64_t word;
  std::memcpy(&word, s.lo, sizeof word);
  EXPECT_EQ(word, kStackCanary);
  s.lo[3] = 0;  // an overflow
  EXPECT_FALSE(s.CanaryIntact());
  pool.Release(s);
  Stack again;
  ASSERT_TRUE(pool.Allocate(&again));
  ASSERT_EQ(again.lo, s.lo);
  EXPECT_TRUE(again.CanaryIntact()) << "a reused canary stack must get its canary back";
  pool.Release(again);
}

long ReadLongFile(const char* path) {
  std::ifstream in(path);
  long v = -1;
  in >> v;
  return v;
}

TEST(StackPoolDeathTest, FallsBackToCanaryStacksAtTheMappingLimit) {
  if (UnderQemu()) GTEST_SKIP() << "the mapping limit applies to qemu's own process";
  const long max_maps = ReadLongFile("/proc/sys/vm/max_map_count");
  if (max_maps <= 0 || max_maps > 300'000) {
    GTEST_SKIP() << "vm.max_map_count is " << max_maps << ": too many stacks to reach it here";
  }
#if defined(GREENLINE_ASAN) || defined(GREENLINE_TSAN)
  GTEST_SKIP() << "the sanitizer's allocator needs mappings of its own at the limit";
#endif
  // In a child: at the limit, nothing else in the process can map memory either.
  EXPECT_EXIT(
      {
        const size_t limit = static_cast<size_t>(max_maps) / 2 + 2000;
        std::vector<Stack> stacks;
        stacks.reserve(limit);
        StackPool pool(2 * PageSize(), GuardMode::kMprotect);
        Stack s;
        bool unguarded = false;
        for (size_t i = 0; i < limit && pool.Allocate(&s); ++i) {
          stacks.push_back(s);
          if (!s.guarded) {
            unguarded = true;
            break;
          }
        }
        if (!unguarded) _exit(3);
        if (pool.guard_mode() != GuardMode::kCanary) _exit(4);
        if (!s.CanaryIntact()) _exit(5);
        Stack next;
        if (!pool.Allocate(&next) || next.guarded || !next.CanaryIntact()) _exit(6);
        if (!stacks.front().guarded) _exit(7);
        _exit(0);
      },
      testing::ExitedWithCode(0), "vm.max_map_count");
}

// --- Guard pages (Overflow) --------------------------------------------------------------------

// How a process that hit a guard page ends: killed by SIGSEGV, or, under a sanitizer that catches
// the signal, with a report (the message is checked too): exiting non-zero, or aborting when
// ASAN_OPTIONS has abort_on_error=1.
bool DiedOfSegv(int status) {
#if defined(GREENLINE_ASAN) || defined(GREENLINE_TSAN)
  if (WIFSIGNALED(status)) return WTERMSIG(status) == SIGSEGV || WTERMSIG(status) == SIGABRT;
  return WIFEXITED(status) && WEXITSTATUS(status) != 0;
#else
  return WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV;
#endif
}
#if defined(GREENLINE_ASAN) || defined(GREENLINE_TSAN)
constexpr char kSegvReport[] = "SEGV|stack-overflow";
#else
constexpr char kSegvReport[] = "";
#endif

// Allocates a stack in `mode` (after releasing one first, if `reused`), writes its lowest byte,
// then one byte below it. Exits 3 if the stack did not get the guard asked for.
void WriteBelowLo(GuardMode mode, bool reused) {
  StackPool pool(kDefaultStackSize, mode);
  Stack s;
  if (!pool.Allocate(&s)) _exit(3);
  if (reused) {
    pool.Release(s);
    if (!pool.Allocate(&s)) _exit(3);
  }
  if (!s.guarded || pool.guard_mode() != mode) _exit(3);
  volatile char* lo = s.lo;
  lo[0] = 1;
  lo[s.size - 1] = 1;
  lo[-1] = 1;  // must fault
  _exit(0);
}

class StackGuardDeathTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (UnderQemu()) GTEST_SKIP() << "qemu-user accepts guard pages but does not enforce them";
  }
};

TEST_F(StackGuardDeathTest, MadviseGuardStopsAnOverflowOneByteBelowLo) {
  if (!StackPool::KernelHasMadviseGuard()) {
    GTEST_SKIP() << "the kernel lacks MADV_GUARD_INSTALL (Linux >= 6.13)";
  }
  EXPECT_EXIT(WriteBelowLo(GuardMode::kMadviseGuard, false), DiedOfSegv, kSegvReport);
}

TEST_F(StackGuardDeathTest, MprotectGuardStopsAnOverflowOneByteBelowLo) {
  EXPECT_EXIT(WriteBelowLo(GuardMode::kMprotect, false), DiedOfSegv, kSegvReport);
}

TEST_F(StackGuardDeathTest, ReusedStackKeepsItsGuardAgainstOverflow) {
  if (StackPool::KernelHasMadviseGuard()) {
    EXPECT_EXIT(WriteBelowLo(GuardMode::kMadviseGuard, true), DiedOfSegv, kSegvReport);
  }
  EXPECT_EXIT(WriteBelowLo(GuardMode::kMprotect, true), DiedOfSegv, kSegvReport);
}

volatile bool g_keep_recursing = true;

// Frames smaller than a page, so the recursion cannot step over the guard.
__attribute__((noinline)) uint64_t RecurseForever(uint64_t depth) {
  volatile char frame[256];
  frame[0] = static_cast<char>(depth);
  uint64_t below = g_keep_recursing ? RecurseForever(depth + 1) : 0;
  return below + static_cast<unsigned char>(frame[0]);
}

struct Runaway {
  Fiber main;
  Fiber self;
};

void RunawayEntry(void* arg) {
  FiberEntered();
  auto* r = static_cast<Runaway*>(arg);
  RecurseForever(0);
  SwitchFiberFinal(&r->self, &r->main);
}

void OverflowAFiber(GuardMode mode) {
  StackPool pool(kDefaultStackSize, mode);
  Stack s;
  if (!pool.Allocate(&s) || !s.guarded) _exit(3);
  Runaway r;
  InitThreadFiber(&r.main);
  InitFiber(&r.self, s.lo, s.size, s.hi(), &RunawayEntry, &r);
  SwitchFiber(&r.main, &r.self);
  _exit(0);
}

TEST_F(StackGuardDeathTest, RunawayRecursionOnAFiberOverflowsIntoTheGuard) {
  if (StackPool::KernelHasMadviseGuard()) {
    EXPECT_EXIT(OverflowAFiber(GuardMode::kMadviseGuard), DiedOfSegv, kSegvReport);
  }
  EXPECT_EXIT(OverflowAFiber(GuardMode::kMprotect), DiedOfSegv, kSegvReport);
}

// --- Sanitizer hygiene -------------------------------------------------------------------------

#if defined(GREENLINE_ASAN)
// A finished goroutine's last frames are abandoned, not unwound: their redzones stay poisoned. A
// stack that comes back from the pool must not carry that poison to its next owner, or ASan reports
// false errors in code that uses the same addresses (uninstrumented frames, interceptors).
TEST(StackPoolTest, ReallocatedStackCarriesNoAsanPoison) {
  StackPool pool(kDefaultStackSize);
  Stack s;
  ASSERT_TRUE(pool.Allocate(&s));
  ASAN_POISON_MEMORY_REGION(s.hi() - 512, 64);  // what an abandoned frame leaves
  pool.Release(s);
  Stack again;
  ASSERT_TRUE(pool.Allocate(&again));
  ASSERT_EQ(again.lo, s.lo);
  EXPECT_EQ(__asan_region_is_poisoned(again.lo, again.size), nullptr);
  UnpoisonStack(again.lo, again.size);
  pool.Release(again);
}

// ASan keeps the shadow of unmapped memory: whatever is mapped next at a destroyed pool's address
// would inherit its stacks' poison.
TEST(StackPoolTest, DestroyedPoolLeavesNoAsanPoisonBehind) {
  char* lo = nullptr;
  size_t size = 0;
  {
    StackPool pool(kDefaultStackSize);
    Stack s;
    ASSERT_TRUE(pool.Allocate(&s));
    lo = s.lo;
    size = s.size;
    ASAN_POISON_MEMORY_REGION(s.hi() - 512, 64);
    pool.Release(s);
  }
  void* p = mmap(lo, size, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  if (p != lo) {
    if (p != MAP_FAILED) munmap(p, size);
    GTEST_SKIP() << "could not map the pool's old address again";
  }
  EXPECT_EQ(__asan_region_is_poisoned(lo, size), nullptr);
  UnpoisonStack(lo, size);
  munmap(lo, size);
}
#endif

// --- Concurrency -------------------------------------------------------------------------------

TEST(StackPoolTest, StressConcurrentAllocateAndRelease) {
  constexpr int kThreads = 4, kIterations = 3000, kHeld = 8;
  StackPool pool(4 * PageSize());
  std::vector<std::thread> threads;
  std::vector<int> failures(kThreads, 0);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&pool, &failures, t] {
      std::vector<Stack> held;
      for (int i = 0; i < kIterations; ++i) {
        Stack s;
        if (!pool.Allocate(&s)) {
          ++failures[t];
          continue;
        }
        // Tag both ends: a stack handed to two owners at once shows up as a foreign tag.
        const uint64_t tag = static_cast<uint64_t>(t) << 32 | static_cast<uint64_t>(i);
        std::memcpy(s.hi() - sizeof tag, &tag, sizeof tag);
        std::memcpy(s.lo + 64, &tag, sizeof tag);
        held.push_back(s);
        if (held.size() == kHeld || i + 1 == kIterations) {
          for (const Stack& h : held) {
            uint64_t top, bottom;
            std::memcpy(&top, h.hi() - sizeof top, sizeof top);
            std::memcpy(&bottom, h.lo + 64, sizeof bottom);
            if (top != bottom || top >> 32 != static_cast<uint64_t>(t)) ++failures[t];
            pool.Release(h);
          }
          held.clear();
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(failures[t], 0) << "thread " << t;
  EXPECT_EQ(pool.stacks_handed_out(), 0u);
  EXPECT_EQ(pool.chunk_count(), 1u) << "at most 32 stacks were out at once";
}

}  // namespace
}  // namespace greenline
