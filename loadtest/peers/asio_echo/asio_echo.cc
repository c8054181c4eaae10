// asio_echo: the Asio peer of greenline's echo service, the line echo server a C++ programmer
// would write with standalone Asio and C++20 coroutines. loadtest/bench runs it beside greenline.
//
//   asio_echo [--port N] [--threads N] [--max-line BYTES]
//
// Prints "asio_echo: listening on port N (...)" once listening, and exits 0 on SIGINT/SIGTERM.
//
// Design: the shape of Asio's own C++20 examples. One io_context (its epoll reactor: Asio uses
// io_uring only when built with ASIO_HAS_IO_URING, which Debian's headers leave to the user), run
// by --threads threads (default 1, the benchmark's setting). An accept coroutine co_spawns one
// coroutine per connection, TCP_NODELAY set as greenline and Go set it. Each connection reads
// with async_read_until('\n') into a std::string behind a dynamic buffer capped at the longest
// acceptable line, then writes back every complete line it holds in one async_write (pipelined
// lines go back together, as they do from greenline and Go) and keeps the unterminated rest.
// Errors are error_codes through redirect_error: EOF is how every connection ends, not an
// exception.
//
// Lines follow greenline's rules: a line's length is counted without its terminator ("\n" or
// "\r\n"); a line longer than --max-line gets "! line too long (max N bytes)" and the connection
// is closed (gracefully: see RefuseLine); after the client's EOF an unterminated last line still
// comes back.
#include <signal.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <asio.hpp>
#include <chrono>
#include <cstdio>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using asio::awaitable;
using asio::use_awaitable;
using asio::ip::tcp;

// Tells a client that sent an overlong line, then closes gracefully: FIN first, then it reads
// and drops what the client still sends (until its EOF or 512 KiB) before the caller closes.
// Closing with unread input would make the kernel send a reset, which can destroy the message
// before the client (nc, for one) reads it. No timer: like every connection here, this one lives
// until its client closes (the peers have no idle timeout), and a timer closing the socket from
// its own handler would race the coroutine when several threads run the io_context.
awaitable<void> RefuseLine(tcp::socket& socket, std::size_t max_line) {
  asio::error_code ec;
  const std::string msg = "! line too long (max " + std::to_string(max_line) + " bytes)\r\n";
  co_await asio::async_write(socket, asio::buffer(msg), asio::redirect_error(use_awaitable, ec));
  if (ec) co_return;
  socket.shutdown(tcp::socket::shutdown_send, ec);
  char sink[4096];
  for (std::size_t drained = 0; !ec && drained < 512 * 1024;) {
    drained += co_await socket.async_read_some(asio::buffer(sink),
                                               asio::redirect_error(use_awaitable, ec));
  }
}

// The length of the longest of `lines` (each ending with an LF), terminators excluded.
std::size_t LongestLine(std::string_view lines) {
  std::size_t longest = 0;
  while (!lines.empty()) {
    std::size_t lf = lines.find('\n');
    std::size_t len = lf > 0 && lines[lf - 1] == '\r' ? lf - 1 : lf;
    longest = std::max(longest, len);
    lines.remove_prefix(lf + 1);
  }
  return longest;
}

awaitable<void> Echo(tcp::socket socket, std::size_t max_line) {
  std::string buf;
  for (;;) {
    // The buffer holds at most the longest acceptable line and its CRLF.
    asio::error_code ec;
    co_await asio::async_read_until(socket, asio::dynamic_buffer(buf, max_line + 2), '\n',
                                    asio::redirect_error(use_awaitable, ec));
    if (ec == asio::error::not_found) {  // the buffer is full and holds no LF
      co_await RefuseLine(socket, max_line);
      co_return;
    }
    if (ec) {
      // EOF: an unterminated last line still goes back (unless it is too long to be one).
      if (ec == asio::error::eof && !buf.empty() && buf.size() <= max_line + 1) {
        co_await asio::async_write(socket, asio::buffer(buf),
                                   asio::redirect_error(use_awaitable, ec));
      }
      co_return;
    }
    // Every complete line in the buffer goes back in one write.
    std::size_t n = buf.rfind('\n') + 1;
    if (LongestLine(std::string_view(buf).substr(0, n)) > max_line) {
      co_await RefuseLine(socket, max_line);
      co_return;
    }
    co_await asio::async_write(socket, asio::buffer(buf.data(), n),
                               asio::redirect_error(use_awaitable, ec));
    if (ec) co_return;
    buf.erase(0, n);
  }
}

awaitable<void> Listen(tcp::acceptor& acceptor, std::size_t max_line) {
  for (;;) {
    asio::error_code ec;
    tcp::socket socket = co_await acceptor.async_accept(asio::redirect_error(use_awaitable, ec));
    if (ec == asio::error::operation_aborted) co_return;
    if (ec) {
      std::fprintf(stderr, "asio_echo: accept: %s\n", ec.message().c_str());
      // EMFILE and the like: do not spin.
      asio::steady_timer pause(acceptor.get_executor(), std::chrono::milliseconds(10));
      co_await pause.async_wait(use_awaitable);
      continue;
    }
    socket.set_option(tcp::no_delay(true), ec);
    asio::co_spawn(acceptor.get_executor(), Echo(std::move(socket), max_line), asio::detached);
  }
}

}  // namespace

int main(int argc, char** argv) {
  int port = 7102;
  int threads = 1;
  std::size_t max_line = 4096;
  CLI::App app{"asio_echo: a line echo server on standalone Asio and C++20 coroutines"};
  app.add_option("--port", port, "TCP port (0 picks a free one)")->check(CLI::Range(0, 65535));
  app.add_option("--threads", threads, "threads running the io_context")
      ->check(CLI::Range(1, 1024));
  app.add_option("--max-line", max_line, "longest line in bytes, terminator excluded")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 30));
  CLI11_PARSE(app, argc, argv);

  try {
    asio::io_context ctx(threads);
    tcp::acceptor acceptor(ctx, tcp::endpoint(tcp::v4(), static_cast<unsigned short>(port)));
    asio::signal_set signals(ctx, SIGINT, SIGTERM);
    signals.async_wait([&ctx](asio::error_code, int) { ctx.stop(); });
    asio::co_spawn(ctx, Listen(acceptor, max_line), asio::detached);

    std::printf("asio_echo: listening on port %d (threads %d, max line %zu bytes)\n",
                acceptor.local_endpoint().port(), threads, max_line);
    std::fflush(stdout);

    std::vector<std::thread> pool;
    for (int i = 1; i < threads; ++i) pool.emplace_back([&ctx] { ctx.run(); });
    ctx.run();
    for (std::thread& t : pool) t.join();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "asio_echo: %s\n", e.what());
    return 1;
  }
  return 0;
}
