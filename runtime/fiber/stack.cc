#include "runtime/fiber/stack.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "greenline/log.h"
#include "runtime/fiber/fiber.h"

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

namespace greenline {
namespace {

constexpr size_t kChunkBytes = 32 << 20;

size_t PageSize() {
  long p = sysconf(_SC_PAGESIZE);
  return p > 0 ? static_cast<size_t>(p) : 4096;
}

size_t RoundUp(size_t n, size_t to) { return (n + to - 1) / to * to; }

GuardMode ResolveMode(GuardMode mode) {
  if (mode != GuardMode::kAuto) return mode;
  if (const char* env = std::getenv("GREENLINE_STACK_GUARD")) {
    if (std::strcmp(env, "mprotect") == 0) return GuardMode::kMprotect;
    if (std::strcmp(env, "madvise") == 0) return GuardMode::kMadviseGuard;
  }
  return StackPool::KernelHasMadviseGuard() ? GuardMode::kMadviseGuard : GuardMode::kMprotect;
}

}  // namespace

const char* GuardModeName(GuardMode mode) {
  switch (mode) {
    case GuardMode::kAuto:
      return "auto";
    case GuardMode::kMadviseGuard:
      return "madvise(MADV_GUARD_INSTALL)";
    case GuardMode::kMprotect:
      return "mprotect(PROT_NONE)";
    case GuardMode::kCanary:
      return "canary (no guard page: mapping limit reached)";
  }
  return "?";
}

bool StackPool::KernelHasMadviseGuard() {
  static const bool has = [] {
    size_t page = PageSize();
    void* p = mmap(nullptr, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return false;
    bool ok = madvise(p, page, MADV_GUARD_INSTALL) == 0;
    if (ok) {
      // Check that the guard really faults: the kernel's own read of it (write(2) from the page
      // into a pipe) must fail with EFAULT. qemu-user accepts the madvise and guards nothing.
      int fds[2];
      if (pipe(fds) == 0) {
        ok = write(fds[1], p, 1) < 0 && errno == EFAULT;
        close(fds[0]);
        close(fds[1]);
      }
    }
    munmap(p, 2 * page);
    return ok;
  }();
  return has;
}

StackPool::StackPool(size_t stack_size, GuardMode mode)
    : page_size_(PageSize()),
      stack_size_(RoundUp(stack_size < 2 * page_size_ ? 2 * page_size_ : stack_size, page_size_)),
      slot_size_(stack_size_ + page_size_),
      slots_per_chunk_(kChunkBytes / slot_size_ > 0 ? kChunkBytes / slot_size_ : 1),
      mode_(ResolveMode(mode)) {}

StackPool::~StackPool() {
  for (char* chunk : chunks_) {
    // ASan keeps the poison of unmapped memory: clear what finished goroutines left behind, or a
    // later mapping at this address would inherit it.
    UnpoisonStack(chunk, slots_per_chunk_ * slot_size_);
    munmap(chunk, slots_per_chunk_ * slot_size_);
  }
}

GuardMode StackPool::guard_mode() const {
  internal::OsMutexGuard lock(mu_);
  return mode_;
}

size_t StackPool::chunk_count() const {
  internal::OsMutexGuard lock(mu_);
  return chunks_.size();
}

size_t StackPool::stacks_handed_out() const {
  internal::OsMutexGuard lock(mu_);
  return outstanding_;
}

bool StackPool::NewChunk() {
  size_t bytes = slots_per_chunk_ * slot_size_;
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
  if (p == MAP_FAILED) {
    Logf(LogLevel::kError, "runtime: cannot map %zu bytes for goroutine stacks: %s", bytes,
         std::strerror(errno));
    return false;
  }
  // No transparent huge pages: a 2 MiB page behind one stack's top page would commit the stacks
  // of 30 neighbours and defeat lazy commit.
  madvise(p, bytes, MADV_NOHUGEPAGE);
  chunks_.push_back(static_cast<char*>(p));
  bump_ = static_cast<char*>(p);
  bump_left_ = slots_per_chunk_;
  return true;
}

bool StackPool::InstallGuard(char* guard) {
  switch (mode_) {
    case GuardMode::kMadviseGuard:
      if (madvise(guard, page_size_, MADV_GUARD_INSTALL) == 0) return true;
      Logf(LogLevel::kWarn, "runtime: MADV_GUARD_INSTALL failed (%s); using mprotect guards",
           std::strerror(errno));
      mode_ = GuardMode::kMprotect;
      [[fallthrough]];
    case GuardMode::kMprotect:
      if (mprotect(guard, page_size_, PROT_NONE) == 0) return true;
      if (errno == ENOMEM) {
        Logf(LogLevel::kWarn,
             "runtime: the kernel's mapping limit (vm.max_map_count) is reached after %zu guarded "
             "goroutine stacks; new stacks get no guard page, only a canary checked at every "
             "switch. Raise vm.max_map_count or run Linux >= 6.13 (MADV_GUARD_INSTALL).",
             outstanding_ + free_.size());
      } else {
        Logf(LogLevel::kWarn, "runtime: mprotect guard failed (%s); stacks are unguarded",
             std::strerror(errno));
      }
      mode_ = GuardMode::kCanary;
      return false;
    default:
      return false;
  }
}

bool StackPool::Allocate(Stack* stack) {
  internal::OsMutexGuard lock(mu_);
  if (!free_.empty()) {
    *stack = free_.back();
    free_.pop_back();
  } else {
    if (bump_left_ == 0 && !NewChunk()) return false;
    char* slot = bump_;
    bump_ += slot_size_;
    --bump_left_;
    stack->lo = slot + page_size_;
    stack->size = stack_size_;
    stack->guarded = InstallGuard(slot);
  }
  if (!stack->guarded) *reinterpret_cast<uint64_t*>(stack->lo) = kStackCanary;
  ++outstanding_;
  return true;
}

void StackPool::Release(const Stack& stack) {
  // Give the pages back; the guard (a page-table marker or a PROT_NONE page) stays in place. A
  // finished goroutine's last frames leave ASan poison behind: clear it for the next owner.
  UnpoisonStack(stack.lo, stack.size);
  madvise(stack.lo, stack.size, MADV_DONTNEED);
  internal::OsMutexGuard lock(mu_);
  free_.push_back(stack);
  --outstanding_;
}

}  // namespace greenline
