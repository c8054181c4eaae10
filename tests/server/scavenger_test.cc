// Tests for server/scavenger.h: memory a burst freed below a chunk still in use (where glibc's own
// trim of the heap's top cannot reach) goes back to the kernel at the next check, and a heap whose
// free part is small is left alone; Run checks each period until Stop.
#include "server/scavenger.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <vector>

#include "greenline/goroutine.h"
#include "greenline/runtime.h"
#include "greenline/wait_group.h"

namespace greenline::server {
namespace {

using namespace std::chrono_literals;

long ResidentBytes() {
  long pages = 0, resident = 0;
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return -1;
  if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = -1;
  std::fclose(f);
  return resident * sysconf(_SC_PAGESIZE);
}

// ASan and TSan bring their own allocator: glibc's totals and trim do not see it.
#if defined(GREENLINE_ASAN) || defined(GREENLINE_TSAN)
#define SKIP_UNDER_SANITIZERS() GTEST_SKIP() << "the sanitizer's allocator replaces glibc's"
#else
#define SKIP_UNDER_SANITIZERS() (void)0
#endif

TEST(HeapScavengerTest, GivesBackWhatABurstFreedBelowALiveChunk) {
  SKIP_UNDER_SANITIZERS();
  greenline::Run([] {
    HeapScavenger scavenger;
    // Blocks under glibc's mmap threshold come from the heap; the last stays, so the freed ones
    // lie below a live chunk and free() alone keeps them resident.
    constexpr size_t kBlock = 64 << 10, kBlocks = 1600;  // 100 MiB
    std::vector<char*> blocks;
    for (size_t i = 0; i < kBlocks; ++i) {
      blocks.push_back(static_cast<char*>(std::malloc(kBlock)));
      std::memset(blocks.back(), 1, kBlock);
    }
    for (size_t i = 0; i + 1 < kBlocks; ++i) std::free(blocks[i]);
    long before = ResidentBytes();
    EXPECT_TRUE(scavenger.ScavengeOnce());
    long after = ResidentBytes();
    EXPECT_GT(before - after, 64L << 20) << "RSS " << before << " -> " << after;
    EXPECT_EQ(scavenger.trims(), 1u);
    // Nothing new was freed since: no second trim.
    EXPECT_FALSE(scavenger.ScavengeOnce());
    EXPECT_EQ(scavenger.trims(), 1u);
    std::free(blocks.back());
  });
}

TEST(HeapScavengerTest, RunChecksEachPeriodUntilStopped) {
  SKIP_UNDER_SANITIZERS();
  greenline::Run([] {
    HeapScavenger::Options options;
    options.period = 10ms;
    options.min_free = 1 << 20;  // trims again once the free part moved by 512 KiB
    HeapScavenger scavenger(options);
    WaitGroup running;
    running.Add(1);
    Go([&] {
      scavenger.Run();
      running.Done();
    });
    // Each round frees 2 MiB of heap blocks below a chunk it keeps: the free part grows by more
    // than what is in use could (a fresh test process holds well under that), so each check
    // trims.
    std::vector<void*> held;
    for (int i = 0; i < 500 && scavenger.trims() < 3; ++i) {
      std::vector<void*> burst;
      for (int j = 0; j < 32; ++j) {
        burst.push_back(std::malloc(64 << 10));
        std::memset(burst.back(), 1, 64 << 10);
      }
      held.push_back(std::malloc(64));
      for (void* p : burst) std::free(p);
      Sleep(10ms);
    }
    for (void* p : held) std::free(p);
    EXPECT_GE(scavenger.trims(), 3u);
    scavenger.Stop();
    running.Wait();
    uint64_t last = scavenger.trims();
    Sleep(50ms);
    EXPECT_EQ(scavenger.trims(), last) << "checked after Stop";
  });
}

}  // namespace
}  // namespace greenline::server
