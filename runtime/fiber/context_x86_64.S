/* The x86-64 context switch: see fiber/context.h for the contract.
 *
 * gl_context_switch(Context* from, const Context* to) saves the callee-saved registers, the stack
 * pointer as it will be after this call returns, the return address and the FP control words into
 * *from, then loads *to and jumps to its saved address. Caller-saved registers need no saving: the
 * call itself tells the compiler they are clobbered. Returning is a jmp, not a ret, since the saved
 * address belongs to another stack.
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
  stmxcsr GL_CTX_MXCSR(%rdi)
  fnstcw GL_CTX_X87CW(%rdi)

  movq GL_CTX_RBX(%rsi), %rbx
  movq GL_CTX_RBP(%rsi), %rbp
  movq GL_CTX_R12(%rsi), %r12
  movq GL_CTX_R13(%rsi), %r13
  movq GL_CTX_R14(%rsi), %r14
  movq GL_CTX_R15(%rsi), %r15
  ldmxcsr GL_CTX_MXCSR(%rsi)
  fldcw GL_CTX_X87CW(%rsi)
  movq GL_CTX_RSP(%rsi), %rsp
  jmpq *GL_CTX_RIP(%rsi)
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
  callq *%r12
  ud2
  .cfi_endproc
  .size gl_context_entry, .-gl_context_entry

  .section .note.GNU-stack, "", @progbits
