#include "runtime/fiber/fiber.h"

#include <pthread.h>

#include <cstdint>

#include "runtime/base/fatal.h"

#if defined(GREENLINE_ASAN)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#if defined(GREENLINE_TSAN)
#include <sanitizer/tsan_interface.h>
#endif

namespace greenline {

void InitContext(Context* ctx, void* stack_top, void (*entry)(void*), void* arg) {
  auto top = reinterpret_cast<uintptr_t>(stack_top) & ~uintptr_t{15};
  *ctx = Context{};
#if defined(__x86_64__)
  ctx->rsp = top;  // gl_context_entry's call pushes the return address: callee sees rsp % 16 == 8
  ctx->rip = reinterpret_cast<uint64_t>(&gl_context_entry);
  ctx->r12 = reinterpret_cast<uint64_t>(entry);
  ctx->r13 = reinterpret_cast<uint64_t>(arg);
  ctx->mxcsr = 0x1F80;  // all SSE exceptions masked, round to nearest
  ctx->x87cw = 0x037F;  // the x87 default after FNINIT
#elif defined(__aarch64__)
  ctx->sp = top;
  ctx->x30 = reinterpret_cast<uint64_t>(&gl_context_entry);
  ctx->x19_x28[0] = reinterpret_cast<uint64_t>(entry);
  ctx->x19_x28[1] = reinterpret_cast<uint64_t>(arg);
  ctx->fpcr = 0;  // round to nearest, no traps
#endif
}

void InitFiber(Fiber* f, void* stack_lo, size_t stack_size, void* top, void (*entry)(void*),
               void* arg) {
  InitContext(&f->ctx, top, entry, arg);
  f->stack_lo = stack_lo;
  f->stack_size = stack_size;
  f->asan_fake_stack = nullptr;
#if defined(GREENLINE_TSAN)
  if (f->tsan_fiber == nullptr) f->tsan_fiber = __tsan_create_fiber(0);
#endif
}

void InitThreadFiber(Fiber* f) {
  *f = Fiber{};
  pthread_attr_t attr;
  if (pthread_getattr_np(pthread_self(), &attr) == 0) {
    void* lo = nullptr;
    size_t size = 0;
    if (pthread_attr_getstack(&attr, &lo, &size) == 0) {
      f->stack_lo = lo;
      f->stack_size = size;
    }
    pthread_attr_destroy(&attr);
  }
#if defined(GREENLINE_TSAN)
  f->tsan_fiber = __tsan_get_current_fiber();
#endif
}

void* SwitchFiber(Fiber* from, Fiber* to, void* transfer) {
#if defined(GREENLINE_ASAN)
  __sanitizer_start_switch_fiber(&from->asan_fake_stack, to->stack_lo, to->stack_size);
#endif
#if defined(GREENLINE_TSAN)
  __tsan_switch_to_fiber(to->tsan_fiber, 0);
#endif
  void* received = gl_context_switch(&from->ctx, &to->ctx, transfer);
#if defined(GREENLINE_ASAN)
  __sanitizer_finish_switch_fiber(from->asan_fake_stack, nullptr, nullptr);
#endif
  return received;
}

void SwitchFiberFinal(Fiber* from, Fiber* to, void* transfer) {
#if defined(GREENLINE_ASAN)
  // No slot for the fake stack: ASan frees it, as this fiber never resumes.
  __sanitizer_start_switch_fiber(nullptr, to->stack_lo, to->stack_size);
#endif
#if defined(GREENLINE_TSAN)
  __tsan_switch_to_fiber(to->tsan_fiber, 0);
#endif
  gl_context_switch(&from->ctx, &to->ctx, transfer);
  Fatal("runtime: a finished fiber was resumed");
}

void FiberEntered() {
#if defined(GREENLINE_ASAN)
  __sanitizer_finish_switch_fiber(nullptr, nullptr, nullptr);
#endif
}

void DestroyFiber(Fiber* f) {
#if defined(GREENLINE_TSAN)
  if (f->tsan_fiber != nullptr) __tsan_destroy_fiber(f->tsan_fiber);
#endif
  f->tsan_fiber = nullptr;
}

void UnpoisonStack([[maybe_unused]] void* lo, [[maybe_unused]] size_t size) {
#if defined(GREENLINE_ASAN)
  ASAN_UNPOISON_MEMORY_REGION(lo, size);
#endif
}

}  // namespace greenline
