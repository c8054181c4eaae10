// Starting the scheduler with what the layers above it provide. For the runtime's composition root
// (run/run.cc, behind greenline::Run), not for applications.
//
// The scheduler depends on no module above it: the poller its workers sleep in (netpoll) and the
// report of a panic that escapes a goroutine (panic) are handed to it here.
#pragma once

#include <cstdint>
#include <functional>

#include "greenline/runtime.h"
#include "runtime/base/runtime_internal.h"
#include "runtime/sched/poller.h"

namespace greenline::internal {

struct SchedulerDeps {
  // Where workers sleep and what brings them I/O. Required; must outlive RunScheduler.
  PollerBackend* pollers = nullptr;
  // Called on a goroutine's outermost frame, inside the catch handler of an exception that escaped
  // it (not a Goexit): reports it and ends the process. Must not return. Required.
  void (*unrecovered_panic)(uint64_t goid) = nullptr;
};

// greenline::Run's body: starts the workers, runs `main_goroutine` as goroutine 1, and returns once
// it has returned and everything is stopped (see runtime.h).
void RunScheduler(std::function<void()> main_goroutine, const Options& options,
                  const SchedulerDeps& deps);

}  // namespace greenline::internal
