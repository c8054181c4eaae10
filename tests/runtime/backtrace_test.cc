// Checks runtime/base/backtrace.h: WalkFramePointers follows the frame records of this thread's own
// stack through a chain of non-inlined functions, and of a parked fiber from its saved context down
// to gl_context_entry, where the chain ends; it puts the given pc first, honours `max`, and reads
// only inside [lo, hi): bounds that cut a real chain stop it exactly there, and hand-made chains in
// a page followed by an inaccessible one (a record straddling `hi`, pointers that go down, loop,
// leave the bounds, are misaligned or sit at the very top of the address space, a zero return
// address) end the walk instead of faulting. WriteBacktrace prints one line per pc with the
// demangled names of exported functions (test binaries link with -rdynamic), or the mangled ones
// when asked not to demangle, "??" for an address no symbol covers, and FormatBacktrace returns the
// same text.
#include "runtime/base/backtrace.h"

#include <cxxabi.h>
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/fiber/fiber.h"
#include "runtime/fiber/stack.h"

// Never inlined, never cloned (a clone such as `f.constprop.0` is a local symbol dladdr cannot
// name), and with a frame record of their own.
#if defined(__clang__)
#define GL_TEST_NOINLINE __attribute__((noinline))
#else
#define GL_TEST_NOINLINE __attribute__((noipa))
#endif

// The functions whose names the backtraces must show have external linkage: dladdr only finds
// exported symbols, and an anonymous namespace would hide them.
namespace greenline::backtrace_test {

struct Capture {
  uintptr_t frames[3] = {};  // frame addresses of ChainLevel1, 2 and 3
  uintptr_t lo = 0, hi = 0;  // bounds for the walk
  uintptr_t pc = 0;
  int max = 64;
  uintptr_t pcs[64] = {};
  int n = -1;
};

GL_TEST_NOINLINE int ChainLevel3(Capture* c) {
  c->frames[2] = reinterpret_cast<uintptr_t>(__builtin_frame_address(0));
  c->n = WalkFramePointers(c->frames[2], c->pc, c->lo, c->hi, c->pcs, c->max);
  return c->n + 1;
}

GL_TEST_NOINLINE int ChainLevel2(Capture* c) {
  c->frames[1] = reinterpret_cast<uintptr_t>(__builtin_frame_address(0));
  return ChainLevel3(c) + 1;
}

GL_TEST_NOINLINE int ChainLevel1(Capture* c) {
  c->frames[0] = reinterpret_cast<uintptr_t>(__builtin_frame_address(0));
  return ChainLevel2(c) + 1;
}

// Every test starts the chain here, so the return address into RunChain is the same from any
// call site, and so are the frames' addresses when called from the same depth.
GL_TEST_NOINLINE int RunChain(Capture* c) { return ChainLevel1(c) + 1; }

struct Parked {
  greenline::Fiber main;
  greenline::Fiber self;
  bool done = false;
};

GL_TEST_NOINLINE int FiberLevel2(Parked* p) {
  greenline::SwitchFiber(&p->self, &p->main);
  return p->done ? 1 : 2;
}

GL_TEST_NOINLINE int FiberLevel1(Parked* p) { return FiberLevel2(p) + 1; }

void ParkedFiberEntry(void* arg) {
  greenline::FiberEntered();
  auto* p = static_cast<Parked*>(arg);
  FiberLevel1(p);
  p->done = true;
  greenline::SwitchFiberFinal(&p->self, &p->main);
}

}  // namespace greenline::backtrace_test

namespace greenline {
namespace {

using backtrace_test::Capture;

// The calling thread's stack, [lo, hi).
void ThreadStackBounds(uintptr_t* lo, uintptr_t* hi) {
  pthread_attr_t attr;
  ASSERT_EQ(pthread_getattr_np(pthread_self(), &attr), 0);
  void* addr = nullptr;
  size_t size = 0;
  ASSERT_EQ(pthread_attr_getstack(&attr, &addr, &size), 0);
  pthread_attr_destroy(&attr);
  *lo = reinterpret_cast<uintptr_t>(addr);
  *hi = *lo + size;
}

// The demangled name of the function containing `addr`, or "" if dladdr finds none.
std::string SymbolAt(uintptr_t addr) {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(addr), &info) == 0 || info.dli_sname == nullptr) return "";
  int status = 0;
  char* demangled = abi::__cxa_demangle(info.dli_sname, nullptr, nullptr, &status);
  std::string name = status == 0 && demangled != nullptr ? demangled : info.dli_sname;
  std::free(demangled);
  return name;
}

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// --- Walking real stacks -----------------------------------------------------------------------

TEST(BacktraceTest, WalksItsOwnStackThroughANoinlineChain) {
  Capture c;
  ThreadStackBounds(&c.lo, &c.hi);
  backtrace_test::RunChain(&c);
  ASSERT_GE(c.n, 3);
  EXPECT_LT(c.n, c.max) << "the walk should end at the thread's first frame";
  EXPECT_LT(c.frames[2], c.frames[1]);
  EXPECT_LT(c.frames[1], c.frames[0]);
  // pc was 0, so the first entry is ChainLevel3's return address into ChainLevel2.
  EXPECT_TRUE(Contains(SymbolAt(c.pcs[0] - 1), "backtrace_test::ChainLevel2("))
      << SymbolAt(c.pcs[0] - 1);
  EXPECT_TRUE(Contains(SymbolAt(c.pcs[1] - 1), "backtrace_test::ChainLevel1("))
      << SymbolAt(c.pcs[1] - 1);
  EXPECT_TRUE(Contains(SymbolAt(c.pcs[2] - 1), "backtrace_test::RunChain("))
      << SymbolAt(c.pcs[2] - 1);
  for (int i = 0; i < c.n; ++i) EXPECT_NE(c.pcs[i], 0u) << "frame " << i;
}

TEST(BacktraceTest, PutsTheGivenPcFirstAndHonoursMax) {
  Capture c;
  ThreadStackBounds(&c.lo, &c.hi);
  c.pc = 0x1234;
  backtrace_test::RunChain(&c);
  ASSERT_GE(c.n, 4);
  EXPECT_EQ(c.pcs[0], 0x1234u);
  EXPECT_TRUE(Contains(SymbolAt(c.pcs[1] - 1), "ChainLevel2"));

  for (int max : {0, 1, 2, 3}) {
    Capture limited;
    ThreadStackBounds(&limited.lo, &limited.hi);
    limited.pc = 0x1234;
    limited.max = max;
    limited.pcs[max] = 0xdead;  // must stay untouched
    backtrace_test::RunChain(&limited);
    EXPECT_EQ(limited.n, max);
    EXPECT_EQ(limited.pcs[max], 0xdeadu) << "wrote past max=" << max;
  }
}

TEST(BacktraceTest, StopsWhereTheBoundsCutTheChain) {
  // Bounds from ChainLevel3's frame up to (not including) ChainLevel1's record: two records.
  Capture probe;
  ThreadStackBounds(&probe.lo, &probe.hi);
  backtrace_test::RunChain(&probe);
  ASSERT_GE(probe.n, 3);

  // The same call from the same place puts the frames at the same addresses.
  Capture cut;
  cut.lo = probe.frames[2];
  cut.hi = probe.frames[0];
  backtrace_test::RunChain(&cut);
  ASSERT_EQ(cut.frames[0], probe.frames[0]) << "frames moved between two identical calls";
  EXPECT_EQ(cut.n, 2);
  EXPECT_EQ(cut.pcs[0], probe.pcs[0]);
  EXPECT_EQ(cut.pcs[1], probe.pcs[1]);

  // One record more: ChainLevel1's, exactly at the upper bound.
  Capture one_more;
  one_more.lo = probe.frames[2];
  one_more.hi = probe.frames[0] + 2 * sizeof(uintptr_t);
  backtrace_test::RunChain(&one_more);
  EXPECT_EQ(one_more.n, 3);
  EXPECT_EQ(one_more.pcs[2], probe.pcs[2]);

  // A start below lo: nothing but the pc.
  Capture above;
  above.lo = probe.frames[1];
  above.hi = probe.hi;
  above.pc = 0x42;
  backtrace_test::RunChain(&above);
  EXPECT_EQ(above.n, 1);
  EXPECT_EQ(above.pcs[0], 0x42u);
}

TEST(BacktraceTest, WalksAParkedFiberFromItsSavedContextDownToItsEntry) {
  StackPool pool(kDefaultStackSize);
  Stack s;
  ASSERT_TRUE(pool.Allocate(&s));
  backtrace_test::Parked p;
  InitThreadFiber(&p.main);
  InitFiber(&p.self, s.lo, s.size, s.hi(), &backtrace_test::ParkedFiberEntry, &p);
  SwitchFiber(&p.main, &p.self);  // parks in FiberLevel2

  uintptr_t pcs[32];
  const auto lo = reinterpret_cast<uintptr_t>(s.lo), hi = reinterpret_cast<uintptr_t>(s.hi());
  EXPECT_GE(ContextFramePointer(p.self.ctx), lo);
  EXPECT_LT(ContextFramePointer(p.self.ctx), hi);
  int n =
      WalkFramePointers(ContextFramePointer(p.self.ctx), ContextPc(p.self.ctx), lo, hi, pcs, 32);
  const std::string text = FormatBacktrace(pcs, n);
  SCOPED_TRACE(text);
  // SwitchFiber (unless it tail-calls the switch), FiberLevel2, FiberLevel1, the entry and the
  // frame gl_context_entry leaves, whose zeroed frame pointer ends the chain.
  EXPECT_GE(n, 4);
  EXPECT_LE(n, 6);
  const size_t level2 = text.find("backtrace_test::FiberLevel2(");
  const size_t level1 = text.find("backtrace_test::FiberLevel1(");
  const size_t entry = text.find("backtrace_test::ParkedFiberEntry(");
  const size_t bottom = text.find("gl_context_entry");
  ASSERT_NE(level2, std::string::npos);
  ASSERT_NE(level1, std::string::npos);
  ASSERT_NE(entry, std::string::npos);
  ASSERT_NE(bottom, std::string::npos);
  EXPECT_LT(level2, level1);
  EXPECT_LT(level1, entry);
  EXPECT_LT(entry, bottom);
  EXPECT_EQ(SymbolAt(pcs[n - 1] - 1), "gl_context_entry") << "the walk must end at the entry";

  SwitchFiber(&p.main, &p.self);  // let it finish
  EXPECT_TRUE(p.done);
  DestroyFiber(&p.self);
  UnpoisonStack(s.lo, s.size);
  pool.Release(s);
}

// --- Walking hand-made chains ------------------------------------------------------------------

// One readable page followed by an inaccessible one: a walk that reads past `hi()` faults.
class FakeStack {
 public:
  FakeStack() : page_(static_cast<size_t>(sysconf(_SC_PAGESIZE))) {
    void* p = mmap(nullptr, 2 * page_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return;
    base_ = static_cast<char*>(p);
    mprotect(base_ + page_, page_, PROT_NONE);
  }
  ~FakeStack() {
    if (base_ != nullptr) munmap(base_, 2 * page_);
  }
  bool ok() const { return base_ != nullptr; }
  uintptr_t lo() const { return reinterpret_cast<uintptr_t>(base_); }
  uintptr_t hi() const { return lo() + page_; }
  // Writes a frame record {next, ret} at `at`.
  void Record(uintptr_t at, uintptr_t next, uintptr_t ret) {
    auto* words = reinterpret_cast<uintptr_t*>(at);
    words[0] = next;
    words[1] = ret;
  }

 private:
  size_t page_;
  char* base_ = nullptr;
};

constexpr uintptr_t kWord = sizeof(uintptr_t);

TEST(BacktraceTest, FollowsAHandMadeChainUpwards) {
  FakeStack fs;
  ASSERT_TRUE(fs.ok());
  const uintptr_t a = fs.lo() + 64, b = fs.lo() + 256, c = fs.lo() + 1024;
  fs.Record(a, b, 0x1001);
  fs.Record(b, c, 0x1002);
  fs.Record(c, 0, 0x1003);  // the outermost frame: next 0 ends the chain
  uintptr_t pcs[8];
  ASSERT_EQ(WalkFramePointers(a, 0x1000, fs.lo(), fs.hi(), pcs, 8), 4);
  EXPECT_EQ(pcs[0], 0x1000u);
  EXPECT_EQ(pcs[1], 0x1001u);
  EXPECT_EQ(pcs[2], 0x1002u);
  EXPECT_EQ(pcs[3], 0x1003u);
  EXPECT_EQ(WalkFramePointers(a, 0, fs.lo(), fs.hi(), pcs, 8), 3) << "pc 0 is not recorded";
  EXPECT_EQ(pcs[0], 0x1001u);
}

TEST(BacktraceTest, NeverReadsARecordThatStraddlesTheUpperBound) {
  FakeStack fs;
  ASSERT_TRUE(fs.ok());
  const uintptr_t a = fs.lo() + 64;
  // The next record would start one word below hi: its return address is past the page.
  fs.Record(a, fs.hi() - kWord, 0x2001);
  *reinterpret_cast<uintptr_t*>(fs.hi() - kWord) = fs.hi() + 64;
  uintptr_t pcs[8];
  EXPECT_EQ(WalkFramePointers(a, 0, fs.lo(), fs.hi(), pcs, 8), 1);
  // A record ending exactly at hi is read.
  fs.Record(a, fs.hi() - 2 * kWord, 0x2001);
  fs.Record(fs.hi() - 2 * kWord, fs.hi(), 0x2002);  // and then hi itself is out
  EXPECT_EQ(WalkFramePointers(a, 0, fs.lo(), fs.hi(), pcs, 8), 2);
  EXPECT_EQ(pcs[1], 0x2002u);
}

TEST(BacktraceTest, StopsAtPointersThatLeaveTheBoundsGoDownOrLoop) {
  FakeStack fs;
  ASSERT_TRUE(fs.ok());
  const uintptr_t a = fs.lo() + 512;
  uintptr_t pcs[8];
  fs.Record(a, fs.hi() + 4 * kWord, 0x3001);  // into the inaccessible page
  EXPECT_EQ(WalkFramePointers(a, 0, fs.lo(), fs.hi(), pcs, 8), 1);
  fs.Record(a, fs.lo() + 64, 0x3001);  // downwards
  fs.Record(fs.lo() + 64, a, 0x3002);
  EXPECT_EQ(WalkFramePointers(a, 0, fs.lo(), fs.hi(), pcs, 8), 1);
  fs.Record(a, a, 0x3001);  // a loop
  EXPECT_EQ(WalkFramePointers(a, 0, fs.lo(), fs.hi(), pcs, 8), 1);
  fs.Record(a, a + 64 + 4, 0x3001);  // misaligned
  EXPECT_EQ(WalkFramePointers(a, 0, fs.lo(), fs.hi(), pcs, 8), 1);
  fs.Record(a, a + 64, 0);  // a zero return address ends the chain before it is recorded
  EXPECT_EQ(WalkFramePointers(a, 0x3000, fs.lo(), fs.hi(), pcs, 8), 1);
  EXPECT_EQ(WalkFramePointers(fs.lo() - 64, 0, fs.lo(), fs.hi(), pcs, 8), 0) << "start below lo";
  EXPECT_EQ(WalkFramePointers(fs.hi(), 0, fs.lo(), fs.hi(), pcs, 8), 0) << "start at hi";
}

// A torn chain can hold any value. A frame pointer in the last two words of the address space
// passes `fp + 16 > hi` only because the sum wraps around; the walk must stop there, not fault.
TEST(BacktraceDeathTest, StopsAtAFramePointerAtTheTopOfTheAddressSpace) {
  EXPECT_EXIT(
      {
        FakeStack fs;
        const uintptr_t a = fs.lo() + 64;
        uintptr_t pcs[8];
        int worst = 0;
        for (uintptr_t top : {UINTPTR_MAX - kWord + 1, UINTPTR_MAX - 2 * kWord + 1}) {
          fs.Record(a, top, 0x4001);
          int n = WalkFramePointers(a, 0, fs.lo(), fs.hi(), pcs, 8);
          if (n != 1) worst = n;
        }
        _exit(worst == 0 ? 0 : 10 + worst);
      },
      testing::ExitedWithCode(0), "");
}

// --- Printing ----------------------------------------------------------------------------------

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

std::string WriteToPipe(const uintptr_t* pcs, int n, bool demangle) {
  int fds[2];
  if (pipe(fds) != 0) return "pipe failed";
  WriteBacktrace(fds[1], pcs, n, demangle);
  close(fds[1]);
  std::string out;
  char buf[4096];
  ssize_t got;
  while ((got = read(fds[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(got));
  close(fds[0]);
  return out;
}

TEST(BacktraceTest, WriteBacktracePrintsOneDemangledLinePerPc) {
  Capture c;
  ThreadStackBounds(&c.lo, &c.hi);
  backtrace_test::RunChain(&c);
  ASSERT_GE(c.n, 3);
  const std::string text = WriteToPipe(c.pcs, c.n, true);
  SCOPED_TRACE(text);
  const std::vector<std::string> lines = Lines(text);
  ASSERT_EQ(lines.size(), static_cast<size_t>(c.n));
  for (int i = 0; i < c.n; ++i) {
    EXPECT_EQ(lines[i].rfind("\t#" + std::to_string(i) + " 0x", 0), 0u) << lines[i];
  }
  EXPECT_TRUE(Contains(lines[0],
                       "greenline::backtrace_test::ChainLevel2(greenline::backtrace_test::"
                       "Capture*)+0x"));
  EXPECT_TRUE(Contains(lines[1], "greenline::backtrace_test::ChainLevel1("));
  EXPECT_TRUE(Contains(lines[0], " (")) << "the module is printed";
  EXPECT_EQ(text.back(), '\n');
}

TEST(BacktraceTest, WriteBacktraceWithoutDemanglingPrintsMangledNames) {
  Capture c;
  ThreadStackBounds(&c.lo, &c.hi);
  backtrace_test::RunChain(&c);
  ASSERT_GE(c.n, 2);
  const std::string text = WriteToPipe(c.pcs, 2, false);
  EXPECT_TRUE(Contains(text, "_ZN9greenline14backtrace_test11ChainLevel2E")) << text;
  EXPECT_FALSE(Contains(text, "backtrace_test::ChainLevel2(")) << text;
}

TEST(BacktraceTest, FormatBacktraceReturnsWhatWriteBacktraceWrites) {
  Capture c;
  ThreadStackBounds(&c.lo, &c.hi);
  backtrace_test::RunChain(&c);
  ASSERT_GE(c.n, 3);
  EXPECT_EQ(FormatBacktrace(c.pcs, c.n), WriteToPipe(c.pcs, c.n, true));
  EXPECT_EQ(FormatBacktrace(c.pcs, 0), "");
}

TEST(BacktraceTest, NamesTheFirstPcExactlyAndLaterOnesByTheCall) {
  // The first pc is where execution is (a function's first byte here); the others are return
  // addresses, looked up one byte earlier so a call at a function's end still names the caller.
  const auto entry = reinterpret_cast<uintptr_t>(&backtrace_test::ChainLevel1);
  const uintptr_t pcs[] = {entry, entry + 1};
  const std::vector<std::string> lines = Lines(FormatBacktrace(pcs, 2));
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_TRUE(Contains(lines[0], "ChainLevel1(greenline::backtrace_test::Capture*)+0x0 ("))
      << lines[0];
  EXPECT_TRUE(Contains(lines[1], "ChainLevel1(greenline::backtrace_test::Capture*)+0x1 ("))
      << lines[1];
}

TEST(BacktraceTest, PrintsQuestionMarksForAnAddressNoSymbolCovers) {
  const uintptr_t pcs[] = {0x10};
  const std::string text = FormatBacktrace(pcs, 1);
  EXPECT_TRUE(Contains(text, "\t#0 0x10 ?? (")) << text;
  EXPECT_EQ(WriteToPipe(pcs, 1, false), text);
}

}  // namespace
}  // namespace greenline
