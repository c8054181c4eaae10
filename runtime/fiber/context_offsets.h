/* Byte offsets of the registers saved in a Context (fiber/context.h). Shared by the assembly
 * (context_x86_64.S, context_aarch64.S) and by C++, which checks them with static_assert against
 * offsetof(Context, ...), so the two can never drift apart. Plain C preprocessor only: the .S files
 * include this. */
#ifndef GREENLINE_RUNTIME_FIBER_CONTEXT_OFFSETS_H_
#define GREENLINE_RUNTIME_FIBER_CONTEXT_OFFSETS_H_

#if defined(__x86_64__)
/* System V AMD64: callee-saved rbx, rbp, r12-r15, plus rsp, the resume address, and the two
 * floating-point control words (MXCSR for SSE, the x87 control word). */
#define GL_CTX_RBX 0
#define GL_CTX_RBP 8
#define GL_CTX_R12 16
#define GL_CTX_R13 24
#define GL_CTX_R14 32
#define GL_CTX_R15 40
#define GL_CTX_RSP 48
#define GL_CTX_RIP 56
#define GL_CTX_MXCSR 64
#define GL_CTX_X87CW 68
#define GL_CTX_SIZE 72
#elif defined(__aarch64__)
/* AAPCS64: callee-saved x19-x28, the frame pointer x29, the link register x30 (the resume
 * address), sp, the low halves d8-d15 of v8-v15, and the floating-point control register. */
#define GL_CTX_X19 0
#define GL_CTX_X21 16
#define GL_CTX_X23 32
#define GL_CTX_X25 48
#define GL_CTX_X27 64
#define GL_CTX_X29 80
#define GL_CTX_X30 88
#define GL_CTX_SP 96
#define GL_CTX_D8 104
#define GL_CTX_D10 120
#define GL_CTX_D12 136
#define GL_CTX_D14 152
#define GL_CTX_FPCR 168
#define GL_CTX_SIZE 176
#else
#error "greenline: no context switch for this architecture (x86-64 and aarch64 only)"
#endif

#endif /* GREENLINE_RUNTIME_FIBER_CONTEXT_OFFSETS_H_ */
