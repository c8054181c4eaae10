// Goroutine fixtures shared by runtime tests.
#pragma once

#include <unistd.h>

#include <atomic>

#include "runtime/sched/goroutine.h"
#include "runtime/sync/wait_group.h"

namespace greenline::testing {

// Starts a goroutine that sits in a Blocking() call (wait reason "syscall") until `stop` is set,
// and Done()s `started` once it runs. `call_done` is Add()ed here and Done() when the call has
// returned: the caller must Wait() on it after setting `stop` and before the frame holding `stop`
// goes away, since a pool thread polls `stop` (reading a dead frame once hung a test).
inline void GoBlockedInSyscall(std::atomic<bool>& stop, WaitGroup& started, WaitGroup& call_done) {
  call_done.Add(1);
  Go([&] {
    started.Done();
    Blocking([&] {
      while (!stop) usleep(1000);
    });
    call_done.Done();
  });
}

}  // namespace greenline::testing
