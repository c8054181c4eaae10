// Waiting on a plain thread (not a goroutine: tests, start-up code, a foreign library's callback),
// which has nothing to park: the sync primitives poll there instead. Internal to runtime/sync.
#pragma once

#include <sched.h>
#include <unistd.h>

#include "runtime/base/runtime_internal.h"

namespace greenline::internal {

// Returns once `done()` is true. sched_yield for the first 100 polls (the wait is usually short: a
// goroutine is about to release), then 50 us sleeps, so a long wait costs little CPU.
template <class Done>
void PollUntil(Done done) {
  for (int polls = 0; !done(); ++polls) {
    if (polls < 100) {
      sched_yield();
    } else {
      usleep(50);
    }
  }
}

}  // namespace greenline::internal
