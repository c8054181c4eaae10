// Goroutines: spawn, yield, sleep, identity, and blocking calls that keep the worker free.
//
// A goroutine is a stackful fiber scheduled by this runtime, not by the OS (see sched/scheduler.cc
// for the design). Cooperative: a goroutine runs until it blocks, sleeps, does I/O, yields or
// exits; the monitor reports one that runs for more than ~10 ms without doing so
// (runtime/HACKING.md).
//
// Everything here may be called from any goroutine. Go() may also be called from a thread that is
// not a worker (the goroutine goes on the global run queue). Yield(), Sleep() and Blocking() called
// outside a goroutine act on the calling OS thread (yield, nanosleep, a direct call).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <new>
#include <optional>
#include <type_traits>
#include <utility>

namespace greenline {
namespace internal {

struct G;
using GoEntry = void (*)(void* callable);  // runs the callable, then destroys it

// Takes a goroutine from the pool and reserves `size` bytes aligned to `align` for the callable;
// *storage points there: inside the G when it fits (G::kInlineCallableSize; the stack is then bound
// when the goroutine first runs), else at the top of a stack bound now. `system` goroutines (the
// runtime's own, such as the signal or HTTP goroutines) are left out of counts and deadlock
// detection, as Go's are.
G* PrepareGoroutine(size_t size, size_t align, void** storage, bool system);
// Makes a prepared goroutine runnable; returns its id. `destroy` drops an unstarted callable when
// the runtime ends before the goroutine ever ran.
uint64_t StartGoroutine(G* g, GoEntry run, GoEntry destroy);
// Gives back a prepared goroutine whose callable could not be constructed.
void AbandonGoroutine(G* g);

// Callables bigger than this live on the heap rather than atop the goroutine's stack (those of at
// most 64 bytes wait in the G itself).
inline constexpr size_t kMaxInlineCallable = 1024;

// Parks the calling goroutine (wait reason "syscall", a running-class wait) while `fn(arg)` runs on
// a thread of the blocking pool; returns when it has.
void RunBlocking(void (*fn)(void*), void* arg);
bool OnGoroutine();

template <class Fn>
uint64_t Spawn(Fn&& fn, bool system) {
  using F = std::decay_t<Fn>;
  if constexpr (sizeof(F) > kMaxInlineCallable || alignof(F) > 64) {
    return Spawn([boxed = std::make_unique<F>(std::forward<Fn>(fn))] { (*boxed)(); }, system);
  } else {
    void* storage = nullptr;
    G* g = PrepareGoroutine(sizeof(F), alignof(F), &storage, system);
    try {
      ::new (storage) F(std::forward<Fn>(fn));
    } catch (...) {
      AbandonGoroutine(g);
      throw;
    }
    return StartGoroutine(
        g,
        [](void* p) {
          F* f = static_cast<F*>(p);
          (*f)();
          f->~F();
        },
        [](void* p) { static_cast<F*>(p)->~F(); });
  }
}

}  // namespace internal

// Go's `go fn()`: starts `fn` as a new goroutine and returns its id. The callable is moved (or
// copied) onto the new goroutine's stack; it runs on some worker, later. The new goroutine goes in
// the current worker's `runnext` slot, so it runs soon after the caller yields, as in Go.
// A C++ exception escaping `fn` is an unrecovered panic: the process reports it and exits with 2.
template <class Fn>
uint64_t Go(Fn&& fn) {
  return internal::Spawn(std::forward<Fn>(fn), /*system=*/false);
}

// Go's runtime.Gosched: lets other runnable goroutines run; this one stays runnable and goes to the
// back of its worker's run queue. Returns at once when nothing else is runnable.
void Yield();

// Go's time.Sleep: parks this goroutine (wait reason "sleep", running-class) for at least `d`.
// Wakes on time, never early. A zero or negative duration returns at once.
void Sleep(std::chrono::nanoseconds d);

// This goroutine's id (1 is the main goroutine), or 0 when not called from a goroutine.
uint64_t GoroutineId();

// Go's runtime.NumGoroutine: live user goroutines (system goroutines are not counted).
int64_t NumGoroutine();

// Runs `fn` (a call that blocks its OS thread: a blocking library, getaddrinfo, a disk read) on the
// runtime's blocking pool, parking only this goroutine (wait reason "syscall", running-class) so
// its worker keeps running the others. Returns fn's result; an exception from fn is rethrown here.
// Outside a goroutine it simply calls fn.
template <class Fn>
auto Blocking(Fn&& fn) -> std::invoke_result_t<Fn&> {
  using R = std::invoke_result_t<Fn&>;
  if (!internal::OnGoroutine()) return fn();
  struct Call {
    Fn* fn;
    std::conditional_t<std::is_void_v<R>, bool, std::optional<R>> result{};
    std::exception_ptr error;
  } call{&fn, {}, nullptr};
  internal::RunBlocking(
      [](void* p) {
        Call* c = static_cast<Call*>(p);
        try {
          if constexpr (std::is_void_v<R>) {
            (*c->fn)();
          } else {
            c->result.emplace((*c->fn)());
          }
        } catch (...) {
          c->error = std::current_exception();
        }
      },
      &call);
  if (call.error) std::rethrow_exception(call.error);
  if constexpr (!std::is_void_v<R>) return std::move(*call.result);
}

}  // namespace greenline
