// Fatal errors: the runtime's way of stopping the program when continuing would be wrong.
//
// Fatal() prints "fatal error: <message>" on stderr as Go does, then whatever the installed hook
// prints (the scheduler installs the goroutine dump), and exits with status 2, Go's status for
// fatal errors and unrecovered panics. Messages about a broken runtime invariant start with
// "runtime: ". Output uses write(2) directly: nothing is buffered, nothing allocates on the way out
// except the hook's symbolisation.
#pragma once

#include <string_view>

#include "runtime/base/runtime_internal.h"

namespace greenline {

// Prints "fatal error: <message>\n", runs the hook, exits 2. Callable from any thread.
[[noreturn]] void Fatal(std::string_view message);

// As Fatal(), with printf formatting.
[[noreturn]] void Fatalf(const char* format, ...) __attribute__((format(printf, 1, 2)));

// Called by Fatal() after its message, with the fd to write to (stderr). One hook at a time.
using FatalHook = void (*)(int fd);
void SetFatalHook(FatalHook hook);

// write(2) until done or error; async-signal-safe.
void WriteAll(int fd, std::string_view text);

// Writes `value` in decimal; async-signal-safe.
void WriteDecimal(int fd, unsigned long long value);

}  // namespace greenline
