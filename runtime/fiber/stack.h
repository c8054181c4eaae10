// Goroutine stacks: mmap'ed, committed lazily, guarded, pooled.
//
// Layout. Stacks are carved from chunks of ~32 MiB, each one anonymous private mapping with
// MAP_NORESERVE: nothing is committed until touched, so a goroutine that only ever uses its top
// page costs one page of RSS however large its stack. Each slot is [guard page][usable stack]; a
// stack grows down into its own guard.
//
// Guards and the mapping limit. A PROT_NONE guard made with mprotect splits the mapping in two
// VMAs per stack, and vm.max_map_count (65,530 by default, not settable inside a container) then
// caps a process at ~32,000 guarded stacks. Linux 6.13 added madvise(MADV_GUARD_INSTALL), which
// marks pages as guards in the page tables without splitting the VMA: a million guarded stacks fit
// in a few mappings. We probe it once and use it when the kernel has it; otherwise mprotect guards,
// logged at start-up. When mprotect fails for lack of mappings (ENOMEM), the pool logs it once and
// hands out unguarded stacks, each with a canary word at its lowest address that the scheduler
// checks whenever the goroutine switches out: an overflow is then still reported (a little late),
// never silent. Some qemu-user versions accept MADV_GUARD_INSTALL and guard nothing (others
// reject it), so the probe checks that a guard really faults (the kernel's read of it must fail
// with EFAULT) before trusting it. Chunks are MADV_NOHUGEPAGE: a transparent huge page would
// commit 2 MiB behind a single touched stack page.
//
// Reuse. When a goroutine exits, the scheduler keeps its stack in the worker's cache and a global
// pool (sched/internal/g.h) and reuses it without a system call; only stacks the scheduler trims
// go back here, with their pages returned to the kernel (MADV_DONTNEED), and the chunks are
// unmapped when the pool is destroyed.
//
// Thread-safety: all methods may be called from any thread (one mutex; never on a hot path).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "greenline/thread_annotations.h"
#include "runtime/base/os_mutex.h"
#include "runtime/base/runtime_internal.h"

namespace greenline {

// 64 KiB usable: room for ordinary C++ (formatting, a getaddrinfo through Blocking, a TLS
// handshake) while an idle goroutine still costs one page of RSS. Configurable per runtime
// (Options::stack_size, GREENLINE_STACK_SIZE).
inline constexpr size_t kDefaultStackSize = 64 * 1024;
inline constexpr uint64_t kStackCanary = 0x9e3779b97f4a7c15ull;

enum class GuardMode {
  kAuto,          // MADV_GUARD_INSTALL if the kernel has it, else mprotect
  kMadviseGuard,  // guard pages in the page tables, one VMA for many stacks (Linux >= 6.13)
  kMprotect,      // PROT_NONE guard pages, two VMAs per stack
  kCanary,        // no guard page (mapping limit reached): canary word checked on switch-out
};

const char* GuardModeName(GuardMode mode);

struct Stack {
  char* lo = nullptr;    // lowest usable byte; the guard page, if any, is just below
  size_t size = 0;       // usable bytes
  bool guarded = false;  // false: a canary word sits at `lo`
  char* hi() const { return lo + size; }
  bool CanaryIntact() const {
    return guarded || *reinterpret_cast<const volatile uint64_t*>(lo) == kStackCanary;
  }
};

class StackPool {
 public:
  // `stack_size` is rounded up to whole pages (at least two). `mode` kAuto probes the kernel; the
  // GREENLINE_STACK_GUARD environment variable ("madvise" or "mprotect") overrides kAuto.
  explicit StackPool(size_t stack_size, GuardMode mode = GuardMode::kAuto);
  ~StackPool();  // unmaps every chunk: no stack may be in use
  StackPool(const StackPool&) = delete;
  StackPool& operator=(const StackPool&) = delete;

  // Hands out a stack. False when the address space or mapping limit is exhausted.
  bool Allocate(Stack* stack) GL_EXCLUDES(mu_);
  // Takes a stack back; its pages are returned to the kernel.
  void Release(const Stack& stack) GL_EXCLUDES(mu_);

  size_t stack_size() const { return stack_size_; }
  size_t page_size() const { return page_size_; }
  // The mode new stacks get now (kCanary once the mapping limit was hit in mprotect mode).
  GuardMode guard_mode() const;
  size_t chunk_count() const;
  size_t stacks_handed_out() const;

  // Whether the kernel supports MADV_GUARD_INSTALL (probed once per process).
  static bool KernelHasMadviseGuard();

 private:
  bool InstallGuard(char* guard) GL_REQUIRES(mu_);
  bool NewChunk() GL_REQUIRES(mu_);

  const size_t page_size_;
  const size_t stack_size_;
  const size_t slot_size_;
  const size_t slots_per_chunk_;
  mutable internal::OsMutex mu_;
  GuardMode mode_ GL_GUARDED_BY(mu_);
  std::vector<char*> chunks_ GL_GUARDED_BY(mu_);
  char* bump_ GL_GUARDED_BY(mu_) = nullptr;  // next never-used slot of the newest chunk
  size_t bump_left_ GL_GUARDED_BY(mu_) = 0;
  std::vector<Stack> free_ GL_GUARDED_BY(mu_);  // released stacks, guard already installed
  size_t outstanding_ GL_GUARDED_BY(mu_) = 0;
};

}  // namespace greenline
