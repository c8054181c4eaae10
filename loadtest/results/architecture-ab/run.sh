#!/usr/bin/env bash
# Before/after A/B of the architecture refactor: loadtest/bench --only echo-100c,chat, one
# repetition per invocation, alternating the two builds (B A B A B A), same machine, same hour.
set -u
cd /work/main
out=${1:-/work/ab/out}
mkdir -p "$out"
for i in 1 2 3; do
  for side in before after; do
    if [ $side = before ]; then build=/work/baseline/build/release; else build=/work/main/build/release; fi
    echo "=== $side $i $(date -u +%H:%M:%S)"
    loadtest/bench --build "$build" --no-build --only echo-100c,chat --servers greenline,greenline-epoll \
      --reps 1 --out "$out/$side-$i" > "$out/$side-$i.log" 2>&1
    echo "rc=$? $(date -u +%H:%M:%S)"
  done
done
