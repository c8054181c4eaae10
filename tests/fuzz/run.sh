#!/usr/bin/env bash
# Runs each protocol fuzz target for a bounded time on a fresh copy of its committed seed corpus,
# and fails if any of them finds a crash, a sanitizer report or a broken invariant.
#
#   tests/fuzz/run.sh [BUILD_DIR [SECONDS]]     defaults: build/fuzz, 60 seconds per target
#
# Build the targets first: cmake --preset fuzz && cmake --build --preset fuzz. Each target's
# output goes to BUILD_DIR/fuzz-run/TARGET/log (libFuzzer is chatty); what it found is printed
# here: the final stats when it passed, the report when it failed. A failing input is saved as
# BUILD_DIR/fuzz-run/TARGET/artifacts/crash-*; replay it with `BUILD_DIR/tests/fuzz/TARGET_fuzz
# FILE`. New inputs go to the copy of the corpus, never to tests/fuzz/corpus/ (add one there by
# hand when it is worth keeping).
set -euo pipefail

cd "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)/../.."
build=${1:-build/fuzz}
seconds=${2:-60}
targets=(line_framer telnet_filter sanitize http_head)
work=$build/fuzz-run
rm -rf "$work"

failed=()
for t in "${targets[@]}"; do
  bin=$build/tests/fuzz/${t}_fuzz
  if [ ! -x "$bin" ]; then
    echo "fuzz: $bin is not built (cmake --preset fuzz && cmake --build --preset fuzz)" >&2
    exit 2
  fi
  mkdir -p "$work/$t/corpus" "$work/$t/artifacts"
  cp tests/fuzz/corpus/"$t"/* "$work/$t/corpus/"
  echo "=== fuzz $t: ${seconds}s from $(ls "$work/$t/corpus" | wc -l) seed inputs"
  # -timeout: one input taking 10 s is a hang worth reporting; -rss_limit_mb: the default 2 GiB,
  # said aloud. A crash makes libFuzzer exit non-zero.
  if "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$work/$t/artifacts/" "$work/$t/corpus" >"$work/$t/log" 2>&1; then
    grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)' "$work/$t/log" |
      sed "s/^/fuzz $t: /"
    echo "fuzz $t: OK, corpus grew to $(ls "$work/$t/corpus" | wc -l) inputs"
  else
    tail -n 60 "$work/$t/log"
    echo "fuzz $t: FAILED; input saved in $work/$t/artifacts/" >&2
    failed+=("$t")
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: ${#failed[@]} of ${#targets[@]} targets failed: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz: all ${#targets[@]} targets ran ${seconds}s each without a failure"
