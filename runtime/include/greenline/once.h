// Once: Go's sync.Once. Runs a function exactly once, however many goroutines ask.
//
//   greenline::Once init_once;
//   Config* config;  // written once, inside Do
//
//   const Config& GetConfig() {
//     init_once.Do([] { config = LoadConfig(); });
//     return *config;  // every caller sees what the function wrote
//   }
//
// Overview. The first Do runs `f`; every Do, concurrent or later, returns only once that call of
// `f` has completed, and sees everything `f` did. A later Do with another function does nothing:
// the Once is spent. Callers that arrive while `f` runs wait on a Mutex, parking the goroutine
// ("sync.Mutex.Lock", never blocking the OS thread). After the first call, Do is one acquire load.
//
// If `f` throws, the Once is spent all the same (Go: "if f panics, Do considers it to have
// returned"): the exception propagates to the caller whose Do ran `f`, and no later Do runs
// anything.
//
// Where from. Any goroutine; from a plain thread too (waiting then polls; see mutex.h). Calling Do
// on the same Once from inside `f` waits forever (Go: a deadlock).
#pragma once

#include <atomic>
#include <type_traits>

#include "greenline/mutex.h"

namespace greenline {

class Once {
 public:
  Once() = default;
  Once(const Once&) = delete;
  Once& operator=(const Once&) = delete;

  // Calls `f()` if no Do of this Once has run yet; in every case returns after that one call has
  // completed. May block (while another goroutine runs `f`).
  template <class F>
  void Do(F&& f) {
    if (done_.load(std::memory_order_acquire)) return;
    // `f` may be a const callable: erase its constness here, restore it in the trampoline.
    DoSlow([](void* p) { (*static_cast<std::remove_reference_t<F>*>(p))(); },
           const_cast<void*>(static_cast<const void*>(&f)));
  }

  // True once some Do has run its function (returned or thrown). A snapshot, for tests.
  bool done() const { return done_.load(std::memory_order_acquire); }

 private:
  void DoSlow(void (*call)(void*), void* f);

  // Set (release) after `f` has returned or thrown, under m_; read with acquire by the fast path,
  // so a caller that sees it also sees what `f` wrote.
  std::atomic<bool> done_{false};
  Mutex m_;  // held while `f` runs: later callers wait here
};

}  // namespace greenline
