// RuntimeError: what the runtime throws for Go's run-time panics: "send on closed channel",
// "close of closed channel", "close of nil channel".
//
// In Go these are panics: they unwind the goroutine, run its deferred calls, can be recovered, and
// end the program ("panic: <message>", "goroutine N [running]:", exit status 2) when nothing
// recovers them. A C++ exception has the same shape, so the runtime throws one: caught, it is a
// recover; escaping a goroutine, the scheduler reports it in Go's format (without the C++ type
// name it adds for other exceptions). The defer/panic/recover layer builds on this type.
#pragma once

#include <stdexcept>

namespace greenline {

class RuntimeError : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

}  // namespace greenline
