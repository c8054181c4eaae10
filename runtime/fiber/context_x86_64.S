/* The x86-64 context switch: see fiber/context.h for the contract.
 *
 * gl_context_switch(Context* from, const Context* to, void* transfer) saves the callee-saved
 * registers, the stack pointer as it will be after this call returns, the return address and the
 * FP control words into *from, then loads *to and jumps to its saved address with `transfer` in
 * rax: the resumed context's own gl_context_switch call returns it (a new context finds it in rsi,
 * its entry function's second argument). Caller-saved registers need no saving: the
 * call itself tells the compiler they are clobbered.
 *
 * gl_context_entry is where a new context starts: r12 holds the entry function, r13 its argument.
 * rbp is zeroed so frame-pointer walks stop here, and the CFI marks rip undefined so unwinders
 * (gdb, libgcc) stop too. The entry function must never return. */
#include "runtime/fiber/context_offsets.h"

  .text
  .globl gl_context_switch
  .type gl_context_switch, @function
  .p2align 4
gl_context_switch:
  .cfi_startproc
  /* The control-word stores first: they are the slowest instructions here, and the compares
   * below read them back, so give them the GPR saves' time to complete. */
  stmxcsr GL_CTX_MXCSR(%rdi)
  fnstcw GL_CTX_X87CW(%rdi)
  movq %rbx, GL_CTX_RBX(%rdi)
  movq %rbp, GL_CTX_RBP(%rdi)
  movq %r12, GL_CTX_R12(%rdi)
  movq %r13, GL_CTX_R13(%rdi)
  movq %r14, GL_CTX_R14(%rdi)
  movq %r15, GL_CTX_R15(%rdi)
  movq (%rsp), %rax
  movq %rax, GL_CTX_RIP(%rdi)
  leaq 8(%rsp), %rcx
  movq %rcx, GL_CTX_RSP(%rdi)

  movq GL_CTX_RBX(%rsi), %rbx
  movq GL_CTX_RBP(%rsi), %rbp
  movq GL_CTX_R12(%rsi), %r12
  movq GL_CTX_R13(%rsi), %r13
  movq GL_CTX_R14(%rsi), %r14
  movq GL_CTX_R15(%rsi), %r15
  /* Loading a control word is the slow part (ldmxcsr and fldcw serialise the FP pipeline); almost
   * every switch goes between equal ones, so load only what differs. */
  movl GL_CTX_MXCSR(%rsi), %eax
  cmpl GL_CTX_MXCSR(%rdi), %eax
  je 1f
  ldmxcsr GL_CTX_MXCSR(%rsi)
1:
  movzwl GL_CTX_X87CW(%rsi), %eax
  cmpw GL_CTX_X87CW(%rdi), %ax
  je 2f
  fldcw GL_CTX_X87CW(%rsi)
2:
  movq GL_CTX_RSP(%rsi), %rsp
  movq %rdx, %rax
  /* push + ret rather than jmp: the return predictor expects to come back to our own caller,
   * and a goroutine resumes at the same instruction in the scheduler where this one suspends, so
   * the prediction holds, and the returns that follow keep matching the return stack buffer. A
   * jmp would leave it one entry off, mispredicting every return on the way up. */
  pushq GL_CTX_RIP(%rsi)
  ret
  .cfi_endproc
  .size gl_context_switch, .-gl_context_switch

  .globl gl_context_entry
  .type gl_context_entry, @function
  .p2align 4
gl_context_entry:
  .cfi_startproc
  .cfi_undefined rip
  xorl %ebp, %ebp
  movq %r13, %rdi
  movq %rax, %rsi
  callq *%r12
  ud2
  .cfi_endproc
  .size gl_context_entry, .-gl_context_entry

  .section .note.GNU-stack, "", @progbits
