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
//   BM_ChanPingPong   the benchmark goroutine sends i on unbuffered channel a, an echo goroutine
//                     receives it and sends it back on unbuffered channel c, N times; then a is
//                     closed and the echo goroutine joined. ns/op = per round trip. On one worker
//                     and on two (procs:1, procs:2).
//   BM_BufferedChan   a producer goroutine sends 0..N-1 into a channel of capacity 128, the
//                     benchmark goroutine receives them, then joins the producer. ns/op = per
//                     value.
//   BM_SelectTwoReady one value into each of two channels of capacity 1, Select over two
//                     RecvCases (picks one at random), a plain Recv drains the other; N times.
//                     ns/op = per select (with its two sends and the drain).
//   BM_MutexContended 4 goroutines each Lock a Mutex, increment a shared counter and Unlock,
//                     N/4 times each (N in all), on two workers (on one cooperative worker the
//                     lock is never contended). ns/op = per lock/unlock.
//   BM_Defer          a non-inlined function whose Frame defers one call incrementing a counter,
//                     called N times (no panic). ns/op = per call with its deferred call.
//
// Worker counts: one runtime per process, --procs=N. Run() starts and stops workers, the monitor
// and the stack pool; doing that per iteration would measure start-up, not switching. So main()
// starts ONE runtime with --procs=N workers (default 1; Go's GOMAXPROCS=N) and calls
// RunSpecifiedBenchmarks() on its main goroutine: every benchmark body already runs as a goroutine,
// as a Go benchmark function does. Google Benchmark's own bookkeeping between runs (estimating N,
// printing) runs there too. Each benchmark is defined for given worker counts (kBenchmarks below,
// the same as README.md's table) and is registered as "BM_Name/procs:N" only in a process started
// with --procs=N; compare.sh runs one invocation per worker count, as Go's -cpu=N sets GOMAXPROCS.
// To run everything by hand: `runtime_bench` (the one-worker set), then `runtime_bench --procs=2`.
// Rejected: one process that runs the registry twice, in a one-worker Run() and then a two-worker
// one. Google Benchmark would then print two reports (two JSON documents on one stdout, which no
// JSON reader takes), complain "Failed to match any benchmarks" for whichever group a filter
// leaves empty, and the context could hold only one greenline_max_procs; one process, one runtime,
// one report avoids all three. A benchmark that needs another worker count (BM_MutexContended runs
// on two workers only) is one more row in kBenchmarks and one more row in compare.sh's table.
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
//   - Goroutines a benchmark starts are joined before its timed run ends (a WaitGroup), on both
//     sides: one left parked on a channel would hold the channel, and a goroutine still runnable
//     would run inside the next benchmark's timed region.
//   - The long-run warning is raised: the harness itself runs for many milliseconds on the main
//     goroutine without yielding (spawning N goroutines, printing), which is expected here.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "greenline/chan.h"
#include "greenline/goroutine.h"
#include "greenline/mutex.h"
#include "greenline/panic.h"
#include "greenline/runtime.h"
#include "greenline/wait_group.h"

namespace {

// N for BM_SpawnJoin (README.md says why it is fixed); 0: Google Benchmark picks N by time.
int64_t g_spawn_join_n = 100'000;

// Workers of this process's runtime, and which benchmarks it registers (--procs=N).
int64_t g_procs = 1;

// Runs `body(n)` once inside the timed region, n = the iteration count chosen for this run, and
// reports the goroutine switches it made per unit (TotalSwitches(): goroutines the workers resumed)
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

void BM_ChanPingPong(benchmark::State& state) {
  RunN(state, [](int64_t n) {
    auto a = greenline::MakeChan<int64_t>();
    auto c = greenline::MakeChan<int64_t>();
    greenline::WaitGroup wg;
    wg.Add(1);
    greenline::Go([a, c, &wg]() mutable {
      for (int64_t v : a) c.Send(v);
      wg.Done();
    });
    int64_t sum = 0;
    for (int64_t i = 0; i < n; ++i) {
      a.Send(i);
      sum += c.Recv();
    }
    a.Close();
    wg.Wait();
    benchmark::DoNotOptimize(sum);
  });
}

void BM_BufferedChan(benchmark::State& state) {
  RunN(state, [](int64_t n) {
    auto ch = greenline::MakeChan<int64_t>(128);
    greenline::WaitGroup wg;
    wg.Add(1);
    greenline::Go([ch, n, &wg]() mutable {
      for (int64_t i = 0; i < n; ++i) ch.Send(i);
      wg.Done();
    });
    int64_t sum = 0;
    for (int64_t i = 0; i < n; ++i) sum += ch.Recv();
    wg.Wait();
    benchmark::DoNotOptimize(sum);
  });
}

void BM_SelectTwoReady(benchmark::State& state) {
  RunN(state, [](int64_t n) {
    auto a = greenline::MakeChan<int64_t>(1);
    auto c = greenline::MakeChan<int64_t>(1);
    int64_t sum = 0;
    auto take = [&sum](int64_t v) { sum += v; };
    for (int64_t i = 0; i < n; ++i) {
      a.Send(i);
      c.Send(i);
      int chosen = greenline::Select(greenline::RecvCase(a, take), greenline::RecvCase(c, take));
      sum += (chosen == 0 ? c : a).Recv();
    }
    benchmark::DoNotOptimize(sum);
  });
}

void BM_MutexContended(benchmark::State& state) {
  RunN(state, [](int64_t n) {
    constexpr int kGoroutines = 4;
    greenline::Mutex mu;
    int64_t counter = 0;  // guarded by mu
    greenline::WaitGroup wg;
    for (int g = 0; g < kGoroutines; ++g) {
      int64_t times = n / kGoroutines + (g < n % kGoroutines ? 1 : 0);
      wg.Add(1);
      greenline::Go([&mu, &counter, &wg, times] {
        for (int64_t i = 0; i < times; ++i) {
          mu.Lock();
          ++counter;
          mu.Unlock();
        }
        wg.Done();
      });
    }
    wg.Wait();
    if (counter != n) std::abort();  // a broken mutex must not produce a number
    benchmark::DoNotOptimize(counter);
  });
}

// One function call that defers one call (no panic): what every handler with a cleanup pays.
__attribute__((noinline)) void DeferOnce(int64_t* x) {
  greenline::Frame([x](greenline::Defer& defer) { defer([x] { ++*x; }); });
}

void BM_Defer(benchmark::State& state) {
  RunN(state, [](int64_t n) {
    int64_t x = 0;
    for (int64_t i = 0; i < n; ++i) DeferOnce(&x);
    if (x != n) std::abort();
    benchmark::DoNotOptimize(x);
  });
}

// Every benchmark with the worker count it is defined for: README.md's table, one row per pair
// that compare.sh runs. A process started with --procs=N registers the rows with procs == N, as
// "BM_Name/procs:N".
struct BenchmarkDef {
  const char* name;
  void (*fn)(benchmark::State&);
  int64_t procs;
  const int64_t* fixed_n;  // non-null: run at this N when it is > 0 (else N is chosen by time)
};

const BenchmarkDef kBenchmarks[] = {
    {"BM_YieldPingPong", BM_YieldPingPong, 1, nullptr},
    {"BM_SpawnJoin", BM_SpawnJoin, 1, &g_spawn_join_n},
    {"BM_SleepWake", BM_SleepWake, 1, nullptr},
    {"BM_ChanPingPong", BM_ChanPingPong, 1, nullptr},
    {"BM_ChanPingPong", BM_ChanPingPong, 2, nullptr},
    {"BM_BufferedChan", BM_BufferedChan, 1, nullptr},
    {"BM_SelectTwoReady", BM_SelectTwoReady, 1, nullptr},
    {"BM_MutexContended", BM_MutexContended, 2, nullptr},
    {"BM_Defer", BM_Defer, 1, nullptr},
};

// Registers the benchmarks defined for `procs` workers; returns how many.
int RegisterFor(int64_t procs) {
  int registered = 0;
  for (const BenchmarkDef& def : kBenchmarks) {
    if (def.procs != procs) continue;
    const std::string name = std::string(def.name) + "/procs:" + std::to_string(procs);
    auto* b = benchmark::RegisterBenchmark(name.c_str(), def.fn)->UseRealTime();
    if (def.fixed_n != nullptr && *def.fixed_n > 0) b->Iterations(*def.fixed_n);
    ++registered;
  }
  return registered;
}

// Parses "--flag=V" into *out if argv_i starts with `flag` ("--flag="). Returns false when it does
// not; exits on a malformed or too small value.
bool ParseIntFlag(const char* argv_i, const char* flag, int64_t min, int64_t* out) {
  const size_t len = std::strlen(flag);
  if (std::strncmp(argv_i, flag, len) != 0) return false;
  char* end = nullptr;
  long long v = std::strtoll(argv_i + len, &end, 10);
  if (end == argv_i + len || *end != '\0' || v < min) {
    std::fprintf(stderr, "runtime_bench: bad %s (an integer >= %lld)\n", argv_i,
                 static_cast<long long>(min));
    std::exit(1);
  }
  *out = v;
  return true;
}

// Takes --spawn_join_n=N and --procs=N out of argv (Google Benchmark rejects flags it does not
// know).
void ParseOwnFlags(int* argc, char** argv) {
  int out = 1;
  for (int i = 1; i < *argc; ++i) {
    if (ParseIntFlag(argv[i], "--spawn_join_n=", 0, &g_spawn_join_n)) continue;
    if (ParseIntFlag(argv[i], "--procs=", 1, &g_procs)) continue;
    argv[out++] = argv[i];
  }
  *argc = out;
  argv[out] = nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  ParseOwnFlags(&argc, argv);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  if (RegisterFor(g_procs) == 0) {
    std::fprintf(stderr,
                 "runtime_bench: no benchmark is defined for --procs=%lld (see README.md)\n",
                 static_cast<long long>(g_procs));
    return 1;
  }
  benchmark::AddCustomContext("greenline_max_procs", std::to_string(g_procs));
  greenline::Options options;
  options.max_procs = static_cast<int>(g_procs);    // Go's GOMAXPROCS=N
  options.long_run_warning_ns = 3'600'000'000'000;  // see the essay: the harness runs long
  greenline::Run([] { benchmark::RunSpecifiedBenchmarks(); }, options);
  benchmark::Shutdown();
  return 0;
}
