// Goroutine states and wait reasons, in Go's vocabulary.
//
// The model: a live goroutine is either *running* or *blocking*. Running covers executing,
// runnable, asleep, and waiting for the network or a system call: something other than a goroutine
// (the clock, the kernel) will move it on. Blocking covers waiting on a channel, select, mutex,
// wait group, condition variable or semaphore: only another goroutine can unblock it. If every
// goroutine is blocking and no timer is pending, none ever will: the runtime reports a deadlock.
#pragma once

#include <cstdint>
#include <string_view>

namespace greenline {

// Where a goroutine is in its life. Stored in an atomic on the goroutine; see sched/internal/g.h.
enum class GStatus : uint8_t {
  kIdle,      // on a free list, no goroutine: the G struct and stack wait to be reused
  kRunnable,  // on a run queue (or in a runnext slot), not executing
  kRunning,   // executing on a worker; exactly one per worker at most
  kWaiting,   // parked; `wait_reason` says on what, and whether that is running or blocking
  kDead,      // finished; being recycled
};

// Why a parked goroutine waits. The names are Go's, as Go prints them in goroutine dumps.
enum class WaitReason : uint8_t {
  kNone,
  // Running-class waits: the clock, the kernel or the blocking pool will wake it.
  kSleep,
  kIOWait,
  kSyscall,
  kTimerGoroutineIdle,
  // Blocking-class waits: only another goroutine can wake it.
  kChanReceive,
  kChanSend,
  kChanReceiveNilChan,
  kChanSendNilChan,
  kSelect,
  kSelectNoCases,
  kSyncMutexLock,
  kSyncRWMutexRLock,
  kSyncRWMutexLock,
  kSyncWaitGroupWait,
  kSyncCondWait,
  kSemacquire,
  kSyncNotifierWait,
  kCount,
};

// "chan receive", "sleep", "IO wait", ... ("" for kNone).
std::string_view WaitReasonName(WaitReason reason);

// "idle", "runnable", "running", "waiting", "dead" (Go's names for its _G states).
std::string_view GStatusName(GStatus status);

// True for waits that only another goroutine can end ("blocking").
constexpr bool IsBlocking(WaitReason reason) {
  return reason >= WaitReason::kChanReceive && reason < WaitReason::kCount;
}

// A snapshot of goroutines by state (the runtime runs none of its own: its monitor, signal and
// blocking-pool threads are threads). Cheap: sums a few counters per worker, no lock. Exact when
// the runtime is quiescent, approximate while goroutines move.
struct StateCounts {
  int64_t live = 0;      // every goroutine not yet exited
  int64_t running = 0;   // executing, runnable, asleep or in a running-class wait (live - blocking)
  int64_t blocking = 0;  // in a blocking-class wait
  int64_t by_reason[static_cast<int>(WaitReason::kCount)] = {};  // parked, per reason
};

// Zeroes when no runtime is running.
StateCounts ReadStateCounts();

}  // namespace greenline
