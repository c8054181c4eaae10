#!/usr/bin/env bash
# Issue 18 A/B: chat CPU per delivery before (3766473, /work/baseline) and after (working tree),
# loadtest/bench --only chat --servers greenline, one repetition per invocation, alternating
# (B A B A B A); then idle-chat (greenline and go, 3 reps) with the after build, and the before
# server's idle chat slope measured by the after build's client.
set -u
cd /work/main
out=${1:-/work/ab18/out}
mkdir -p "$out"
for i in 1 2 3; do
  for side in before after; do
    if [ $side = before ]; then build=/work/baseline/build/release; else build=/work/main/build/release; fi
    echo "=== $side $i $(date -u +%H:%M:%S)"
    loadtest/bench --build "$build" --no-build --only chat --servers greenline \
      --reps 1 --out "$out/$side-$i" > "$out/$side-$i.log" 2>&1
    echo "rc=$? $(date -u +%H:%M:%S)"
  done
done
echo "=== idle-chat $(date -u +%H:%M:%S)"
loadtest/bench --build /work/main/build/release --no-build --only idle-chat --servers greenline,go \
  --reps 3 --out "$out/idle-chat" > "$out/idle-chat.log" 2>&1
echo "rc=$? $(date -u +%H:%M:%S)"
for i in 1 2 3; do
  echo "=== idle-chat before-server $i $(date -u +%H:%M:%S)"
  (ulimit -n 20000
   /work/baseline/build/release/server/greenline --workers 1 --http-addr 127.0.0.1:19070 --echo-addr off \
     --chat-addr 127.0.0.1:17070 --max-conns 0 --idle-timeout 0 --chat-rate 0 --log-level warn > "$out/before-server-$i.log" 2>&1 &
   pid=$!
   sleep 0.5
   taskset -c 1 build/release/loadtest/load/greenline-load idle --service chat --port 17070 --conns 15000 \
     --slope-from 5000 --room-size 100 --hold 2 --sample 100 --threads 1 --quiet \
     --metrics-url http://127.0.0.1:19070/metrics --json "$out/before-idle-chat-$i.json" > "$out/before-idle-chat-$i.txt" 2>&1
   echo "rc=$?"
   kill $pid; wait $pid)
done
echo "=== done $(date -u +%H:%M:%S)"
