// Goroutine dumps, Go's format:
//
//   goroutine 7 [chan receive, 3 minutes]:
//   	#0 0x55d0c0a1b2c3 greenline::internal::Park(...)+0x8f (/usr/local/bin/greenline)
//   	...
//
// One block per goroutine: its id, its state (running, runnable, or the wait reason) and, as Go
// does, how long it has waited once that is a minute or more; then its stack, walked by frame
// pointer from the saved context (parked and runnable goroutines) or captured on its worker by a
// signal (executing goroutines). Printed on SIGQUIT, on a deadlock and on fatal errors.
//
// SIGQUIT differs from Go on purpose: Go dumps and exits; greenline dumps and keeps running, so an
// operator can look at a live server (`docker kill -s QUIT`) without taking it down. Kill it with
// SIGTERM or SIGKILL when that is what you want.
#pragma once

namespace greenline {

// Writes the dump of every goroutine of the running runtime to `fd`. Callable from any thread,
// goroutine or not; not from a signal handler. Consistent per goroutine, not across goroutines: the
// runtime keeps running meanwhile.
void WriteGoroutineDump(int fd);

// How many SIGQUIT dumps have been written since the process started (lets tests wait for one).
int SigquitDumpCount();

}  // namespace greenline
