// Goroutine fixtures shared by runtime tests.
#pragma once

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>

#include "greenline/goroutine.h"
#include "greenline/state.h"
#include "greenline/wait_group.h"

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

// User goroutines parked now with `reason`.
inline int64_t ParkedFor(WaitReason reason) {
  return ReadStateCounts().by_reason[static_cast<int>(reason)];
}

// Sleeps in 1 ms steps until `n` goroutines are parked with `reason` (about 5 s at most); true if
// they are. From a goroutine (its sleeps let the others run and park).
inline bool AwaitParked(WaitReason reason, int64_t n) {
  for (int i = 0; i < 5000; ++i) {
    if (ParkedFor(reason) >= n) return true;
    Sleep(std::chrono::milliseconds(1));
  }
  return ParkedFor(reason) >= n;
}

}  // namespace greenline::testing
