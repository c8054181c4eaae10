// runtime_bench: the runtime's hot paths under Google Benchmark, twin of go/runtime_bench_test.go.
//
// Units. Each benchmark is given N (Go's b.N; here the iteration count Google Benchmark chose) and
// does N units of work in one timed run, so time / N is the cost of one unit. The definitions are
// in README.md and are the same on both sides:
//   BM_YieldPingPong  two goroutines, one yielding ceil(N/2) times and the other floor(N/2) times,
//                     alternate on one worker; every Yield() is one switch. ns/op = per switch.
//   BM_SpawnJoin      Add(N) on one WaitGroup, spawn N goroutines that each call Done(), Wait()
//                     once, after one untimed round of the same N. ns/op = per goroutine (spawn,
//                     first switch in, exit, its share of the join).
//   BM_SleepWake      Sleep(1 ns), N times in a row. ns/op = per sleep (park, timer, wake).
//
// One runtime for the whole binary. Run() starts and stops workers, the monitor and the stack
// pool; doing that per iteration would measure start-up, not switching. So main() starts ONE
// runtime with one worker (Go's GOMAXPROCS=1) and calls RunSpecifiedBenchmarks() on its main
// goroutine: every benchmark body already runs as a goroutine, as a Go benchmark function does.
// Google Benchmark's own bookkeeping between runs (estimating N, printing) runs there too.
//
// Pitfalls, for the next engineer:
//   - Each benchmark runs its body exactly once per N (KeepRunningBatch(N) returns true once), so
//     the timed region is "all N units plus the constant start and join", like Go's b.N loop.
//   - UseRealTime(): the main goroutine parks (Wait, Sleep), so the worker thread's CPU time is
//     not the elapsed time; Go reports wall time, and N must be chosen on wall time too.
//   - BM_SpawnJoin keeps all N goroutines alive at once (nothing preempts the spawner), so its
//     cost could depend on N; it runs at a fixed N, the same on both sides (--spawn_join_n=N here,
//     default 100,000; -benchtime=Nx in Go), rather than at whatever N each harness would pick by
//     time. Its first round is untimed on both sides: a cold runtime allocates its Gs (and Go its
//     stacks) once, which is start-up cost, not spawn cost. Since stacks are bound when a goroutine
//     first runs (sched/internal/g.h), the N queued goroutines hold Gs only, and each runs on the
//     stack the previous one left behind.
//   - The long-run warning is raised: the harness itself runs for many milliseconds on the main
//     goroutine without yielding (spawning N goroutines, printing), which is expected here.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "runtime/sched/goroutine.h"
#include "runtime/sched/runtime.h"
#include "runtime/sync/wait_group.h"

namespace {

// N for BM_SpawnJoin (README.md says why it is fixed); 0: Google Benchmark picks N by time.
int64_t g_spawn_join_n = 100'000;

// Runs `body(n)` once inside the timed region, n = the iteration count chosen for this run, and
// reports the goroutine switches it made per unit (TotalSwitches(): goroutines the worker resumed)
// as the counter switches_per_op, a check that the unit is what README.md says it is.
template <class Body>
void RunN(benchmark::State& state, Body body) {
  const int64_t n = state.max_iterations;
  const uint64_t switches_before = greenline::TotalSwitches();
  while (state.KeepRunningBatch(n)) body(n);
  state.counters["switches_per_op"] =
      static_cast<double>(greenline::TotalSwitches() - switches_before) / static_cast<double>(n);
}

void BM_YieldPingPong(benchmark::State& state) {
  RunN(state, [](int64_t n) {
    greenline::WaitGroup wg;
    wg.Add(2);
    auto yielder = [&wg](int64_t times) {
      for (int64_t i = 0; i < times; ++i) greenline::Yield();
      wg.Done();
    };
    greenline::Go([&yielder, n] { yielder((n + 1) / 2); });
    greenline::Go([&yielder, n] { yielder(n / 2); });
    wg.Wait();
  });
}

void SpawnJoin(int64_t n) {
  greenline::WaitGroup wg;
  wg.Add(n);
  for (int64_t i = 0; i < n; ++i) greenline::Go([&wg] { wg.Done(); });
  wg.Wait();
}

void BM_SpawnJoin(benchmark::State& state) {
  SpawnJoin(state.max_iterations);  // untimed warm-up: the timer starts in KeepRunningBatch
  RunN(state, SpawnJoin);
}

void BM_SleepWake(benchmark::State& state) {
  RunN(state, [](int64_t n) {
    for (int64_t i = 0; i < n; ++i) greenline::Sleep(std::chrono::nanoseconds(1));
  });
}

// Takes --spawn_join_n=N out of argv (Google Benchmark rejects flags it does not know).
bool ParseOwnFlags(int* argc, char** argv) {
  constexpr const char kFlag[] = "--spawn_join_n=";
  int out = 1;
  for (int i = 1; i < *argc; ++i) {
    if (std::strncmp(argv[i], kFlag, sizeof(kFlag) - 1) == 0) {
      char* end = nullptr;
      long long v = std::strtoll(argv[i] + sizeof(kFlag) - 1, &end, 10);
      if (*end != '\0' || v < 0) {
        std::fprintf(stderr, "runtime_bench: bad %s\n", argv[i]);
        return false;
      }
      g_spawn_join_n = v;
      continue;
    }
    argv[out++] = argv[i];
  }
  *argc = out;
  argv[out] = nullptr;
  return true;
}

void RegisterAll() {
  benchmark::RegisterBenchmark("BM_YieldPingPong", BM_YieldPingPong)->UseRealTime();
  auto* spawn = benchmark::RegisterBenchmark("BM_SpawnJoin", BM_SpawnJoin)->UseRealTime();
  if (g_spawn_join_n > 0) spawn->Iterations(g_spawn_join_n);
  benchmark::RegisterBenchmark("BM_SleepWake", BM_SleepWake)->UseRealTime();
}

}  // namespace

int main(int argc, char** argv) {
  if (!ParseOwnFlags(&argc, argv)) return 1;
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  RegisterAll();
  benchmark::AddCustomContext("greenline_max_procs", "1");
  greenline::Options options;
  options.max_procs = 1;                            // Go's GOMAXPROCS=1
  options.long_run_warning_ns = 3'600'000'000'000;  // see the essay: the harness runs long
  greenline::Run([] { benchmark::RunSpecifiedBenchmarks(); }, options);
  benchmark::Shutdown();
  return 0;
}
