#include "runtime/base/fatal.h"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cstdio>

namespace greenline {
namespace {
std::atomic<FatalHook> g_hook{nullptr};
// One fatal report at a time: a second thread failing while the first reports waits to die.
std::atomic<bool> g_dying{false};
}  // namespace

void WriteAll(int fd, std::string_view text) {
  while (!text.empty()) {
    ssize_t n = ::write(fd, text.data(), text.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    text.remove_prefix(static_cast<size_t>(n));
  }
}

void WriteDecimal(int fd, unsigned long long value) {
  char buf[24];
  int i = sizeof buf;
  do {
    buf[--i] = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value != 0);
  WriteAll(fd, std::string_view(buf + i, sizeof buf - i));
}

void SetFatalHook(FatalHook hook) { g_hook.store(hook, std::memory_order_release); }

void Fatal(std::string_view message) {
  if (g_dying.exchange(true)) {
    for (;;) pause();
  }
  WriteAll(STDERR_FILENO, "fatal error: ");
  WriteAll(STDERR_FILENO, message);
  WriteAll(STDERR_FILENO, "\n");
  if (FatalHook hook = g_hook.load(std::memory_order_acquire)) {
    WriteAll(STDERR_FILENO, "\n");
    hook(STDERR_FILENO);
  }
  _exit(2);
}

void Fatalf(const char* format, ...) {
  char buf[1024];
  va_list args;
  va_start(args, format);
  int n = std::vsnprintf(buf, sizeof buf, format, args);
  va_end(args);
  Fatal(std::string_view(buf,
                         n < 0 ? 0 : (static_cast<size_t>(n) < sizeof buf ? n : sizeof buf - 1)));
}

}  // namespace greenline
