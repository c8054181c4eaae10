// A fiber: a Context plus the stack it runs on, switched with sanitizer annotations.
//
// Every switch between goroutines, and between a goroutine and its worker's own stack, goes through
// SwitchFiber() so that AddressSanitizer and ThreadSanitizer follow it:
//   - ASan: __sanitizer_start_switch_fiber before the switch names the destination stack, and
//     __sanitizer_finish_switch_fiber after it (in the fiber that resumes) completes it; without
//     them ASan's stack-use checks and fake stacks would see one thread jumping across stacks and
//     report false errors. A fiber switching away for the last time passes no fake-stack slot, so
//     ASan frees its fake stack.
//   - TSan: each fiber has a TSan fiber (__tsan_create_fiber) and every switch calls
//     __tsan_switch_to_fiber, which also orders the two sides (happens-before), as a handoff
//     should.
// In builds without sanitizers all of this compiles away and a switch is the bare assembly.
#pragma once

#include <cstddef>

#include "runtime/base/runtime_internal.h"
#include "runtime/fiber/context.h"

namespace greenline {

struct Fiber {
  Context ctx{};
  // Stack bounds [stack_lo, stack_lo + stack_size): told to ASan, used to bound stack walks.
  void* stack_lo = nullptr;
  size_t stack_size = 0;
  void* asan_fake_stack = nullptr;  // ASan's per-fiber fake stack handle while switched out
  void* tsan_fiber = nullptr;       // TSan's fiber, created once per Fiber
};

// Initialises `f` to run entry(arg) on [stack_lo, stack_lo + stack_size) when first switched to.
// The callable area above `top` (if top < stack end) is left alone. Reuses f's TSan fiber if it has
// one. entry must never return; its first act must be FiberEntered().
void InitFiber(Fiber* f, void* stack_lo, size_t stack_size, void* top, void (*entry)(void*),
               void* arg);

// Describes the calling OS thread's own stack as a Fiber (a worker's scheduling context: Go's g0),
// so goroutines can switch back to it.
void InitThreadFiber(Fiber* f);

// Switches from the running fiber `from` to `to`, handing it `transfer`. Returns when something
// switches back to `from`, with the value that switcher handed over.
void* SwitchFiber(Fiber* from, Fiber* to, void* transfer = nullptr);

// Switches away from `from` for the last time (it is finished; its stack may be reused once the
// switch is complete). Never returns.
[[noreturn]] void SwitchFiberFinal(Fiber* from, Fiber* to, void* transfer = nullptr);

// Must be the first call in a new fiber's entry function: completes the switch into it.
void FiberEntered();

// Releases sanitizer state of a fiber that will never run again (not the running one).
void DestroyFiber(Fiber* f);

// Tells ASan that a reused stack holds no live frames any more (an abandoned or finished fiber
// leaves its frames' redzones poisoned). No-op without ASan.
void UnpoisonStack(void* lo, size_t size);

}  // namespace greenline
