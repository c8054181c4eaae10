#include "tests/loadtest/load_process.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <thread>
#include <utility>

#include "tests/util/child_process.h"

namespace greenline::testing {

namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

std::string LoadRun::Describe() const {
  return "exit " + std::to_string(exit_code) + (timed_out ? " (timed out)" : "") + " after " +
         std::to_string(seconds) + " s\nstderr:\n" + err + "\nstdout:\n" + out;
}

LoadRun RunLoad(std::vector<std::string> args, std::chrono::seconds timeout) {
  LoadRun r;
  std::string out_path = ::testing::TempDir() + "greenline-load-out-XXXXXX";
  std::string err_path = ::testing::TempDir() + "greenline-load-err-XXXXXX";
  int out = mkstemp(out_path.data());
  int err = mkstemp(err_path.data());
  if (out < 0 || err < 0) {
    ADD_FAILURE() << "mkstemp failed";
    for (auto [fd, path] : {std::pair{out, &out_path}, std::pair{err, &err_path}}) {
      if (fd >= 0) {
        close(fd);
        unlink(path->c_str());
      }
    }
    return r;
  }
  std::vector<std::string> argv = {GREENLINE_LOAD_BIN, "--quiet", "--json", "-"};
  argv.insert(argv.end(), args.begin(), args.end());
  const auto start = std::chrono::steady_clock::now();
  const pid_t pid = SpawnProgram(std::move(argv), out, err);
  close(out);
  close(err);
  int status = 0;
  for (;;) {
    if (pid < 0 || waitpid(pid, &status, WNOHANG) == pid) break;
    if (std::chrono::steady_clock::now() - start > timeout) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      r.timed_out = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (pid > 0 && !r.timed_out && WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  r.out = ReadFile(out_path);
  r.err = ReadFile(err_path);
  unlink(out_path.c_str());
  unlink(err_path.c_str());
  r.json = nlohmann::json::parse(r.out, nullptr, /*allow_exceptions=*/false);
  return r;
}

}  // namespace greenline::testing
