// Tests for choosing the netpoller backend (PollerKind, greenline/runtime.h) where io_uring is
// forbidden. Each runs in a forked child that installs a seccomp filter making io_uring_setup fail
// with EPERM, as Docker's (>= 25) default profile does: with PollerKind::kAuto the runtime falls
// back to epoll, says why in net::PollerReason(), and serves a loopback echo; with
// PollerKind::kIoUring forced it stops with a fatal error naming io_uring. Also: kAuto picks
// io_uring where it is allowed, and GREENLINE_POLLER=epoll overrides kAuto. Skipped where the
// kernel has no io_uring at all.
#include <errno.h>
#include <gtest/gtest.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <utility>

#include "greenline/goroutine.h"
#include "greenline/net.h"
#include "greenline/runtime.h"
#include "greenline/wait_group.h"
#include "tests/util/child_process.h"
#include "tests/util/net.h"

namespace greenline {
namespace {

using testing::ChildResult;
using testing::RunInChild;

#if defined(__x86_64__)
constexpr uint32_t kAuditArch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
constexpr uint32_t kAuditArch = AUDIT_ARCH_AARCH64;
#else
#error "add this architecture's AUDIT_ARCH_ value"
#endif

// Installs a seccomp filter on this process (its later threads inherit it): io_uring_setup fails
// with EPERM, every other system call of this architecture is allowed, and a system call of
// another architecture (whose numbers mean something else) kills the process. "" on success,
// else why not.
std::string ForbidIoUringSetup() {
  sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, kAuditArch, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog program{static_cast<unsigned short>(sizeof filter / sizeof filter[0]), filter};
  // Without CAP_SYS_ADMIN, a filter needs no_new_privs (so a setuid exec cannot be subverted).
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    return std::string("prctl(PR_SET_NO_NEW_PRIVS): ") + std::strerror(errno);
  }
  if (syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, 0, &program) != 0) {
    return std::string("seccomp(SECCOMP_SET_MODE_FILTER): ") + std::strerror(errno);
  }
  return "";
}

// One echo round trip over loopback; "" if it worked, else what failed.
std::string EchoOnce() {
  std::pair<net::Listener, net::Error> l = net::Listen("tcp", "127.0.0.1:0");
  if (l.second) return "listen: " + l.second.String();
  net::Listener ln = l.first;
  WaitGroup server_done;
  testing::GoEchoServer(ln, server_done);
  std::string result;
  std::pair<net::Conn, net::Error> d = net::Dial("tcp", ln.LocalAddr().String());
  if (d.second) {
    result = "dial: " + d.second.String();
  } else {
    net::Conn c = d.first;
    char buf[5];
    net::Error err;
    if (net::Error w = c.Write("hello").err) {
      result = "write: " + w.String();
    } else if (!testing::ReadFull(c, buf, sizeof buf, &err)) {
      result = "read: " + err.String();
    } else if (std::string(buf, sizeof buf) != "hello") {
      result = "echoed wrong bytes";
    }
    c.Close();
  }
  ln.Close();
  server_done.Wait();
  return result;
}

// Runs a runtime with `kind` in a child, optionally under the filter, and prints what the child
// saw, one "key=value" per line: poller, reason, echo ("ok" or what failed).
ChildResult RunAndReport(PollerKind kind, bool forbid_uring, const char* env_poller = nullptr) {
  return RunInChild(
      [&] {
        if (env_poller != nullptr) {
          setenv("GREENLINE_POLLER", env_poller, 1);
        } else {
          unsetenv("GREENLINE_POLLER");
        }
        if (forbid_uring) {
          std::string why = ForbidIoUringSetup();
          if (!why.empty()) {
            std::printf("skip=%s\n", why.c_str());
            return;
          }
        }
        Options options;
        options.max_procs = 2;
        options.poller = kind;
        greenline::Run(
            [] {
              std::string echo = EchoOnce();
              std::printf("poller=%s\nreason=%s\necho=%s\n", net::PollerName().c_str(),
                          net::PollerReason().c_str(), echo.empty() ? "ok" : echo.c_str());
            },
            options);
      },
      30);
}

// The value of "key=" on its own line in `output`, or "" if absent.
std::string Field(const std::string& output, const std::string& key) {
  std::string prefix = key + "=";
  for (size_t at = output.find(prefix); at != std::string::npos; at = output.find(prefix, at + 1)) {
    if (at != 0 && output[at - 1] != '\n') continue;
    size_t end = output.find('\n', at);
    return output.substr(at + prefix.size(),
                         end == std::string::npos ? end : end - at - prefix.size());
  }
  return "";
}

class NetFallbackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::KernelHasIoUring()) GTEST_SKIP() << "this kernel has no io_uring at all";
  }
};

TEST_F(NetFallbackTest, AutoFallsBackToEpollWhenSeccompForbidsIoUring) {
  ChildResult r = RunAndReport(PollerKind::kAuto, /*forbid_uring=*/true);
  if (!Field(r.output, "skip").empty()) GTEST_SKIP() << Field(r.output, "skip");
  ASSERT_TRUE(r.exited && r.exit_code == 0)
      << "exit " << r.exit_code << " signal " << r.signal << "\n"
      << r.output;
  EXPECT_EQ(Field(r.output, "poller"), "epoll") << r.output;
  std::string reason = Field(r.output, "reason");
  EXPECT_NE(reason.find("EPERM"), std::string::npos) << reason;
  EXPECT_NE(reason.find("Operation not permitted"), std::string::npos) << reason;
  EXPECT_EQ(Field(r.output, "echo"), "ok") << r.output;
}

TEST_F(NetFallbackTest, ForcedIoUringUnderSeccompIsAFatalErrorNamingIt) {
  ChildResult r = RunAndReport(PollerKind::kIoUring, /*forbid_uring=*/true);
  if (!Field(r.output, "skip").empty()) GTEST_SKIP() << Field(r.output, "skip");
  EXPECT_TRUE(testing::IsFatalError(r, "runtime: io_uring"));
  EXPECT_NE(r.output.find("EPERM"), std::string::npos) << r.output;
  EXPECT_EQ(Field(r.output, "echo"), "") << "the main goroutine must not have run\n" << r.output;
}

TEST_F(NetFallbackTest, AutoChoosesIoUringWhereTheKernelAllowsIt) {
  std::string why = testing::UringUnavailableReason();
  if (!why.empty()) GTEST_SKIP() << why;
  ChildResult r = RunAndReport(PollerKind::kAuto, /*forbid_uring=*/false);
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.output;
  EXPECT_EQ(Field(r.output, "poller"), "io_uring") << r.output;
  EXPECT_EQ(Field(r.output, "echo"), "ok") << r.output;
}

TEST(PollerChoiceTest, EnvironmentChoosesEpollOverAuto) {
  ChildResult r = RunAndReport(PollerKind::kAuto, /*forbid_uring=*/false, "epoll");
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.output;
  EXPECT_EQ(Field(r.output, "poller"), "epoll") << r.output;
  EXPECT_NE(Field(r.output, "reason").find("GREENLINE_POLLER"), std::string::npos) << r.output;
  EXPECT_EQ(Field(r.output, "echo"), "ok") << r.output;
}

}  // namespace
}  // namespace greenline
