// Tests for greenline/dump.h: the goroutine dump in Go's format, on demand and on SIGQUIT. Each
// goroutine shows its id and state ("running", or its wait reason: "sleep", "sync.WaitGroup.Wait",
// "syscall") and its stack walked by frame pointer, naming the runtime call it waits in; after
// SIGQUIT the process keeps running.
#include "greenline/dump.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>

#include "greenline/goroutine.h"
#include "greenline/runtime.h"
#include "greenline/wait_group.h"
#include "tests/util/child_process.h"
#include "tests/util/goroutines.h"

namespace greenline {
namespace {

using namespace std::chrono_literals;
using testing::RunInChild;

std::string ReadAll(int fd) {
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  return out;
}

// Starts goroutines in known states: 2 asleep, 3 blocked on a wait group, 4 in a blocking call.
// After setting `stop`, the caller must wait on `call_done` before its frame (which holds `stop`)
// goes away: the blocking call polls `stop` from a pool thread.
void StartKnownGoroutines(WaitGroup& release, std::atomic<bool>& stop, WaitGroup& call_done) {
  WaitGroup started;
  started.Add(3);
  Go([&] {
    started.Done();
    Sleep(1h);
  });
  Go([&] {
    started.Done();
    release.Wait();
  });
  testing::GoBlockedInSyscall(stop, started, call_done);
  started.Wait();
  Sleep(20ms);  // let them park
}

TEST(DumpTest, ShowsEachGoroutineStateAndStack) {
  std::string dump;
  greenline::Run([&] {
    WaitGroup release;
    release.Add(1);
    std::atomic<bool> stop{false};
    WaitGroup call_done;
    StartKnownGoroutines(release, stop, call_done);
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    // The dump is written from another thread while goroutine 1 keeps running.
    Blocking([&] {
      WriteGoroutineDump(fds[1]);
      close(fds[1]);
    });
    dump = ReadAll(fds[0]);
    close(fds[0]);
    stop = true;
    release.Done();
    call_done.Wait();
  });
  EXPECT_NE(dump.find("goroutine 1 [syscall]:"), std::string::npos) << dump;
  EXPECT_NE(dump.find("goroutine 2 [sleep]:"), std::string::npos) << dump;
  EXPECT_NE(dump.find("goroutine 3 [sync.WaitGroup.Wait]:"), std::string::npos) << dump;
  EXPECT_NE(dump.find("goroutine 4 [syscall]:"), std::string::npos) << dump;
  // Frames walked from the saved contexts name the calls the goroutines wait in.
  EXPECT_NE(dump.find("greenline::Sleep"), std::string::npos) << dump;
  EXPECT_NE(dump.find("greenline::WaitGroup::Wait"), std::string::npos) << dump;
}

TEST(DumpTest, SigquitPrintsTheDumpAndTheProcessKeepsRunning) {
  auto r = RunInChild(
      [] {
        greenline::Run([] {
          WaitGroup release;
          release.Add(1);
          std::atomic<bool> stop{false};
          WaitGroup call_done;
          StartKnownGoroutines(release, stop, call_done);
          int before = SigquitDumpCount();
          kill(getpid(), SIGQUIT);
          auto deadline = std::chrono::steady_clock::now() + 10s;
          // Busy here, so the dump shows goroutine 1 executing, captured on its worker.
          while (SigquitDumpCount() == before && std::chrono::steady_clock::now() < deadline) {
          }
          std::fprintf(stdout, "still running after %d dump(s)\n", SigquitDumpCount() - before);
          std::fflush(stdout);
          stop = true;
          release.Done();
          call_done.Wait();
        });
      },
      30);
  ASSERT_TRUE(r.exited) << r.output;
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("SIGQUIT: goroutine dump"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("goroutine 1 [running]:"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("[sleep]"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("[sync.WaitGroup.Wait]"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("[syscall]"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("still running after 1 dump(s)"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace greenline
