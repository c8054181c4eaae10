// gl_echo: greenline's side of the netpoller benchmark (bench.sh, README.md). The echo server of
// greenline/net.h's header comment, as a user would write it: a goroutine per connection that
// Reads into a 4096-byte buffer and Writes back what it read, on one worker.
//
//   gl_echo [--port 7100] [--poller auto|io_uring|epoll]
//
// Prints "gl_echo: listening on port N (poller P: reason)" once listening; SIGINT/SIGTERM end it
// with their default action (the bench script sends SIGTERM).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <map>
#include <string>

#include "greenline/goroutine.h"
#include "greenline/net.h"
#include "greenline/runtime.h"

namespace {

void Serve(const greenline::net::Conn& conn) {
  char buf[4096];
  for (;;) {
    auto [n, rerr] = conn.Read(buf, sizeof buf);
    if (n > 0 && conn.Write(buf, n).err) break;
    if (rerr) break;  // EOF, reset, closed
  }
  conn.Close();
}

}  // namespace

int main(int argc, char** argv) {
  int port = 7100;
  greenline::PollerKind poller = greenline::PollerKind::kAuto;
  const std::map<std::string, greenline::PollerKind> kPollers = {
      {"auto", greenline::PollerKind::kAuto},
      {"io_uring", greenline::PollerKind::kIoUring},
      {"epoll", greenline::PollerKind::kEpoll},
  };
  CLI::App app{"greenline echo server for the netpoller benchmark (see README.md)."};
  app.add_option("--port", port, "TCP port (0 picks a free one)")->check(CLI::Range(0, 65535));
  app.add_option("--poller", poller, "netpoller backend: auto, io_uring or epoll")
      ->transform(CLI::CheckedTransformer(kPollers, CLI::ignore_case));
  CLI11_PARSE(app, argc, argv);

  greenline::Main(
      [port] {
        auto [ln, err] = greenline::net::Listen("tcp", ":" + std::to_string(port));
        if (err) {
          fprintf(stderr, "gl_echo: %s\n", err.String().c_str());
          std::exit(1);
        }
        printf("gl_echo: listening on port %u (poller %s: %s)\n", ln.LocalAddr().port(),
               greenline::net::PollerName().c_str(), greenline::net::PollerReason().c_str());
        fflush(stdout);
        for (;;) {
          auto [conn, aerr] = ln.Accept();
          if (aerr) {
            if (aerr.closed()) break;
            continue;
          }
          greenline::Go([conn] { Serve(conn); });
        }
      },
      greenline::Options{.max_procs = 1, .poller = poller});
}
