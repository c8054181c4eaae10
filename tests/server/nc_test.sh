#!/usr/bin/env bash
# The real netcat (netcat-openbsd) against a running greenline, as a user would type:
#   tests/server/nc_test.sh PATH/TO/greenline [--poller epoll|io_uring]
# Checks an echo round trip (LF and CRLF), a two-user chat exchange through nc, /metrics and
# /healthz, and a clean exit 0 on SIGTERM. Prints what it checks; exits non-zero on the first
# failure, leaving nothing running. Exits 77 (skipped) only when io_uring is asked for and the
# runtime refuses to start because it cannot set up a ring; any other start-up failure fails.
set -euo pipefail

bin=${1:?usage: nc_test.sh PATH/TO/greenline [greenline flags...]}
shift
command -v nc >/dev/null || { echo "nc_test: netcat-openbsd is not installed" >&2; exit 1; }

work=$(mktemp -d)
server_pid=""
cleanup() {
  # Background nc sessions die with their fifo writers; the server gets SIGKILL if still up.
  jobs -p | xargs -r kill 2>/dev/null || true
  [ -z "$server_pid" ] || kill -KILL "$server_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
fail() {
  echo "nc_test: FAIL: $*" >&2
  echo "--- server log ---" >&2
  cat "$work/server.log" >&2 || true
  exit 1
}
check() { echo "nc_test: $*"; }

echo_port=$(free_port)
chat_port=$(free_port)
http_port=$(free_port)
"$bin" --echo-addr "127.0.0.1:$echo_port" --chat-addr "127.0.0.1:$chat_port" \
  --http-addr "127.0.0.1:$http_port" "$@" >"$work/server.log" 2>&1 &
server_pid=$!
# The message the runtime dies with when io_uring is asked for (--poller io_uring or
# GREENLINE_POLLER) and no ring can be set up: io_uring_setup failed (an old kernel, seccomp,
# kernel.io_uring_disabled) or the build has no liburing (runtime/netpoll/netpoll.cc, NewNetpoll).
uring_refused='^fatal error: runtime: io_uring poller requested by .*, but '
up=false
for _ in $(seq 100); do
  if printf 'GET /healthz HTTP/1.0\r\n\r\n' | nc -w 1 127.0.0.1 "$http_port" 2>/dev/null |
    grep -q '^ok'; then
    up=true
    break
  fi
  if ! kill -0 "$server_pid" 2>/dev/null; then
    rc=0
    wait "$server_pid" || rc=$?
    server_pid=""
    # io_uring unavailable here is a skip (ctest: exit 77), as in the C++ tests. Only that fatal
    # error counts: the log names the io_uring poller on every start with it, so any other exit at
    # start, io_uring or not, is a failure.
    if grep -q "$uring_refused" "$work/server.log"; then
      echo "nc_test: SKIPPED: io_uring unavailable: $(grep "$uring_refused" "$work/server.log")"
      exit 77
    fi
    fail "the server exited at start with status $rc"
  fi
  sleep 0.1
done
$up || fail "the server did not answer /healthz at start"
check "server up: echo $echo_port, chat $chat_port, http $http_port ($(grep -o 'poller[^;]*' "$work/server.log" | head -1))"

got=$(printf 'hello over nc\nsecond\r\n' | nc -N -w 3 127.0.0.1 "$echo_port")
[ "$got" = $'hello over nc\nsecond\r' ] || fail "echo returned '$got'"
check "echo: two lines (LF and CRLF) came back byte for byte"

# Two chat users, each an nc fed from a fifo, reading into a file.
mkfifo "$work/a.in" "$work/b.in"
nc 127.0.0.1 "$chat_port" <"$work/a.in" >"$work/a.out" &
exec 3>"$work/a.in"
wait_for() {  # file, pattern
  for _ in $(seq 100); do
    grep -q -- "$2" "$1" 2>/dev/null && return 0
    sleep 0.05
  done
  fail "never saw '$2' in $(basename "$1"): $(cat "$1" 2>/dev/null)"
}
wait_for "$work/a.out" 'joined #lobby'
nc 127.0.0.1 "$chat_port" <"$work/b.in" >"$work/b.out" &
exec 4>"$work/b.in"
wait_for "$work/b.out" 'joined #lobby'
printf '/nick alice\n' >&3
wait_for "$work/b.out" 'is now known as alice'
printf '/nick bob\n' >&4
wait_for "$work/a.out" 'is now known as bob'
printf 'hi bob, this is nc\n' >&3
wait_for "$work/b.out" '\[#lobby\] alice: hi bob, this is nc'
printf '/msg alice psst\n' >&4
wait_for "$work/a.out" '\[pm\] bob: psst'
check "chat: nicks, a room message and a private message between two nc sessions"
printf '/quit bye now\n' >&4
wait_for "$work/b.out" '^\* bye'
wait_for "$work/a.out" 'bob left #lobby (bye now)'
check "chat: /quit says bye and the room sees why"

metrics=$(printf 'GET /metrics HTTP/1.0\r\n\r\n' | nc -w 3 127.0.0.1 "$http_port")
grep -q '^greenline_connections_total{service="echo"} 1' <<<"$metrics" ||
  fail "metrics: echo connection not counted: $metrics"
check "/metrics counts the connections"

kill -TERM "$server_pid"
wait_for "$work/a.out" 'server shutting down'
rc=0
wait "$server_pid" || rc=$?
server_pid=""
[ "$rc" -eq 0 ] || fail "exit status $rc after SIGTERM"
check "SIGTERM: chat told, exit 0"
exec 3>&- 4>&-
echo "nc_test: OK"
