/* The aarch64 context switch: see fiber/context.h for the contract.
 *
 * gl_context_switch(Context* from /x0/, const Context* to /x1/, void* transfer /x2/) saves
 * x19-x28, the frame record (x29, x30), sp, d8-d15 and fpcr into *from, loads *to and returns
 * through the loaded x30 with `transfer` in x0: for a suspended context that is the return of its
 * own gl_context_switch call; for a new one it is gl_context_entry, which passes it on as the entry
 * function's second argument.
 *
 * gl_context_entry starts a new context: x19 holds the entry function, x20 its argument. x29 is
 * zeroed so frame-record walks stop here, and the CFI marks x30 undefined so unwinders stop too.
 * The entry function must never return. */
#include "runtime/fiber/context_offsets.h"

  .text
  .globl gl_context_switch
  .type gl_context_switch, %function
  .p2align 4
gl_context_switch:
  .cfi_startproc
  stp x19, x20, [x0, #GL_CTX_X19]
  stp x21, x22, [x0, #GL_CTX_X21]
  stp x23, x24, [x0, #GL_CTX_X23]
  stp x25, x26, [x0, #GL_CTX_X25]
  stp x27, x28, [x0, #GL_CTX_X27]
  stp x29, x30, [x0, #GL_CTX_X29]
  mov x9, sp
  str x9, [x0, #GL_CTX_SP]
  stp d8, d9, [x0, #GL_CTX_D8]
  stp d10, d11, [x0, #GL_CTX_D10]
  stp d12, d13, [x0, #GL_CTX_D12]
  stp d14, d15, [x0, #GL_CTX_D14]
  mrs x9, fpcr
  str x9, [x0, #GL_CTX_FPCR]

  ldp x19, x20, [x1, #GL_CTX_X19]
  ldp x21, x22, [x1, #GL_CTX_X21]
  ldp x23, x24, [x1, #GL_CTX_X23]
  ldp x25, x26, [x1, #GL_CTX_X25]
  ldp x27, x28, [x1, #GL_CTX_X27]
  ldp x29, x30, [x1, #GL_CTX_X29]
  ldr x9, [x1, #GL_CTX_SP]
  mov sp, x9
  ldp d8, d9, [x1, #GL_CTX_D8]
  ldp d10, d11, [x1, #GL_CTX_D10]
  ldp d12, d13, [x1, #GL_CTX_D12]
  ldp d14, d15, [x1, #GL_CTX_D14]
  /* Writing fpcr can stall the FP pipeline; switches almost always go between equal values. */
  ldr x9, [x1, #GL_CTX_FPCR]
  ldr x10, [x0, #GL_CTX_FPCR]
  cmp x9, x10
  b.eq 1f
  msr fpcr, x9
1:
  mov x0, x2
  ret
  .cfi_endproc
  .size gl_context_switch, .-gl_context_switch

  .globl gl_context_entry
  .type gl_context_entry, %function
  .p2align 4
gl_context_entry:
  .cfi_startproc
  .cfi_undefined x30
  mov x29, #0
  mov x1, x0
  mov x0, x20
  blr x19
  brk #0
  .cfi_endproc
  .size gl_context_entry, .-gl_context_entry

  .section .note.GNU-stack, "", %progbits
