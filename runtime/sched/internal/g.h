// G: the runtime's record of one goroutine (Go's g). Internal to runtime/sched.
//
// A G is allocated once and recycled: when its goroutine exits, the G keeps its stack and goes to
// its worker's free list (then to the global one), so spawning in steady state costs no system call
// and no allocation; the monitor gives back the pages of stacks that stay idle (ScavengeStacks).
// Every G ever allocated is listed in Sched::all_gs (for dumps, shutdown), as in Go's allgs: the
// list grows to the peak number of goroutines and is freed when the runtime stops.
//
// Ownership of fields:
//   - fiber, entry, callable: written by the creator before the G is published, then only by the
//     worker executing the goroutine. A suspended G's fiber.ctx is read by the dump (racy by
//     design, bounded reads).
//   - status, wait_reason, wait_since: atomics; written by the goroutine's own worker or by the
//     thread that readies it; read by the dump and the monitor (relaxed).
//   - sched_link: by whichever queue holds the G, under that queue's protection.
#pragma once

#include <atomic>
#include <cstdint>

#include "runtime/fiber/fiber.h"
#include "runtime/fiber/stack.h"
#include "runtime/sched/goroutine.h"
#include "runtime/sched/state.h"
#include "runtime/sched/timer.h"

namespace greenline::internal {

struct G {
  Fiber fiber;
  Stack stack;
  uint64_t id = 0;
  bool system = false;
  bool started = false;  // the entry began running; written by the executing worker only
  std::atomic<GStatus> status{GStatus::kIdle};
  std::atomic<WaitReason> wait_reason{WaitReason::kNone};
  std::atomic<int64_t> wait_since{0};  // Nanotime() when it parked
  GoEntry run = nullptr;               // runs and destroys the callable
  GoEntry destroy = nullptr;           // destroys an unstarted callable
  void* callable = nullptr;            // atop the stack (or boxed on the heap by Spawn)
  G* sched_link = nullptr;             // global run queue, free lists
  Timer sleep_timer;                   // Sleep's timer: fn readies this G
  int32_t all_index = -1;              // position in Sched::all_gs
};

}  // namespace greenline::internal
