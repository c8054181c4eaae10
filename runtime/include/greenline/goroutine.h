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

// What one step of a hibernating goroutine (GoHibernating) asks for when it ends: Done(), or a
// wait that a runtime facility hands out (net::Conn::ResumeWhenReadable). `wait(arg)` runs on the
// goroutine's outermost frame, with nothing of the step left on its stack: it either returns (run
// the next step now) or parks the goroutine without a stack until the next step can run.
struct Resume {
  void (*wait)(void* arg) = nullptr;  // nullptr: the goroutine is finished
  void* arg = nullptr;
  static Resume Done() { return {}; }
};

namespace internal {

// What Goexit() (panic.h) throws. Frames run their deferred calls for it; the goroutine's outermost
// frame (the scheduler's) ends the goroutine.
struct GoexitSignal {};

struct G;
using GoEntry = void (*)(void* callable);   // runs the callable, then destroys it
using GoStep = Resume (*)(void* callable);  // runs one step of the callable; it stays alive

// Takes a goroutine from the pool and reserves `size` bytes aligned to `align` for the callable;
// *storage points there: inside the G when it fits (G::kInlineCallableSize; the stack is then bound
// when the goroutine first runs), else at the top of a stack bound now.
G* PrepareGoroutine(size_t size, size_t align, void** storage);
// Makes a prepared goroutine runnable; returns its id. `destroy` drops an unstarted callable when
// the runtime ends before the goroutine ever ran.
// `step` non-null: a hibernating goroutine (GoHibernating); `run` is then unused.
uint64_t StartGoroutine(G* g, GoEntry run, GoEntry destroy, GoStep step = nullptr);
// Gives back a prepared goroutine whose callable could not be constructed.
void AbandonGoroutine(G* g);

// Callables bigger than this live on the heap rather than atop the goroutine's stack (those of at
// most 64 bytes wait in the G itself).
inline constexpr size_t kMaxInlineCallable = 1024;
// A hibernating goroutine's callable must outlive its stacks: it is kept in the G (at most this
// big and 16-aligned), or boxed on the heap.
inline constexpr size_t kMaxHibernatingCallable = 64;

// Parks the calling goroutine (wait reason "syscall", a running-class wait) while `fn(arg)` runs on
// a thread of the blocking pool; returns when it has.
void RunBlocking(void (*fn)(void*), void* arg);
bool OnGoroutine();

// A prepared goroutine holding its callable, an F made from fn.
template <class F, class Fn>
G* PrepareWith(Fn&& fn) {
  void* storage = nullptr;
  G* g = PrepareGoroutine(sizeof(F), alignof(F), &storage);
  try {
    ::new (storage) F(std::forward<Fn>(fn));
  } catch (...) {
    AbandonGoroutine(g);
    throw;
  }
  return g;
}

template <class Fn>
uint64_t Spawn(Fn&& fn) {
  using F = std::decay_t<Fn>;
  if constexpr (sizeof(F) > kMaxInlineCallable || alignof(F) > 64) {
    return Spawn([boxed = std::make_unique<F>(std::forward<Fn>(fn))] { (*boxed)(); });
  } else {
    G* g = PrepareWith<F>(std::forward<Fn>(fn));
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

template <class Fn>
uint64_t SpawnHibernating(Fn&& fn) {
  using F = std::decay_t<Fn>;
  static_assert(std::is_invocable_r_v<Resume, F&>, "a hibernating goroutine's steps return Resume");
  if constexpr (sizeof(F) > kMaxHibernatingCallable || alignof(F) > 16) {
    return SpawnHibernating(
        [boxed = std::make_unique<F>(std::forward<Fn>(fn))]() -> Resume { return (*boxed)(); });
  } else {
    G* g = PrepareWith<F>(std::forward<Fn>(fn));
    return StartGoroutine(
        g, nullptr, [](void* p) { static_cast<F*>(p)->~F(); },
        [](void* p) -> Resume { return (*static_cast<F*>(p))(); });
  }
}

}  // namespace internal

// Go's `go fn()`: starts `fn` as a new goroutine and returns its id. The callable is moved (or
// copied) onto the new goroutine's stack; it runs on some worker, later. The new goroutine goes in
// the current worker's `runnext` slot, so it runs soon after the caller yields, as in Go.
// A C++ exception escaping `fn` is an unrecovered panic: the process reports it and exits with 2.
template <class Fn>
uint64_t Go(Fn&& fn) {
  return internal::Spawn(std::forward<Fn>(fn));
}

// A goroutine that gives its stack back while it waits, as erlang:hibernate/3 does for a process:
// for servers holding many connections that are idle most of the time. `fn` (a callable returning
// Resume) runs in steps: each call is one step, run to its end on the goroutine's stack, and
// returns either Resume::Done() (the goroutine ends and `fn` is destroyed) or what to wait for
// (net::Conn::ResumeWhenReadable). While it waits the goroutine keeps its id and its place in
// counts, dumps and deadlock detection, like any goroutine waiting on the network, but it has no
// stack: its pages go back to the pool, and the next step starts on a fresh one. So everything a
// step must remember lives in `fn`'s captured state (heap it if it is big), never in locals. A step
// may block in any way a goroutine can (it keeps its stack until it returns); defer, panic and
// recover work within a step, and a panic escaping a step is an unrecovered panic, as in Go().
// If the runtime ends while the goroutine hibernates, `fn` is destroyed then, off any goroutine:
// its destructor may release handles (a Conn) but not park, lock a Mutex or spawn.
template <class Fn>
uint64_t GoHibernating(Fn&& fn) {
  return internal::SpawnHibernating(std::forward<Fn>(fn));
}

// Go's runtime.Gosched: lets other runnable goroutines run; this one stays runnable and goes to the
// back of its worker's run queue. Returns at once when nothing else is runnable.
void Yield();

// Go's time.Sleep: parks this goroutine (wait reason "sleep", running-class) for at least `d`.
// Wakes on time, never early. A zero or negative duration returns at once.
void Sleep(std::chrono::nanoseconds d);

// This goroutine's id (1 is the main goroutine), or 0 when not called from a goroutine.
uint64_t GoroutineId();

// Go's runtime.NumGoroutine: live goroutines.
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
