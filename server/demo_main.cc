// greenline runtime demo: goroutines at work, until the server lands.
//
// Starts the runtime on its defaults and keeps three kinds of goroutines busy:
//   - 100,000 "sleepers" that wake at random intervals (timers, parking, idle cost per goroutine);
//   - per worker, a few "crunchers" that compute in slices and yield between them (switching,
//     work stealing across workers);
//   - "callers" that make a blocking call through the blocking pool (the worker stays free).
// Once a second it prints what the runtime is doing. Ctrl-C stops it; `kill -QUIT <pid>` prints a
// goroutine dump and it keeps running.
#include <unistd.h>

#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <random>

#include "runtime/sched/goroutine.h"
#include "runtime/sched/runtime.h"
#include "runtime/sched/state.h"
#include "runtime/sync/wait_group.h"

namespace {

using namespace std::chrono_literals;
using greenline::WaitReason;

long ReadRssKiB() {
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  long pages = 0, rss = 0;
  if (std::fscanf(f, "%ld %ld", &pages, &rss) != 2) rss = 0;
  std::fclose(f);
  return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

void Sleeper(uint64_t seed) {
  std::minstd_rand rng(static_cast<uint32_t>(seed));
  for (;;) greenline::Sleep(std::chrono::milliseconds(200 + rng() % 1800));
}

void Cruncher() {
  volatile uint64_t sink = 0;
  for (uint64_t n = 3;; n += 2) {
    bool prime = true;
    for (uint64_t d = 3; d * d <= n && prime; d += 2) prime = n % d != 0;
    if (prime) sink = n;
    asm volatile("" : : "r"(sink));
    if (n % 64 == 1) greenline::Yield();  // cooperative: a slice stays well under 10 ms
    if (n > 50'000'000) n = 3;
  }
}

void Caller() {
  for (;;) {
    greenline::Blocking([] { usleep(20'000); });  // a call that blocks its OS thread
    greenline::Sleep(100ms);
  }
}

}  // namespace

int main() {
  greenline::Options options;
  options.log_startup = true;
  greenline::Main(
      [] {
        const int workers = greenline::MaxProcs();
        std::printf(
            "greenline runtime demo: %d workers, pid %d (Ctrl-C stops, kill -QUIT %d dumps)\n",
            workers, getpid(), getpid());
        auto t0 = std::chrono::steady_clock::now();
        constexpr int kSleepers = 100'000;
        for (int i = 0; i < kSleepers; ++i) greenline::Go([i] { Sleeper(i); });
        double spawn_ms =
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                .count();
        std::printf("spawned %d sleeping goroutines in %.1f ms; RSS %ld MiB\n", kSleepers, spawn_ms,
                    ReadRssKiB() / 1024);
        for (int i = 0; i < 2 * workers; ++i) greenline::Go(Cruncher);
        for (int i = 0; i < 4; ++i) greenline::Go(Caller);
        std::fflush(stdout);

        uint64_t last = greenline::TotalSwitches();
        for (int second = 1;; ++second) {
          greenline::Sleep(1s);
          uint64_t now = greenline::TotalSwitches();
          greenline::StateCounts c = greenline::ReadStateCounts();
          auto reason = [&](WaitReason r) { return static_cast<long long>(c.by_reason[int(r)]); };
          std::printf(
              "t=%3ds goroutines=%lld running=%lld (asleep %lld, in blocking calls %lld) "
              "blocking=%lld switches/s=%.2fM RSS=%ld MiB\n",
              second, static_cast<long long>(c.live), static_cast<long long>(c.running),
              reason(WaitReason::kSleep), reason(WaitReason::kSyscall),
              static_cast<long long>(c.blocking), (now - last) / 1e6, ReadRssKiB() / 1024);
          std::fflush(stdout);
          last = now;
        }
      },
      options);
}
