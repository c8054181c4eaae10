// Stack walks by frame pointer, and their printing.
//
// Every greenline build keeps frame pointers (-fno-omit-frame-pointer), so a stack is a linked list
// of frame records {saved frame pointer, return address} (x86-64: at rbp; aarch64: at x29). Walking
// it needs no unwinder, no allocation and no lock, which is what a goroutine dump of parked
// goroutines, a stack-overflow report from a signal handler and the monitor's long-run report need.
// The walk only ever reads inside the bounds it is given (the goroutine's stack), so a stale or
// torn chain ends the walk early instead of faulting.
#pragma once

#include <cstdint>
#include <string>

#include "runtime/base/runtime_internal.h"

namespace greenline {

// Collects up to `max` program counters: `pc` first, then the return address of each frame record
// starting at `fp`, while records stay within [lo, hi) and move strictly upwards. Returns the
// count.
int WalkFramePointers(uintptr_t fp, uintptr_t pc, uintptr_t lo, uintptr_t hi, uintptr_t* pcs,
                      int max);

// Reads the executable's ELF symbol table (.symtab, else .dynsym) once, so frames in it are named
// even for static and anonymous-namespace functions, which dladdr cannot see. Idempotent and
// thread-safe; Run() calls it at start-up so a signal handler never has to. Without it (or for
// shared libraries) names come from dladdr.
void LoadSymbols();

// Prints one line per pc: "\t#3 0x55d0c0a1b2c3 greenline::Sleep(...)+0x4f (/path/to/binary)".
// Symbol names come from the executable's symbol table (LoadSymbols) or dladdr, demangled. Not
// async-signal-safe (demangling allocates); used on the way to exit or from the dump thread.
// With `demangle` false nothing allocates (for the stack-overflow report, which may have
// interrupted malloc).
void WriteBacktrace(int fd, const uintptr_t* pcs, int n, bool demangle = true);

// The same lines, as a string (for log messages).
std::string FormatBacktrace(const uintptr_t* pcs, int n);

}  // namespace greenline
