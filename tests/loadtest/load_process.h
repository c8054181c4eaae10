// Test helper for greenline-load's end-to-end tests (tests/loadtest/load_*_test.cc): runs the real
// greenline-load binary (GREENLINE_LOAD_BIN, a compile definition of loadtest_tests) in a child
// process with --quiet --json -, bounded by a timeout, and collects its exit status, stdout (the
// JSON report, parsed) and stderr (the text report and messages).
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace greenline::testing {

struct LoadRun {
  int exit_code = -1;  // -1: killed (timed out) or ended by a signal
  bool timed_out = false;
  double seconds = 0;   // wall time of the run
  std::string out;      // stdout: the JSON report
  std::string err;      // stderr: the text report, messages
  nlohmann::json json;  // `out` parsed (discarded, i.e. is_discarded(), if it is not JSON)

  // For failure messages: the status, the time, and both outputs.
  std::string Describe() const;
};

// Runs `greenline-load --quiet --json - <args...>`, killing it (SIGKILL) after `timeout`.
LoadRun RunLoad(std::vector<std::string> args,
                std::chrono::seconds timeout = std::chrono::seconds(60));

}  // namespace greenline::testing
