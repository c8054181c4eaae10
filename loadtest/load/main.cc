// main.cc: greenline-load's command line. The modes live in *_mode.cc and run from their
// subcommand's callback (modes.h); this file only assembles the app and maps CLI11's outcomes to
// the exit statuses of modes.h (usage errors are 2, whatever code CLI11 gives them).
#include <cstdio>
#include <exception>

#include "loadtest/load/modes.h"

#ifndef GREENLINE_LOAD_VERSION
#define GREENLINE_LOAD_VERSION "dev"
#endif

int main(int argc, char** argv) {
  using namespace greenline::load;
  CLI::App app{
      "greenline-load: the load client bundled with greenline (standalone Asio, independent of "
      "greenline's runtime). Every mode prints live progress on stderr, then a wrk-style report; "
      "--json adds the same as JSON.\n"
      "Exit status: 0 healthy run, 1 run with errors (the report says which), 2 bad flags, "
      "3 the run could not be carried out (server unreachable, ...).",
      "greenline-load"};
  app.set_version_flag("--version", "greenline-load " GREENLINE_LOAD_VERSION);
  app.require_subcommand(1, 1);
  app.get_formatter()->column_width(34);
  app.footer(
      "Examples:\n"
      "  greenline-load echo --conns 100 --duration 10\n"
      "      closed loop, 100 connections with one 64-byte line in flight each\n"
      "  greenline-load echo --rate 50000 --conns 100 --json out.json\n"
      "      open loop: 50,000 lines/s in total, latency from each line's intended send time\n"
      "  taskset -c 1 greenline-load echo --stat-cpu 0 --server-pid $(pidof greenline)\n"
      "      client on CPU 1, server pinned to CPU 0: server CPU per line and RSS\n"
      "  greenline-load chat --users 1000 --rooms 10 --rate 2\n"
      "  greenline-load idle --conns 10000 --hold 10 --metrics-url http://127.0.0.1:9070/metrics\n"
      "Run 'greenline-load MODE --help' for a mode's flags.");

  CommonOptions common;
  int exit_code = kExitOk;
  // First: the subcommands inherit fallthrough() from the app when they are created.
  AddCommonOptions(app, common);
  AddEchoCommand(app, common, exit_code);
  AddChatCommand(app, common, exit_code);
  AddIdleCommand(app, common, exit_code);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version are "errors" with status 0; everything else is a usage error.
    return app.exit(e) == 0 ? kExitOk : kExitUsage;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "greenline-load: %s\n", e.what());
    return kExitFailed;
  }
  return exit_code;
}
