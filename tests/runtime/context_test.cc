// Checks runtime/fiber/context.h and the per-architecture gl_context_switch / gl_context_entry with
// bare contexts on mmap'ed stacks (no Fiber, no StackPool): that a new context calls its entry with
// its argument, on the given stack, with the frame 16-byte aligned as the ABI requires even when
// the given top is not; that two contexts can switch back and forth 100,000 times passing values
// through memory, directly between two new contexts too, and that a context can be re-initialised
// on the same stack over and over; that optimised code keeps many live values across switches; that
// the callee-saved registers (x86-64: rbx, r12-r15; aarch64: x19-x28 and d8-d15) survive a switch
// to a context that loads other values into them (inline assembly, one version per architecture);
// that the floating-point control state (rounding mode, MXCSR, the x87 control word, FPCR) belongs
// to each context, a new one starting from the default; and that a suspended context exposes its
// stack pointer and frame pointer inside its stack.
#include "runtime/fiber/context.h"

#include <fenv.h>
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <cstdint>

#include "runtime/fiber/fiber.h"  // UnpoisonStack

#if defined(__x86_64__)
#include <xmmintrin.h>
#endif

// Never inlined or cloned: the helpers below need frames of their own (a frame address to compare,
// register pressure that is really theirs, an asm statement nothing is hoisted across).
#if defined(__clang__)
#define GL_TEST_NOINLINE __attribute__((noinline))
#else
#define GL_TEST_NOINLINE __attribute__((noipa))
#endif

namespace greenline {
namespace {

constexpr size_t kTestStackSize = 256 * 1024;

// An mmap'ed stack for a bare context. Entry functions never return, so under ASan their frames'
// redzones stay poisoned; ASan also keeps the shadow of unmapped memory, so unpoison before unmap
// or the next mapping at this address inherits the poison.
class TestStack {
 public:
  TestStack() {
    void* p = mmap(nullptr, kTestStackSize, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    lo_ = p == MAP_FAILED ? nullptr : static_cast<char*>(p);
  }
  ~TestStack() {
    if (lo_ == nullptr) return;
    UnpoisonStack(lo_, kTestStackSize);
    munmap(lo_, kTestStackSize);
  }
  TestStack(const TestStack&) = delete;
  TestStack& operator=(const TestStack&) = delete;

  char* lo() const { return lo_; }
  char* hi() const { return lo_ + kTestStackSize; }
  void Unpoison() const { UnpoisonStack(lo_, kTestStackSize); }

 private:
  char* lo_ = nullptr;
};

// Entry functions must never return; after their final switch nothing resumes them (if something
// did, the entry would return into gl_context_entry's trap instruction). Nothing here may be
// noreturn, not even by inference: ASan would then call __asan_handle_no_return on a stack it was
// never told about (bare contexts have no sanitizer annotations; Fiber adds them).
void SwitchAwayForGood(Context* self, const Context* to) { gl_context_switch(self, to); }

// --- Entry and argument ----------------------------------------------------------------------

struct ArgProbe {
  Context main{};
  Context self{};
  void* seen = nullptr;
  int calls = 0;
};

void RecordArg(void* arg) {
  auto* probe = static_cast<ArgProbe*>(arg);
  probe->seen = arg;
  ++probe->calls;
  SwitchAwayForGood(&probe->self, &probe->main);
}

TEST(ContextTest, NewContextCallsEntryWithItsArgument) {
  TestStack stack;
  ASSERT_NE(stack.lo(), nullptr);
  ArgProbe probe;
  InitContext(&probe.self, stack.hi(), &RecordArg, &probe);
  EXPECT_EQ(probe.calls, 0) << "InitContext must not run the entry";
  gl_context_switch(&probe.main, &probe.self);
  EXPECT_EQ(probe.calls, 1);
  EXPECT_EQ(probe.seen, &probe);
}

// --- Ping-pong -------------------------------------------------------------------------------

struct PingPong {
  Context main{};
  Context self{};
  uint64_t request = 0;
  uint64_t reply = 0;
  int64_t served = 0;
  bool stop = false;
};

void Echo(void* arg) {
  auto* p = static_cast<PingPong*>(arg);
  while (!p->stop) {
    p->reply = p->request * 3 + 1;
    ++p->served;
    gl_context_switch(&p->self, &p->main);
  }
  SwitchAwayForGood(&p->self, &p->main);
}

TEST(ContextTest, PingPongsOneHundredThousandTimesPassingValuesThroughMemory) {
  constexpr int64_t kRounds = 100'000;
  TestStack stack;
  ASSERT_NE(stack.lo(), nullptr);
  PingPong p;
  InitContext(&p.self, stack.hi(), &Echo, &p);
  int64_t wrong = 0;
  for (int64_t i = 0; i < kRounds; ++i) {
    p.request = static_cast<uint64_t>(i) * 0x9e3779b97f4a7c15ull;
    gl_context_switch(&p.main, &p.self);
    if (p.reply != p.request * 3 + 1) ++wrong;
  }
  p.stop = true;
  gl_context_switch(&p.main, &p.self);
  EXPECT_EQ(wrong, 0);
  EXPECT_EQ(p.served, kRounds);
}

// --- Stack placement and alignment -----------------------------------------------------------

struct FrameProbe {
  Context main{};
  Context self{};
  uintptr_t frame = 0;
  uintptr_t local = 0;
};

void ProbeFrame(void* arg) {
  auto* probe = static_cast<FrameProbe*>(arg);
  // The compiler never realigns the stack for a 16-byte-aligned object (the ABI already promises
  // 16): its address shows the alignment the entry was called with.
  alignas(16) volatile unsigned char local[16] = {};
  local[0] = 1;
  probe->local = reinterpret_cast<uintptr_t>(&local[0]);
  probe->frame = reinterpret_cast<uintptr_t>(__builtin_frame_address(0));
  SwitchAwayForGood(&probe->self, &probe->main);
}

TEST(ContextTest, EntryRunsNearTheTopOfTheGivenStackWithAnAlignedFrame) {
  TestStack stack;
  ASSERT_NE(stack.lo(), nullptr);
  // A misaligned top is aligned down by InitContext.
  for (size_t misalign : {0, 1, 5, 8, 12, 15}) {
    SCOPED_TRACE(testing::Message() << "top = hi - " << misalign);
    char* top = stack.hi() - 64 - misalign;
    FrameProbe probe;
    InitContext(&probe.self, top, &ProbeFrame, &probe);
    gl_context_switch(&probe.main, &probe.self);
    const auto lo = reinterpret_cast<uintptr_t>(stack.lo());
    const auto top_addr = reinterpret_cast<uintptr_t>(top);
    // x86-64: entry sees rsp % 16 == 8, so the pushed rbp lands 16-aligned; aarch64: sp and the
    // frame record are always 16-aligned.
    EXPECT_EQ(probe.frame % 16, 0u) << std::hex << probe.frame;
    EXPECT_GE(probe.frame, lo);
    EXPECT_LT(probe.frame, top_addr);
    EXPECT_LT(top_addr - probe.frame, 1024u) << "the entry frame should sit at the top";
    EXPECT_EQ(probe.local % 16, 0u) << std::hex << probe.local;
#if !defined(GREENLINE_ASAN)
    // Under ASan the local may live on a fake stack.
    EXPECT_GE(probe.local, lo);
    EXPECT_LT(probe.local, top_addr);
#endif
    stack.Unpoison();
  }
}

// --- Suspended contexts ----------------------------------------------------------------------

struct Parked {
  Context main{};
  Context self{};
  uintptr_t frame_before_switch = 0;
};

GL_TEST_NOINLINE void ParkInsideAFrame(Parked* parked) {
  parked->frame_before_switch = reinterpret_cast<uintptr_t>(__builtin_frame_address(0));
  gl_context_switch(&parked->self, &parked->main);
  SwitchAwayForGood(&parked->self, &parked->main);
}

void ParkEntry(void* arg) { ParkInsideAFrame(static_cast<Parked*>(arg)); }

TEST(ContextTest, SuspendedContextExposesStackAndFramePointerWithinItsStack) {
  TestStack stack;
  ASSERT_NE(stack.lo(), nullptr);
  Parked parked;
  InitContext(&parked.self, stack.hi(), &ParkEntry, &parked);
  EXPECT_EQ(ContextSp(parked.self), reinterpret_cast<uintptr_t>(stack.hi()));
  gl_context_switch(&parked.main, &parked.self);

  const auto lo = reinterpret_cast<uintptr_t>(stack.lo());
  const auto hi = reinterpret_cast<uintptr_t>(stack.hi());
  EXPECT_GE(ContextSp(parked.self), lo);
  EXPECT_LT(ContextSp(parked.self), hi);
  // gl_context_switch has no frame of its own: the saved frame pointer is its caller's.
  EXPECT_EQ(ContextFramePointer(parked.self), parked.frame_before_switch);
  EXPECT_LE(ContextSp(parked.self), ContextFramePointer(parked.self));
  EXPECT_NE(ContextPc(parked.self), 0u);
  gl_context_switch(&parked.main, &parked.self);
}

// --- Several contexts ------------------------------------------------------------------------

struct Trio {
  Context main{};
  Context a{};
  Context b{};
  char trace[8] = {};
  int n = 0;
};

void TrioA(void* arg) {
  auto* t = static_cast<Trio*>(arg);
  t->trace[t->n++] = 'a';
  gl_context_switch(&t->a, &t->b);
  t->trace[t->n++] = 'A';
  SwitchAwayForGood(&t->a, &t->main);
}

void TrioB(void* arg) {
  auto* t = static_cast<Trio*>(arg);
  t->trace[t->n++] = 'b';
  SwitchAwayForGood(&t->b, &t->a);
}

TEST(ContextTest, SwitchesDirectlyBetweenTwoNewContexts) {
  TestStack stack_a, stack_b;
  ASSERT_NE(stack_a.lo(), nullptr);
  ASSERT_NE(stack_b.lo(), nullptr);
  Trio t;
  InitContext(&t.a, stack_a.hi(), &TrioA, &t);
  InitContext(&t.b, stack_b.hi(), &TrioB, &t);
  gl_context_switch(&t.main, &t.a);
  t.trace[t.n++] = 'm';
  EXPECT_STREQ(t.trace, "abAm");
}

struct Countdown {
  Context main{};
  Context self{};
  int runs = 0;
  uint64_t checksum = 0;
};

GL_TEST_NOINLINE uint64_t UseSomeStack(int depth) {
  volatile uint64_t frame[32];
  for (int i = 0; i < 32; ++i) frame[i] = static_cast<uint64_t>(depth * 32 + i);
  uint64_t sum = depth > 0 ? UseSomeStack(depth - 1) : 0;
  for (int i = 0; i < 32; ++i) sum += frame[i];
  return sum;
}

void CountdownEntry(void* arg) {
  auto* c = static_cast<Countdown*>(arg);
  ++c->runs;
  c->checksum += UseSomeStack(16);
  SwitchAwayForGood(&c->self, &c->main);
}

TEST(ContextTest, ReinitialisedContextRunsAgainOnTheSameStack) {
  constexpr int kRuns = 1000;
  TestStack stack;
  ASSERT_NE(stack.lo(), nullptr);
  Countdown c;
  for (int i = 0; i < kRuns; ++i) {
    InitContext(&c.self, stack.hi(), &CountdownEntry, &c);
    gl_context_switch(&c.main, &c.self);
    stack.Unpoison();
  }
  EXPECT_EQ(c.runs, kRuns);
  EXPECT_EQ(c.checksum, kRuns * UseSomeStack(16));
}

// --- Live values across switches ---------------------------------------------------------------

// Twelve values live across every switch: more than the callee-saved registers, so the compiler
// keeps some in callee-saved registers and spills the rest to the stack. Both sides run it, each
// with its own values; with `self` null it runs without switching, as the reference.
GL_TEST_NOINLINE uint64_t MixAcrossSwitches(Context* self, const Context* other, uint64_t seed,
                                            int rounds) {
  uint64_t a = seed, b = seed * 3, c = seed * 5, d = seed * 7, e = seed * 11, f = seed * 13;
  uint64_t g = seed * 17, h = seed * 19, i = seed * 23, j = seed * 29, k = seed * 31, l = seed * 37;
  for (int r = 0; r < rounds; ++r) {
    a = a * 6364136223846793005ull + b;
    b ^= c >> 3;
    c += d * 5;
    d ^= e << 7;
    e += f ^ r;
    f = f * 31 + g;
    g ^= h >> 11;
    h += i * 3;
    i ^= j << 13;
    j += k ^ a;
    k = k * 7 + l;
    l ^= a >> 17;
    if (self != nullptr) gl_context_switch(self, other);
  }
  return a ^ b ^ c ^ d ^ e ^ f ^ g ^ h ^ i ^ j ^ k ^ l;
}

constexpr int kMixRounds = 2000;
constexpr uint64_t kMainSeed = 0x1234567, kFiberSeed = 0xfedcba9;

struct MixDuel {
  Context main{};
  Context self{};
  uint64_t fiber_result = 0;
};

void MixEntry(void* arg) {
  auto* duel = static_cast<MixDuel*>(arg);
  duel->fiber_result = MixAcrossSwitches(&duel->self, &duel->main, kFiberSeed, kMixRounds);
  SwitchAwayForGood(&duel->self, &duel->main);
}

TEST(ContextTest, OptimisedCodeKeepsManyLiveValuesAcrossSwitches) {
  TestStack stack;
  ASSERT_NE(stack.lo(), nullptr);
  MixDuel duel;
  InitContext(&duel.self, stack.hi(), &MixEntry, &duel);
  uint64_t main_result = MixAcrossSwitches(&duel.main, &duel.self, kMainSeed, kMixRounds);
  gl_context_switch(&duel.main, &duel.self);  // the fiber's last round and its result
  EXPECT_EQ(main_result, MixAcrossSwitches(nullptr, nullptr, kMainSeed, kMixRounds));
  EXPECT_EQ(duel.fiber_result, MixAcrossSwitches(nullptr, nullptr, kFiberSeed, kMixRounds));
}

// --- Callee-saved registers, in assembly ---------------------------------------------------------

#if defined(__x86_64__) || defined(__aarch64__)

#if defined(__x86_64__)
constexpr int kSavedGprs = 5;  // rbx, r12, r13, r14, r15 (rbp is the frame pointer)
constexpr int kSavedFprs = 0;
#else
constexpr int kSavedGprs = 10;  // x19-x28 (x29 is the frame pointer)
constexpr int kSavedFprs = 8;   // d8-d15
#endif

// What SwitchWithSentinels loads into the callee-saved registers before switching and what it
// found in them after being resumed. Offsets are hard-coded in the assembly below.
struct RegisterBlock {
  Context* from;
  const Context* to;
  uint64_t in[kSavedGprs + kSavedFprs];
  uint64_t out[kSavedGprs + kSavedFprs];
};
static_assert(offsetof(RegisterBlock, in) == 16);
static_assert(offsetof(RegisterBlock, out) == 16 + 8 * (kSavedGprs + kSavedFprs));

// Loads block->in into the callee-saved registers, calls gl_context_switch(block->from, block->to)
// and, once resumed, stores those registers into block->out.
GL_TEST_NOINLINE void SwitchWithSentinels(RegisterBlock* block) {
#if defined(__x86_64__)
  asm volatile(
      "movq %%rsp, %%rax\n\t"
      "subq $128, %%rsp\n\t"  // keep clear of the red zone
      "andq $-16, %%rsp\n\t"
      "pushq %%rax\n\t"  // the original rsp
      "pushq %%rdi\n\t"  // the block; rsp is 16-byte aligned at the call
      "movq 16(%%rdi), %%rbx\n\t"
      "movq 24(%%rdi), %%r12\n\t"
      "movq 32(%%rdi), %%r13\n\t"
      "movq 40(%%rdi), %%r14\n\t"
      "movq 48(%%rdi), %%r15\n\t"
      "movq 8(%%rdi), %%rsi\n\t"
      "movq 0(%%rdi), %%rdi\n\t"
      "call gl_context_switch\n\t"
      "popq %%rdi\n\t"
      "movq %%rbx, 56(%%rdi)\n\t"
      "movq %%r12, 64(%%rdi)\n\t"
      "movq %%r13, 72(%%rdi)\n\t"
      "movq %%r14, 80(%%rdi)\n\t"
      "movq %%r15, 88(%%rdi)\n\t"
      "popq %%rsp\n\t"
      : "+D"(block)
      :
      : "rax", "rbx", "rcx", "rdx", "rsi", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15",
        "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",
        "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "memory", "cc");
#else
  register RegisterBlock* x0 asm("x0") = block;
  asm volatile(
      "stp x0, x29, [sp, #-16]!\n\t"
      "ldp x19, x20, [x0, #16]\n\t"
      "ldp x21, x22, [x0, #32]\n\t"
      "ldp x23, x24, [x0, #48]\n\t"
      "ldp x25, x26, [x0, #64]\n\t"
      "ldp x27, x28, [x0, #80]\n\t"
      "ldp d8, d9, [x0, #96]\n\t"
      "ldp d10, d11, [x0, #112]\n\t"
      "ldp d12, d13, [x0, #128]\n\t"
      "ldp d14, d15, [x0, #144]\n\t"
      "ldr x1, [x0, #8]\n\t"
      "ldr x0, [x0, #0]\n\t"
      "bl gl_context_switch\n\t"
      "ldp x0, x9, [sp], #16\n\t"
      "stp x19, x20, [x0, #160]\n\t"
      "stp x21, x22, [x0, #176]\n\t"
      "stp x23, x24, [x0, #192]\n\t"
      "stp x25, x26, [x0, #208]\n\t"
      "stp x27, x28, [x0, #224]\n\t"
      "stp d8, d9, [x0, #240]\n\t"
      "stp d10, d11, [x0, #256]\n\t"
      "stp d12, d13, [x0, #272]\n\t"
      "stp d14, d15, [x0, #288]\n\t"
      : "+r"(x0)
      :
      : "x1", "x2", "x3", "x4", "x5", "x6", "x7", "x8", "x9", "x10", "x11", "x12", "x13", "x14",
        "x15", "x16", "x17", "x18", "x19", "x20", "x21", "x22", "x23", "x24", "x25", "x26", "x27",
        "x28", "x30", "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9", "v10", "v11",
        "v12", "v13", "v14", "v15", "v16", "v17", "v18", "v19", "v20", "v21", "v22", "v23", "v24",
        "v25", "v26", "v27", "v28", "v29", "v30", "v31", "memory", "cc");
#endif
}

constexpr int kRegisterRounds = 1000;

struct RegisterDuel {
  Context main{};
  Context self{};
  RegisterBlock main_block{};
  RegisterBlock fiber_block{};
  int64_t fiber_mismatches = 0;
};

void FillSentinels(RegisterBlock* block, uint64_t side, uint64_t round) {
  for (int r = 0; r < kSavedGprs + kSavedFprs; ++r) {
    block->in[r] = side << 48 | round << 8 | static_cast<uint64_t>(r);
  }
}

int64_t CountMismatches(const RegisterBlock& block) {
  int64_t bad = 0;
  for (int r = 0; r < kSavedGprs + kSavedFprs; ++r) bad += block.in[r] != block.out[r];
  return bad;
}

void RegisterDuelEntry(void* arg) {
  auto* duel = static_cast<RegisterDuel*>(arg);
  for (uint64_t round = 0;; ++round) {
    FillSentinels(&duel->fiber_block, 0xF1BE, round);
    SwitchWithSentinels(&duel->fiber_block);
    duel->fiber_mismatches += CountMismatches(duel->fiber_block);
  }
}

TEST(ContextTest, PreservesCalleeSavedRegistersAcrossSwitch) {
  TestStack stack;
  ASSERT_NE(stack.lo(), nullptr);
  RegisterDuel duel;
  duel.main_block.from = &duel.main;
  duel.main_block.to = &duel.self;
  duel.fiber_block.from = &duel.self;
  duel.fiber_block.to = &duel.main;
  InitContext(&duel.self, stack.hi(), &RegisterDuelEntry, &duel);
  int64_t main_mismatches = 0;
  for (uint64_t round = 0; round < kRegisterRounds; ++round) {
    FillSentinels(&duel.main_block, 0x3A17, round);
    SwitchWithSentinels(&duel.main_block);
    main_mismatches += CountMismatches(duel.main_block);
  }
  EXPECT_EQ(main_mismatches, 0);
  // The fiber checked every round but the first, which started it rather than resumed it.
  EXPECT_EQ(duel.fiber_mismatches, 0);
  for (int r = 0; r < kSavedGprs + kSavedFprs; ++r) {
    EXPECT_EQ(duel.main_block.out[r], duel.main_block.in[r]) << "register #" << r;
  }
  // The fiber stays suspended; its stack is unmapped with it.
}

#endif  // __x86_64__ || __aarch64__

// --- Floating-point control state ------------------------------------------------------------

// Two quotients whose nearest doubles lie on opposite sides (1/3 rounds down, 1/10 up), so any
// two of the modes nearest, downward and upward give a different pair.
struct Quotients {
  double third, tenth;
  bool operator==(const Quotients& o) const { return third == o.third && tenth == o.tenth; }
  bool operator!=(const Quotients& o) const { return !(*this == o); }
};

GL_TEST_NOINLINE Quotients Divide() {
  volatile double one = 1.0, three = 3.0, ten = 10.0;
  return {one / three, one / ten};
}

#if defined(__x86_64__)
// The same in x87 extended precision, which the x87 control word rounds.
GL_TEST_NOINLINE long double X87Divide() {
  volatile long double one = 1.0L, three = 3.0L, ten = 10.0L;
  return one / three + one / ten * 1e-3L;
}
uint16_t X87ControlWord() {
  uint16_t cw;
  asm volatile("fnstcw %0" : "=m"(cw));
  return cw;
}
constexpr uint32_t kMxcsrRoundingMask = 0x6000;
constexpr uint32_t kMxcsrFlushToZero = 0x8000;
constexpr uint32_t kMxcsrDenormalsAreZero = 0x0040;
constexpr uint32_t kMxcsrExceptionFlags = 0x003F;
#elif defined(__aarch64__)
uint64_t ReadFpcr() {
  uint64_t fpcr;
  asm volatile("mrs %0, fpcr" : "=r"(fpcr));
  return fpcr;
}
void WriteFpcr(uint64_t fpcr) { asm volatile("msr fpcr, %0" : : "r"(fpcr)); }
constexpr uint64_t kFpcrFlushToZero = uint64_t{1} << 24;
#endif

struct RoundingDuel {
  Context main{};
  Context self{};
  int initial_mode = -1;
  uint64_t initial_control = 0;  // MXCSR (x86-64) or FPCR (aarch64) as the new context found it
  uint16_t initial_x87cw = 0;
  int64_t wrong_mode = 0;   // resumptions that found another mode than the fiber's own
  int64_t wrong_value = 0;  // resumptions where arithmetic did not round upwards
  int64_t resumptions = 0;
  Quotients up{};  // what the context computed rounding upwards
};

void RoundingEntry(void* arg) {
  auto* duel = static_cast<RoundingDuel*>(arg);
  duel->initial_mode = fegetround();
#if defined(__x86_64__)
  duel->initial_control = _mm_getcsr() & ~kMxcsrExceptionFlags;
  duel->initial_x87cw = X87ControlWord();
#elif defined(__aarch64__)
  duel->initial_control = ReadFpcr();
#endif
  fesetround(FE_UPWARD);
  const Quotients up = Divide();
  duel->up = up;
  for (;;) {
    gl_context_switch(&duel->self, &duel->main);
    ++duel->resumptions;
    if (fegetround() != FE_UPWARD) ++duel->wrong_mode;
#if defined(__x86_64__)
    if ((_mm_getcsr() & kMxcsrRoundingMask) != 0x4000) ++duel->wrong_mode;
#endif
    if (Divide() != up) ++duel->wrong_value;
  }
}

// Restores the thread's floating-point environment whatever the test does.
class FloatingPointEnvGuard {
 public:
  FloatingPointEnvGuard() { fegetenv(&env_); }
  ~FloatingPointEnvGuard() { fesetenv(&env_); }

 private:
  fenv_t env_;
};

TEST(ContextTest, FloatingPointRoundingModeBelongsToEachContext) {
  constexpr int kRounds = 1000;
  FloatingPointEnvGuard restore;
  TestStack stack;
  ASSERT_NE(stack.lo(), nullptr);
  RoundingDuel duel;
  InitContext(&duel.self, stack.hi(), &RoundingEntry, &duel);

  ASSERT_EQ(fesetround(FE_TONEAREST), 0);
  const Quotients nearest = Divide();
  ASSERT_EQ(fesetround(FE_DOWNWARD), 0);
  const Quotients down = Divide();
#if defined(__x86_64__)
  const long double x87_down = X87Divide();
#endif
  int64_t wrong_mode = 0, wrong_value = 0;
  for (int i = 0; i < kRounds; ++i) {
    gl_context_switch(&duel.main, &duel.self);
    if (fegetround() != FE_DOWNWARD) ++wrong_mode;
#if defined(__x86_64__)
    if ((_mm_getcsr() & kMxcsrRoundingMask) != 0x2000) ++wrong_mode;
    if (X87Divide() != x87_down) ++wrong_value;
#endif
    if (Divide() != down) ++wrong_value;
  }
  EXPECT_EQ(duel.initial_mode, FE_TONEAREST) << "a new context must start rounding to nearest";
  EXPECT_EQ(wrong_mode, 0) << "the caller's rounding mode was not restored";
  EXPECT_EQ(wrong_value, 0);
  EXPECT_EQ(duel.resumptions, kRounds - 1);
  EXPECT_EQ(duel.wrong_mode, 0) << "the context's own rounding mode was not restored";
  EXPECT_EQ(duel.wrong_value, 0);
  // The three modes really give three different results.
  EXPECT_NE(down, nearest);
  EXPECT_NE(duel.up, nearest);
  EXPECT_NE(duel.up, down);
}

TEST(ContextTest, NewContextStartsWithTheDefaultFloatingPointControlState) {
  FloatingPointEnvGuard restore;
  TestStack stack;
  ASSERT_NE(stack.lo(), nullptr);
  RoundingDuel duel;
  InitContext(&duel.self, stack.hi(), &RoundingEntry, &duel);
  // Leave non-default state in the creator: it must not leak into the new context.
  ASSERT_EQ(fesetround(FE_TOWARDZERO), 0);
#if defined(__x86_64__)
  const uint32_t mine = _mm_getcsr() | kMxcsrFlushToZero | kMxcsrDenormalsAreZero;
  _mm_setcsr(mine);
#elif defined(__aarch64__)
  const uint64_t mine = ReadFpcr() | kFpcrFlushToZero;
  WriteFpcr(mine);
#endif
  gl_context_switch(&duel.main, &duel.self);
  EXPECT_EQ(duel.initial_mode, FE_TONEAREST);
#if defined(__x86_64__)
  EXPECT_EQ(duel.initial_control, 0x1F80u) << std::hex << duel.initial_control;
  EXPECT_EQ(duel.initial_x87cw, 0x037F) << std::hex << duel.initial_x87cw;
  EXPECT_EQ(_mm_getcsr() & ~kMxcsrExceptionFlags, mine & ~kMxcsrExceptionFlags);
#elif defined(__aarch64__)
  EXPECT_EQ(duel.initial_control, 0u) << std::hex << duel.initial_control;
  EXPECT_EQ(ReadFpcr(), mine);
#endif
  EXPECT_EQ(fegetround(), FE_TOWARDZERO);
}

}  // namespace
}  // namespace greenline
