#!/usr/bin/env bash
# The peers against the real netcat (netcat-openbsd), as loadtest/bench runs them:
#   loadtest/peers/peers_test.sh echo PATH/TO/PEER [peer flags...]   (go-echo, asio_echo)
#   loadtest/peers/peers_test.sh chat PATH/TO/go-chat [peer flags...]
# Each peer is started on port 0 and its port read from its "NAME: listening on port N" line.
# echo: LF, CRLF, an unterminated last line and binary bytes come back byte for byte; 1,000
# pipelined lines; a 4,096-byte line with CRLF (the limit) comes back, a 4,097-byte one and a
# 100,000-byte one get "! line too long (max 4096 bytes)"; with --max-line 8192 a 5,000-byte and
# an 8,192-byte line come back whole.
# chat: two users' whole transcripts byte for byte against greenline's formats (welcome, /nick,
# nick taken, /join, /part, messages, //text, errors, /quit with a reason), an overlong line, and
# a reader that never reads dropped as too slow while another floods the room.
# Every peer must exit 0 on SIGTERM. Exits 77 (skip) when a tool is missing, non-zero on the first
# failure; leaves nothing running.
set -euo pipefail

mode=${1:?usage: peers_test.sh echo|chat PATH/TO/PEER [peer flags...]}
bin=${2:?usage: peers_test.sh echo|chat PATH/TO/PEER [peer flags...]}
shift 2
for tool in nc cmp od; do
  command -v "$tool" >/dev/null || {
    echo "peers_test: SKIPPED: $tool is not installed"
    exit 77
  }
done
[ -x "$bin" ] || {
  echo "peers_test: SKIPPED: $bin was not built"
  exit 77
}

work=$(mktemp -d)
pids=()
cleanup() {
  jobs -p | xargs -r kill 2>/dev/null || true
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

name=$(basename "$bin")
fail() {
  echo "peers_test: $name: FAIL: $*" >&2
  for log in "$work"/*.log; do
    [ -e "$log" ] && { echo "--- $(basename "$log") ---" >&2; cat "$log" >&2; }
  done
  exit 1
}
check() { echo "peers_test: $name: $*"; }

# start LOG [flags...]: starts the peer on a free port; sets $pid and $port.
start() {
  local log=$work/$1
  shift
  "$bin" --port 0 "$@" >"$log" 2>&1 &
  pid=$!
  pids+=("$pid")
  for _ in $(seq 100); do
    port=$(sed -n 's/^.*: listening on port \([0-9]*\) .*$/\1/p' "$log")
    [ -n "$port" ] && return 0
    kill -0 "$pid" 2>/dev/null || fail "exited at start"
    sleep 0.05
  done
  fail "never said it was listening"
}

# stop: SIGTERM, then the exit status must be 0.
stop() {
  kill -TERM "$pid"
  local rc=0
  wait "$pid" || rc=$?
  [ "$rc" = 0 ] || fail "exit status $rc after SIGTERM"
}

# same EXPECTED_FILE ACTUAL_FILE WHAT
same() {
  cmp -s "$1" "$2" || {
    echo "expected:" >&2
    od -c "$1" | head -20 >&2
    echo "got:" >&2
    od -c "$2" | head -20 >&2
    fail "$3"
  }
}

# line N [CHAR]: N bytes of CHAR (default x), no terminator.
line() { head -c "$1" /dev/zero | tr '\0' "${2:-x}"; }

test_echo() {
  start echo.log "$@"
  check "listening on port $port"

  printf 'hello\nsecond\r\nno newline at the end' >"$work/in"
  nc -N -w 5 127.0.0.1 "$port" <"$work/in" >"$work/out"
  same "$work/in" "$work/out" "LF, CRLF and an unterminated last line"
  printf 'nul \0 high \377\200 tab\t esc \033[0m\r\n' >"$work/in"
  nc -N -w 5 127.0.0.1 "$port" <"$work/in" >"$work/out"
  same "$work/in" "$work/out" "binary bytes"
  check "LF, CRLF, an unterminated last line and binary bytes came back byte for byte"

  for i in $(seq 1000); do printf 'pipelined line %d\n' "$i"; done >"$work/in"
  nc -N -w 5 127.0.0.1 "$port" <"$work/in" >"$work/out"
  same "$work/in" "$work/out" "1000 pipelined lines"
  check "1000 pipelined lines came back in order"

  { line 4096; printf '\r\n'; printf 'after\n'; } >"$work/in"
  nc -N -w 5 127.0.0.1 "$port" <"$work/in" >"$work/out"
  same "$work/in" "$work/out" "a 4096-byte line with CRLF (the limit)"
  { printf 'before\n'; line 4097; printf '\n'; } >"$work/in"
  nc -N -w 5 127.0.0.1 "$port" <"$work/in" >"$work/out" || true
  printf 'before\n! line too long (max 4096 bytes)\r\n' >"$work/want"
  same "$work/want" "$work/out" "a 4097-byte line"
  # Most of this one is still unsent or unread when the peer gives up: its message must survive.
  { printf 'before\n'; line 100000; printf '\n'; } >"$work/in"
  nc -N -w 5 127.0.0.1 "$port" <"$work/in" >"$work/out" || true
  same "$work/want" "$work/out" "a 100000-byte line"
  check "a 4096-byte line came back; 4097- and 100000-byte ones got '! line too long', then the close"
  stop
  check "SIGTERM: exit 0"

  start echo-8k.log "$@" --max-line 8192
  { line 5000 a; printf '\n'; line 8192 b; printf '\r\n'; printf 'short\n'; } >"$work/in"
  nc -N -w 5 127.0.0.1 "$port" <"$work/in" >"$work/out"
  same "$work/in" "$work/out" "lines longer than the read buffer, --max-line 8192"
  check "--max-line 8192: a 5000-byte and an 8192-byte line came back whole"
  stop
}

# wait_for FILE PATTERN: until grep finds PATTERN in FILE (5 s).
wait_for() {
  for _ in $(seq 100); do
    grep -q -- "$2" "$1" 2>/dev/null && return 0
    sleep 0.05
  done
  fail "never saw '$2' in $(basename "$1"): $(cat "$1" 2>/dev/null)"
}

test_chat() {
  start chat.log "$@"
  check "listening on port $port"
  local welcome='* welcome to greenline chat: you are %s in #lobby (/help lists the commands)\r\n'

  mkfifo "$work/a.in" "$work/b.in"
  nc 127.0.0.1 "$port" <"$work/a.in" >"$work/a.out" &
  exec 3>"$work/a.in"
  wait_for "$work/a.out" 'guest-1 joined #lobby'
  nc 127.0.0.1 "$port" <"$work/b.in" >"$work/b.out" &
  local b_nc=$!
  exec 4>"$work/b.in"
  wait_for "$work/a.out" 'guest-2 joined #lobby'
  wait_for "$work/b.out" 'guest-2 joined #lobby'

  printf '/nick alice\n' >&3
  wait_for "$work/b.out" 'guest-1 is now known as alice'
  printf '/NICK Alice\r\n' >&4
  wait_for "$work/b.out" 'nick taken'
  printf '/nick b@d\n' >&4
  wait_for "$work/b.out" 'invalid nick'
  printf '/nick bob\n' >&4
  wait_for "$work/a.out" 'guest-2 is now known as bob'
  printf '/join Go\n' >&3
  wait_for "$work/b.out" 'alice left #lobby'
  printf 'nobody hears this\n' >&4
  printf '/join #go\n' >&4
  wait_for "$work/a.out" 'bob joined #Go'
  printf 'hi alice\r\n' >&4
  wait_for "$work/a.out" 'hi alice'
  printf '//shrug \n' >&3
  wait_for "$work/b.out" 'shrug'
  printf '/join go\n/frob\n   \n/part\n' >&3
  wait_for "$work/b.out" 'alice left #Go'
  printf '/part\n' >&4
  wait_for "$work/a.out" 'bob joined #lobby'
  printf '/quit see you\n' >&4
  wait_for "$work/a.out" 'bob left #lobby'
  exec 4>&-
  wait "$b_nc" || fail "b's nc: status $?"

  { line 5000; printf '\n'; } | nc -N -w 5 127.0.0.1 "$port" >"$work/c.out" || true
  wait_for "$work/a.out" 'guest-3 left #lobby'
  exec 3>&-

  {
    printf "$welcome" guest-1
    printf '* guest-1 joined #lobby\r\n'
    printf '* guest-2 joined #lobby\r\n'
    printf '* guest-1 is now known as alice\r\n'
    printf '* guest-2 is now known as bob\r\n'
    printf '* alice joined #Go\r\n'
    printf '* bob joined #Go\r\n'
    printf '[#Go] bob: hi alice\r\n'
    printf '! already in #Go\r\n'
    printf '! unknown command /frob (try /help)\r\n'
    printf '* alice joined #lobby\r\n'
    printf '* bob joined #lobby\r\n'
    printf '* bob left #lobby (see you)\r\n'
    printf '* guest-3 joined #lobby\r\n'
    printf '* guest-3 left #lobby\r\n'
  } >"$work/a.want"
  {
    printf "$welcome" guest-2
    printf '* guest-2 joined #lobby\r\n'
    printf '* guest-1 is now known as alice\r\n'
    printf '! nick taken: Alice\r\n'
    printf '! invalid nick: b@d (letters, digits, _ and -, at most 24)\r\n'
    printf '* guest-2 is now known as bob\r\n'
    printf '* alice left #lobby\r\n'
    printf '* bob joined #Go\r\n'
    printf '[#Go] alice: /shrug \r\n'
    printf '* alice left #Go\r\n'
    printf '* bob joined #lobby\r\n'
    printf '* bye\r\n'
  } >"$work/b.want"
  {
    printf "$welcome" guest-3
    printf '* guest-3 joined #lobby\r\n'
    printf '! line too long (max 4096 bytes)\r\n'
  } >"$work/c.want"
  # a's nc is still connected: its transcript is complete once guest-3's departure is in it.
  same "$work/a.want" "$work/a.out" "alice's transcript"
  same "$work/b.want" "$work/b.out" "bob's transcript"
  same "$work/c.want" "$work/c.out" "an overlong line"
  check "two users' transcripts byte for byte: welcome, /nick, nick taken, invalid nick, /join," \
    "/part, messages to the others only, //text, errors, /quit with a reason"
  check "a 5000-byte line got '! line too long (max 4096 bytes)' and the close"
  stop
  check "SIGTERM: exit 0"

  # A reader that never reads, in a room another user floods: dropped, and the room is told.
  start chat-slow.log "$@" --out-queue 64
  exec 5<>"/dev/tcp/127.0.0.1/$port"
  local first
  read -r first <&5
  [[ $first == *guest-1* ]] || fail "slow reader: no welcome: $first"
  # 20 MB: more than the slow reader's socket buffers and queue hold.
  { yes "$(line 4000)" || true; } | head -n 5000 >"$work/flood"
  nc -N -w 10 127.0.0.1 "$port" <"$work/flood" >"$work/f.out" || true
  grep -q $'^\\* guest-1 left #lobby\r$' "$work/f.out" || fail "the flooder never saw the slow reader leave"
  timeout 10 cat <&5 >"$work/s.out" || fail "the slow reader's connection was not closed"
  exec 5<&-
  local told="its '! too slow' did not fit (best effort)"
  [ "$(tail -c 12 "$work/s.out")" = $'! too slow\r\n' ] && told="it got '! too slow'"
  check "a reader that never reads was dropped (--out-queue 64), the room saw it leave; $told"
  stop
}

case $mode in
  echo) test_echo "$@" ;;
  chat) test_chat "$@" ;;
  *) fail "unknown mode $mode (echo or chat)" ;;
esac
check "PASS"
