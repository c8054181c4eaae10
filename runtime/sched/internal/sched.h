// The scheduler's shared structures: workers (Go's P, each with its own OS thread: P and M are one
// here) and the global state. Internal to runtime/sched; the design essay is atop scheduler.cc.
#pragma once

#include <pthread.h>
#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <latch>
#include <memory>
#include <thread>
#include <vector>

#include "greenline/internal/spinlock.h"
#include "greenline/runtime.h"
#include "greenline/state.h"
#include "greenline/thread_annotations.h"
#include "runtime/base/os_mutex.h"
#include "runtime/base/runtime_internal.h"
#include "runtime/fiber/fiber.h"
#include "runtime/fiber/stack.h"
#include "runtime/sched/internal/g.h"
#include "runtime/sched/poller.h"
#include "runtime/sched/start.h"
#include "runtime/sched/timer.h"

namespace greenline::internal {

inline constexpr uint32_t kRunQueueSize = 256;  // Go's runq length
inline constexpr int kNumReasons = static_cast<int>(WaitReason::kCount);
inline constexpr int kMaxLocalFreeGs = 64;
// Free stacks a worker keeps for itself: an exiting goroutine's stack is the next starting one's,
// still hot in cache and TLB.
inline constexpr int kMaxLocalStacks = 32;
// Free stacks stay committed for reuse; beyond this many in the global pool, the monitor gives the
// pages of stacks that stayed idle back to the kernel over time (half per pass, like Go's
// scavenger).
inline constexpr int64_t kMaxPooledStacks = 4096;

// What a goroutine that switches out asks the next context to do with it once its registers are
// saved (so no other worker can touch it before then). kHibernate is kPark for a goroutine whose
// stack holds nothing to keep (ParkHibernate): the stack is given back as well.
enum class PostAction : uint8_t { kNone, kYield, kPark, kHibernate, kExit };

struct alignas(64) Worker {
  int id = 0;
  Fiber g0;  // the worker thread's own stack: where it schedules and parks. Owned by the thread.
  pthread_t thread{};
  std::atomic<pid_t> tid{0};

  // Executing goroutine. `cur` is owned by the worker thread; cur_goid and schedtick are its
  // public face for the monitor and the dump (relaxed: observations, not synchronisation). The
  // monitor times a goroutine by how long schedtick stays unchanged, so switches read no clock.
  G* cur = nullptr;
  std::atomic<uint64_t> cur_goid{0};
  std::atomic<uint64_t> schedtick{0};
  uint32_t runnext_streak = 0;  // owned: consecutive picks from runnext (see RunqGet)

  // Local run queue: a ring the owner pushes at the tail and pops at the head, and thieves grab
  // half of from the head (CAS on runq_head), as in Go's runqput/runqget/runqgrab. Slots are
  // atomics so a thief's racy read of a slot about to be overwritten is not a data race.
  alignas(64) std::atomic<uint32_t> runq_head{0};  // consumers: owner and thieves (CAS, release)
  std::atomic<uint32_t> runq_tail{0};              // producer: the owner only (store-release)
  std::atomic<G*> runq[kRunQueueSize] = {};
  std::atomic<G*> runnext{nullptr};  // owner sets; owner and thieves take by CAS

  // Set by a goroutine as it switches out, run by whichever context resumes on this worker.
  // Owned by the worker thread.
  G* prev = nullptr;
  PostAction action = PostAction::kNone;
  bool (*commit)(G*, void*) = nullptr;
  void* commit_arg = nullptr;

  // Timers: a 4-ary min-heap under timers_lock. timer0_when (earliest `when`, 0 when empty) and
  // ntimers are written under the lock and read without it (relaxed) as hints.
  alignas(64) SpinLock timers_lock;
  std::vector<Timer*> timers GL_GUARDED_BY(timers_lock);
  std::atomic<int64_t> timer0_when{0};
  std::atomic<int64_t> ntimers{0};

  // Parking: the worker sleeps in its poller (poller.h), which also brings it I/O. Owned by the
  // poller backend and made before the thread starts; Wake() from any thread, the rest from this
  // worker's thread. Whether it is idle is Sched::idle_workers' business.
  WorkerPoller* poller = nullptr;
  // Looking for work, counted in Sched::nspinning. Owned by the worker thread, but for a hand-over
  // the analysis cannot check: a waker that takes this worker off the idle list sets it (under
  // Sched::lock, while the worker sleeps), and the worker reads it once awake.
  bool spinning = false;
  // In its poller's Wait, which reaps completions onto this worker's own queue while the worker is
  // still on the idle list: Ready then wakes nobody (it would have woken this very worker, and
  // cost it one more trip into the kernel); FindRunnable wakes a helper after, if more than one
  // goroutine came. Owned by the worker thread.
  bool in_poller_wait = false;

  // This thread's C++ exception-handling globals (__cxa_get_globals()), set once by the worker
  // thread. Invariant: they hold the running goroutine's state, and are empty while g0 runs.
  EhState* eh_globals = nullptr;

  // Free Gs (never holding a stack) and free committed stacks, owned by the worker thread.
  G* gfree = nullptr;
  int ngfree = 0;
  Stack stack_cache[kMaxLocalStacks];
  int nstack_cache = 0;
  // Goroutine ids handed out in batches from Sched::next_goid.
  uint64_t goid_next = 0, goid_end = 0;
  uint64_t rand_state = 0;

  // State counts of goroutines, written only by this worker thread (load+store, relaxed),
  // summed by readers: live, and parked per wait reason.
  std::atomic<int64_t> live{0};
  std::atomic<int64_t> parked[kNumReasons] = {};

  // Backtrace capture of the executing goroutine on request (SIGURG), for dumps and the monitor.
  std::atomic<int> capture_state{0};  // 0 idle, 1 requested, 2 done
  uintptr_t capture_pcs[64] = {};
  int capture_n = 0;
  uint64_t capture_goid = 0;
};

struct Sched {
  explicit Sched(int workers) : pollers_started(workers) { idle_workers.reserve(workers); }
  Options options;
  // Workers arrive once their poller is set up; none runs a goroutine before all have.
  std::latch pollers_started;
  SchedulerDeps deps;  // the poller backend and the panic report (start.h); set before workers run
  int nworkers = 0;
  std::vector<std::unique_ptr<Worker>> workers;
  std::unique_ptr<StackPool> stacks;
  std::atomic<bool> stopping{false};
  // Nanotime() as of the monitor's last pass (at most ~10 ms old), relaxed: what Park records as
  // a goroutine's wait start. Dumps show waits in whole minutes, and a clock read costs ~30 ns on
  // a VM, as much as a switch (Go also avoids reading the clock on every park).
  std::atomic<int64_t> coarse_now{0};
  // Timers taken out of a heap whose callback (and, for a periodic one, re-arm) has not finished:
  // the deadlock detector must not judge while one may still ready a goroutine. Incremented under
  // the heap lock before the timer leaves the heap (so PendingTimers and this never both read 0
  // for a live timer: the heap count is stored with release, read with acquire), decremented
  // (release) after the callback.
  std::atomic<int64_t> timers_in_flight{0};

  // `lock` guards the global run queue, the idle-worker list, the global G free list and the
  // global stack pool. Never held across a switch or a park; short sections only. The atomics
  // beside them are written under it and read without it as hints (racy by design: a stale value
  // costs a lock taken for nothing, or a look one schedule later).
  OsMutex lock;
  G* grunq_head GL_GUARDED_BY(lock) = nullptr;
  G* grunq_tail GL_GUARDED_BY(lock) = nullptr;
  std::atomic<int64_t> grunq_size{0};  // written under lock; read racily as a hint
  // Idle workers, sleeping in their pollers: the last to go idle is woken first (a stack, as
  // Go's pidle list). Room for every worker is reserved before they start: pushes never allocate.
  std::vector<Worker*> idle_workers GL_GUARDED_BY(lock);
  std::atomic<int> npidle{0};     // idle_workers.size(): written under lock; read racily (Go's)
  std::atomic<int> nspinning{0};  // workers looking for work (Go's sched.nmspinning)
  G* gfree GL_GUARDED_BY(lock) = nullptr;  // global free Gs (no stacks)
  std::atomic<int64_t> ngfree{0};          // its length: written under lock, read as a hint
  std::vector<Stack> free_stacks GL_GUARDED_BY(lock);  // committed free stacks
  int64_t nfree_stacks_low GL_GUARDED_BY(lock) = 0;    // its low-water mark since the last scavenge
  std::atomic<int64_t> nfree_stacks{0};  // free_stacks.size(): written under lock, read as a hint

  // Every G allocated (dump, shutdown).
  OsMutex all_gs_lock;
  std::vector<G*> all_gs GL_GUARDED_BY(all_gs_lock);

  std::atomic<uint64_t> next_goid{1};  // the main goroutine is spawned first: id 1

  // State counts changed by threads that are not workers (a Ready from the blocking pool).
  std::atomic<int64_t> ext_live{0};
  std::atomic<int64_t> ext_parked[kNumReasons] = {};

  // Main goroutine completion.
  OsMutex done_mu;
  OsCondVar done_cv;
  bool main_done GL_GUARDED_BY(done_mu) = false;
};

// The running runtime, or nullptr. Set by Run() before workers start, cleared after they stop.
extern std::atomic<Sched*> g_sched;

// The worker whose thread calls this (nullptr on other threads). Not inlined, and the compiler
// may not cache its result across a call: a goroutine can resume on another worker after any
// switch, so a TLS address computed before a switch may be stale after it.
Worker* CurrentWorker();

// Scheduler entry points shared by the files of runtime/sched.
void RunqPut(Worker* w, G* g, bool next);
void GlobalRunqPut(Sched* s, G* g) GL_EXCLUDES(s->lock);
void Wakep(Sched* s) GL_EXCLUDES(s->lock);
void RunDueTimers(Worker* w, int64_t now);  // fires due timers of w (now: 0 reads it)
int64_t EarliestTimer(Sched* s);            // min over workers; 0 when none
void ClearTimers(Sched* s);                 // at shutdown
bool RunqEmpty(const Worker* w);
// How many goroutines wait on w's queue, runnext included: exact for its owner, a hint for others.
uint32_t RunqSize(const Worker* w);

// Counts.
StateCounts SumStateCounts(const Sched* s);
void CountParked(WaitReason reason, int delta);

// Goroutine dump to `fd` (Go's format).
void DumpGoroutines(int fd);
// Captures the backtrace of whatever w executes (SIGURG to its thread); false on timeout.
bool CaptureRunningBacktrace(Worker* w, uintptr_t* pcs, int* n, uint64_t* goid, int64_t timeout_ns);

// Signals (signals.cc): SIGSEGV stack-overflow reporting, SIGQUIT dump thread, SIGURG capture.
void InstallSignalHandlers(Sched* s);
void StartSignalThread(Sched* s);
void StopSignalThread();
void InstallWorkerAltStack();
void RemoveWorkerAltStack();

// Gives back the pages of up to `max_release` pooled stacks beyond kMaxPooledStacks (half the
// excess per call). Returns how many. Called by the monitor.
int64_t ScavengeStacks(Sched* s, int64_t max_release) GL_EXCLUDES(s->lock);

// Monitor (sysmon.cc).
void StartMonitor(Sched* s);
void StopMonitor();

// Blocking pool (blocking.cc). Drops queued jobs, lets idle threads go, and leaves threads still
// inside a job to finish it without readying anything. True if such jobs remain: their goroutines'
// stacks must stay mapped.
bool StopBlockingPool();

}  // namespace greenline::internal
