// The machine context of a fiber and the hand-written switch between two of them.
//
// Design. A switch is a plain function call, gl_context_switch(from, to), so the compiler already
// treats every caller-saved register as clobbered: the assembly saves only what the ABI says a
// callee must preserve (x86-64: rbx, rbp, r12-r15, rsp; aarch64: x19-x29, x30, sp, d8-d15) plus
// the floating-point control state (MXCSR and the x87 control word; FPCR), which belongs to the
// thread of control, not to the OS thread, so a goroutine that changes its rounding mode keeps it
// across migrations and does not leak it to others. That is 9 loads and 9 stores on x86-64: a few
// nanoseconds, no system call (ucontext's swapcontext makes a sigprocmask syscall per switch and
// is not used anywhere).
//
// The register offsets live in context_offsets.h, read by both the .S files and this header; the
// static_asserts below keep them in step with the struct.
//
// A saved context also gives the frame pointer and program counter of a parked fiber, which is how
// goroutine dumps walk a stack that is not running (every build keeps frame pointers).
#pragma once

#include <cstddef>
#include <cstdint>

#include "runtime/base/runtime_internal.h"
#include "runtime/fiber/context_offsets.h"

namespace greenline {

struct Context {
#if defined(__x86_64__)
  uint64_t rbx, rbp, r12, r13, r14, r15, rsp, rip;
  uint32_t mxcsr;
  uint16_t x87cw;
  uint16_t padding;
#elif defined(__aarch64__)
  uint64_t x19_x28[10];
  uint64_t x29, x30, sp;
  uint64_t d8_d15[8];
  uint64_t fpcr;
#endif
};

#if defined(__x86_64__)
static_assert(offsetof(Context, rbx) == GL_CTX_RBX);
static_assert(offsetof(Context, rbp) == GL_CTX_RBP);
static_assert(offsetof(Context, r12) == GL_CTX_R12);
static_assert(offsetof(Context, r13) == GL_CTX_R13);
static_assert(offsetof(Context, r14) == GL_CTX_R14);
static_assert(offsetof(Context, r15) == GL_CTX_R15);
static_assert(offsetof(Context, rsp) == GL_CTX_RSP);
static_assert(offsetof(Context, rip) == GL_CTX_RIP);
static_assert(offsetof(Context, mxcsr) == GL_CTX_MXCSR);
static_assert(offsetof(Context, x87cw) == GL_CTX_X87CW);
#elif defined(__aarch64__)
static_assert(offsetof(Context, x19_x28) == GL_CTX_X19);
static_assert(offsetof(Context, x19_x28) + 16 == GL_CTX_X21);
static_assert(offsetof(Context, x19_x28) + 32 == GL_CTX_X23);
static_assert(offsetof(Context, x19_x28) + 48 == GL_CTX_X25);
static_assert(offsetof(Context, x19_x28) + 64 == GL_CTX_X27);
static_assert(offsetof(Context, x29) == GL_CTX_X29);
static_assert(offsetof(Context, x30) == GL_CTX_X30);
static_assert(offsetof(Context, sp) == GL_CTX_SP);
static_assert(offsetof(Context, d8_d15) == GL_CTX_D8);
static_assert(offsetof(Context, d8_d15) + 16 == GL_CTX_D10);
static_assert(offsetof(Context, d8_d15) + 32 == GL_CTX_D12);
static_assert(offsetof(Context, d8_d15) + 48 == GL_CTX_D14);
static_assert(offsetof(Context, fpcr) == GL_CTX_FPCR);
#endif
static_assert(sizeof(Context) == GL_CTX_SIZE);

extern "C" {
// Saves the running context into *from and resumes *to, handing it `transfer`. Returns when
// something switches back to *from, with the `transfer` that switcher passed (the scheduler passes
// its worker, so a resumed goroutine learns where it now runs without reading thread-local
// storage). Implemented in context_<arch>.S.
void* gl_context_switch(Context* from, const Context* to, void* transfer = nullptr);
// First instruction of every new context; see InitContext.
void gl_context_entry();
}

// Prepares *ctx so that switching to it calls entry(arg) on the stack whose highest address is
// (the switch's `transfer` arrives as a second argument, for entry functions that take one)
// `stack_top` (exclusive; aligned down to 16 bytes here). `entry` must never return: it ends by
// switching away for good. The new context starts with the default floating-point environment
// (round to nearest, exceptions masked), as a new thread does.
void InitContext(Context* ctx, void* stack_top, void (*entry)(void*), void* arg);

// Frame pointer and resume address of a suspended context, for stack walks.
inline uintptr_t ContextFramePointer(const Context& ctx) {
#if defined(__x86_64__)
  return ctx.rbp;
#else
  return ctx.x29;
#endif
}
inline uintptr_t ContextPc(const Context& ctx) {
#if defined(__x86_64__)
  return ctx.rip;
#else
  return ctx.x30;
#endif
}
inline uintptr_t ContextSp(const Context& ctx) {
#if defined(__x86_64__)
  return ctx.rsp;
#else
  return ctx.sp;
#endif
}

}  // namespace greenline
