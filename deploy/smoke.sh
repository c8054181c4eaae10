#!/usr/bin/env bash
# deploy/smoke.sh: builds greenline's Docker image from the top-level Dockerfile and runs it for
# real: the checks below, step by step. Run as root from anywhere; CI runs it as
# the `docker` stage. About 4 minutes on a 2-core machine, most of it the image build.
#
#   [0/7] engine and base images: uses the Docker engine that is running, else starts dockerd
#         (--iptables=false --bridge=none, data and exec roots in a scratch directory of its own;
#         containers run with --network host). debian:bookworm and -slim are used if present,
#         pulled if a registry answers, else made here: one `debootstrap --variant=minbase` from
#         the mirror apt already uses, imported twice (-slim without docs, man pages and locales).
#   [1/7] build: `docker build` of the Dockerfile; no compiler in the image
#   [2/7] run it (with deploy/seccomp-io_uring.json), wait for healthy (the image's HEALTHCHECK),
#         then an echo round trip and a two-user chat exchange with nc
#   [3/7] poller: the log says io_uring with deploy/seccomp-io_uring.json; with a profile that
#         blocks io_uring as Docker >= 25's default does (the same profile without the three
#         io_uring syscalls, so io_uring_setup fails with EPERM) it says epoll, and still serves
#   [4/7] shutdown: it ran as uid 10001, not root; `docker stop` ends it with exit status 0
#         within the server's 5s grace, and a connected chat user is told "* server shutting down"
#   [5/7] workers follow --cpus: --cpus=1 (cgroup v1: cpu.cfs_quota_us 100000 / cpu.cfs_period_us
#         100000) gives 1 worker in the log and in /metrics (greenline_workers); that container
#         also runs as deploy/k8s does (read-only root filesystem, every capability dropped)
#   [6/7] compose: `docker-compose -f deploy/compose.yaml config` validates (Debian 12's Compose
#         v1), `up` brings the server up with its seccomp profile and published ports, the `load`
#         profile's greenline-load runs against it, `stop` ends it with status 0
#   [7/7] clean up: stops the dockerd it started (an engine that was running keeps running) and
#         removes every container, image, network, file and directory it made
#
# Knobs (environment):
#   DOCKER                  the docker CLI (default /usr/bin/docker, Debian's docker.io, if there)
#   GREENLINE_SMOKE_CACHE   a directory to keep the debootstrap tarball in between runs (default:
#                           none, it is made again each run and removed; CI machines start clean)
#   GREENLINE_SMOKE_KEEP=1  leave the scratch directory (logs, profiles) for a post-mortem
#
# Exit status 0 when every check passes, 1 at the first failure (with the container's log).
set -euo pipefail

cd "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)/.."
t_start=$(date +%s)

say() { echo "smoke: $*"; }
step() { echo; echo "smoke: [$1/7] $2 ($(($(date +%s) - t_start))s)"; }
ok() { echo "smoke:   ok: $*"; }
fail() {
  echo "smoke:   FAIL: $*" >&2
  exit 1
}

if [ "$(id -u)" -ne 0 ]; then
  echo "smoke: run as root (it may start dockerd and runs debootstrap)" >&2
  exit 2
fi
if [ -z "${DOCKER:-}" ]; then
  if [ -x /usr/bin/docker ]; then DOCKER=/usr/bin/docker; else DOCKER=docker; fi
fi
for tool in "$DOCKER" dockerd docker-compose debootstrap jq nc ss; do
  command -v "$tool" >/dev/null ||
    fail "$tool not found: deploy/install-deps.sh docker installs what the smoke test needs"
done
docker() { "$DOCKER" "$@"; }

# --- what we make, so that cleanup removes exactly that ------------------------------------------
work=$(mktemp -d /var/tmp/greenline-smoke.XXXXXX)
export DOCKER_CONFIG=$work/docker-config # no ~/.docker left behind
mkdir -p "$DOCKER_CONFIG"
tag=$$
image=greenline-smoke:$tag
project=greenline-smoke-$tag
containers=()    # names of the containers we run
made_images=()   # images we imported or pulled (only on an engine we did not start)
images_before="" # image ids present before our build (ditto)
nc_pids=()
dockerd_pid=""
compose_up=0
# Left by dockerd outside its data and exec roots: removed at the end if they were not there
# (listed children first). The cgroup directories are the cgroupfs driver's parents ("docker").
created_paths=()
for p in /etc/docker/key.json /etc/docker /run/docker/plugins /run/docker /run/containerd/s \
  /run/containerd; do
  [ -e "$p" ] || created_paths+=("$p")
done
for c in /sys/fs/cgroup/*/; do
  [ -e "$c/docker" ] || created_paths+=("$c/docker")
done

compose() {
  docker-compose -f deploy/compose.yaml -p "$project" "$@"
}

cleanup() {
  local rc=$? id p
  set +e
  trap - EXIT INT TERM
  step 7 "clean up"
  for id in "${nc_pids[@]}"; do kill "$id" 2>/dev/null; done
  if [ "$compose_up" -eq 1 ]; then
    compose --profile load down --remove-orphans -t 15 >"$work/compose-down.log" 2>&1 ||
      say "  compose down failed: $(tail -n 3 "$work/compose-down.log")"
  fi
  for id in "${containers[@]}"; do docker rm -f "$id" >/dev/null 2>&1; done
  if [ -n "$dockerd_pid" ]; then
    # Everything the engine holds is under $work: stopping it and removing $work removes it all.
    kill -TERM "$dockerd_pid" 2>/dev/null
    for _ in $(seq 1 60); do
      kill -0 "$dockerd_pid" 2>/dev/null || break
      sleep 0.5
    done
    if kill -0 "$dockerd_pid" 2>/dev/null; then
      say "  dockerd $dockerd_pid did not stop in 30s: killing it"
      kill -KILL "$dockerd_pid" 2>/dev/null
      sleep 1
    fi
    # Mounts a killed engine could leave (overlay layers, netns): innermost first.
    awk -v w="$work" 'index($2, w) == 1 {print $2}' /proc/mounts | sort -r |
      while read -r p; do umount -l "$p"; done
    say "  stopped the dockerd we started (pid $dockerd_pid)"
  else
    # Our image (with the untagged layers under it), then the build stage's image, which is left
    # dangling, and the base images we imported or pulled.
    docker rmi "$image" >/dev/null 2>&1
    for id in $(docker images -q --no-trunc --filter dangling=true | sort -u); do
      grep -qx "$id" <<<"$images_before" || docker rmi "$id" >/dev/null 2>&1
    done
    for id in "${made_images[@]}"; do docker rmi "$id" >/dev/null 2>&1; done
    say "  removed our containers and images; the running engine keeps running"
  fi
  # In the order listed: a file or directory before the directory that holds it.
  for p in "${created_paths[@]}"; do
    if [ -d "$p" ]; then
      rmdir "$p" 2>/dev/null || say "  could not remove $p: not empty"
    elif [ -e "$p" ]; then
      rm -f "$p"
    fi
  done
  if [ "${GREENLINE_SMOKE_KEEP:-0}" = 1 ]; then
    say "  kept $work"
  else
    rm -rf "$work"
    say "  removed $work"
  fi
  if [ "$rc" -eq 0 ]; then
    say "all checks passed in $(($(date +%s) - t_start))s"
  else
    say "FAILED (exit $rc) after $(($(date +%s) - t_start))s"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- helpers -----------------------------------------------------------------------------------
# Three consecutive free TCP ports, for a container on the host's network.
free_ports() {
  local base p used
  used=$(ss -Htan | awk '{print $4}' | sed 's/.*://' | sort -un)
  for base in $(seq "$1" 10 "$(($1 + 2000))"); do
    for p in "$base" $((base + 1)) $((base + 2)); do
      grep -qx "$p" <<<"$used" && continue 2
    done
    echo "$base"
    return 0
  done
  fail "no three free ports from $1"
}

mbytes() { docker image inspect -f '{{.Size}}' "$1" | awk '{printf "%.0f MB", $1 / 1e6}'; }

show_log() {
  echo "smoke:   --- docker logs $1 (last 30 lines)"
  docker logs --tail 30 "$1" 2>&1 | sed 's/^/smoke:   | /'
}

# run_server NAME PORT_BASE [docker run options...]: the image on the host's network, its three
# listeners on 127.0.0.1:PORT_BASE+0/+1/+2.
run_server() {
  local name=$1 base=$2
  shift 2
  containers+=("$name")
  docker run -d --name "$name" --network host \
    -e GREENLINE_ECHO_ADDR="127.0.0.1:$base" \
    -e GREENLINE_CHAT_ADDR="127.0.0.1:$((base + 1))" \
    -e GREENLINE_HTTP_ADDR="127.0.0.1:$((base + 2))" \
    "$@" "$image" >/dev/null
}

# Waits until the image's HEALTHCHECK says healthy (first check after its 10s interval).
wait_healthy() {
  local name=$1 status
  for _ in $(seq 1 120); do
    status=$(docker inspect "$name" \
      -f '{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}')
    case $status in
      "running healthy") return 0 ;;
      running*) sleep 0.5 ;;
      *)
        show_log "$name"
        fail "$name is '$status', not running"
        ;;
    esac
  done
  show_log "$name"
  docker inspect -f '{{json .State.Health}}' "$name"
  fail "$name not healthy within 60s"
}

# Waits for a log line matching the extended regex $2 in container $1 (5s), and prints it.
wait_log() {
  local line
  for _ in $(seq 1 50); do
    line=$(docker logs "$1" 2>&1 | grep -E -m1 "$2" || true)
    if [ -n "$line" ]; then
      echo "$line"
      return 0
    fi
    sleep 0.1
  done
  show_log "$1"
  fail "$1: no log line matching '$2'"
}

# One echo round trip: two lines (CRLF and LF) must come back byte for byte.
echo_check() {
  local port=$1 sent=$work/echo.sent got=$work/echo.got
  printf 'hello greenline\r\nsecond line, LF only\n' >"$sent"
  nc -N -w 5 127.0.0.1 "$port" <"$sent" >"$got" || true
  cmp -s "$sent" "$got" ||
    fail "echo on port $port: sent $(od -c "$sent" | tr -s ' ' | head -2), got $(od -c "$got" |
      tr -s ' ' | head -2)"
}

# Starts a chat user: nc in the background reading the fifo $work/$2.in (held open on fd $3),
# writing what it receives to $work/$2.out.
chat_connect() {
  local port=$1 who=$2 fd=$3
  mkfifo "$work/$who.in"
  nc 127.0.0.1 "$port" <"$work/$who.in" >"$work/$who.out" &
  nc_pids+=($!)
  eval "exec $fd>\"\$work/\$who.in\""
}

# Waits until what user $1 received has a line equal to $2 (CR stripped), 5s.
chat_expect() {
  for _ in $(seq 1 50); do
    tr -d '\r' <"$work/$1.out" | grep -qxF -- "$2" && return 0
    sleep 0.1
  done
  echo "smoke:   --- $1 received:"
  tr -d '\r' <"$work/$1.out" | sed 's/^/smoke:   | /'
  fail "chat: $1 did not receive '$2'"
}

# GET $2 on 127.0.0.1:$1, body only.
http_get() {
  printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$2" | nc -N -w 5 127.0.0.1 "$1" |
    tr -d '\r' | sed '1,/^$/d'
}

# --- [0/7] engine and base images ----------------------------------------------------------------
step 0 "engine and base images"
if [ -z "${DOCKER_HOST:-}" ] && docker info >/dev/null 2>&1; then
  say "  using the Docker engine already running ($(docker version -f '{{.Server.Version}}'))"
  images_before=$(docker images -a -q --no-trunc | sort -u)
elif [ -n "${DOCKER_HOST:-}" ] && docker info >/dev/null 2>&1; then
  say "  using the Docker engine at DOCKER_HOST=$DOCKER_HOST"
  images_before=$(docker images -a -q --no-trunc | sort -u)
else
  export DOCKER_HOST=unix://$work/docker.sock
  mkdir -p "$work/docker-data" "$work/docker-exec"
  # setsid: a Ctrl-C on the terminal reaches us, and our cleanup stops dockerd in order.
  setsid dockerd --iptables=false --bridge=none \
    --data-root "$work/docker-data" --exec-root "$work/docker-exec" \
    --host "$DOCKER_HOST" --pidfile "$work/docker.pid" >"$work/dockerd.log" 2>&1 &
  dockerd_pid=$!
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    kill -0 "$dockerd_pid" 2>/dev/null || { tail -n 20 "$work/dockerd.log"; fail "dockerd exited"; }
    sleep 0.5
  done
  if ! docker info >/dev/null 2>&1; then
    tail -n 20 "$work/dockerd.log"
    fail "dockerd did not answer in 30s"
  fi
  dockerd_pid=$(cat "$work/docker.pid" 2>/dev/null || echo "$dockerd_pid")
  say "  started dockerd $(docker version -f '{{.Server.Version}}')" \
    "(pid $dockerd_pid, data in $work)"
fi
say "  engine: cgroup $(docker info -f '{{.CgroupVersion}}' 2>/dev/null || echo '?'), seccomp" \
  "$(docker info -f '{{.SecurityOptions}}' | grep -q seccomp && echo on || echo OFF)"

# The mirror apt uses on this machine (deb822 sources first, then sources.list).
apt_mirror() {
  local m
  m=$(grep -rhs '^URIs:' /etc/apt/sources.list.d/*.sources | grep -v security | head -n1 |
    awk '{print $2}')
  [ -n "$m" ] || m=$(grep -hs '^deb ' /etc/apt/sources.list | grep -v security | head -n1 |
    awk '{print $2}')
  echo "${m:-http://deb.debian.org/debian}"
}

rootfs_tar=""
make_rootfs() {
  [ -n "$rootfs_tar" ] && return 0
  local cache=${GREENLINE_SMOKE_CACHE:-} mirror security t0 root=$work/rootfs
  if [ -n "$cache" ] && [ -s "$cache/bookworm-minbase.tar" ]; then
    rootfs_tar=$cache/bookworm-minbase.tar
    say "  debootstrap: using $rootfs_tar"
    return 0
  fi
  mirror=$(apt_mirror)
  security=$(grep -rhs '^URIs:' /etc/apt/sources.list.d/*.sources | grep security | head -n1 |
    awk '{print $2}')
  security=${security:-http://deb.debian.org/debian-security}
  say "  debootstrap --variant=minbase bookworm from $mirror ..."
  t0=$(date +%s)
  debootstrap --variant=minbase bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 ||
    { tail -n 20 "$work/debootstrap.log"; fail "debootstrap failed"; }
  # As Debian's official images: the suites with updates and security, no apt caches.
  rm -f "$root/etc/apt/sources.list"
  cat >"$root/etc/apt/sources.list.d/debian.sources" <<SRC
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/cache/apt/*.bin \
    "$root"/var/lib/apt/lists/*
  rootfs_tar=${cache:-$work}/bookworm-minbase.tar
  [ -n "$cache" ] && mkdir -p "$cache"
  tar -C "$root" -cf "$rootfs_tar" .
  rm -rf "$root"
  say "  debootstrap done in $(($(date +%s) - t0))s"
}

for base in debian:bookworm debian:bookworm-slim; do
  if docker image inspect "$base" >/dev/null 2>&1; then
    say "  $base: present"
    continue
  fi
  if timeout 120 docker pull -q "$base" >"$work/pull.log" 2>&1; then
    say "  $base: pulled"
    made_images+=("$base")
    continue
  fi
  say "  $base: cannot be pulled ($(tail -n1 "$work/pull.log" | cut -c1-100)); making it"
  make_rootfs
  if [ "$base" = debian:bookworm ]; then
    docker import "$rootfs_tar" "$base" >/dev/null
  else
    # -slim as Debian makes it: no docs, man pages or translations, and dpkg told to skip them.
    slim=$work/slimroot
    mkdir -p "$slim"
    tar -C "$slim" -xf "$rootfs_tar" --exclude='./usr/share/doc/*' --exclude='./usr/share/man/*' \
      --exclude='./usr/share/locale/*'
    printf '%s\n' 'path-exclude /usr/share/doc/*' 'path-include /usr/share/doc/*/copyright' \
      'path-exclude /usr/share/man/*' 'path-exclude /usr/share/locale/*' \
      >"$slim/etc/dpkg/dpkg.cfg.d/docker"
    tar -C "$slim" -c . | docker import - "$base" >/dev/null
    rm -rf "$slim"
  fi
  made_images+=("$base")
  say "  $base: imported ($(mbytes "$base"))"
done
if [ -z "${GREENLINE_SMOKE_CACHE:-}" ] && [ -n "$rootfs_tar" ]; then rm -f "$rootfs_tar"; fi

# --- [1/7] build -------------------------------------------------------------------------------
step 1 "build the image from the Dockerfile"
t0=$(date +%s)
if ! docker build --network host -t "$image" . >"$work/build.log" 2>&1; then
  tail -n 40 "$work/build.log"
  fail "docker build failed"
fi
ok "built $image in $(($(date +%s) - t0))s, $(mbytes "$image")"
compilers=$(docker run --rm --entrypoint /bin/sh "$image" -c \
  'for c in cc gcc g++ c++ clang cmake; do command -v $c; done; true')
[ -z "$compilers" ] || fail "the image has build tools: $compilers"
user=$(docker image inspect -f '{{.Config.User}}' "$image")
entrypoint=$(docker image inspect -f '{{json .Config.Entrypoint}}' "$image")
stopsignal=$(docker image inspect -f '{{.Config.StopSignal}}' "$image")
ok "no compiler in it; USER $user, ENTRYPOINT $entrypoint, STOPSIGNAL $stopsignal"

# --- [2/7] run and talk ------------------------------------------------------------------------
step 2 "run it, wait for healthy, echo and chat with nc"
base_a=$(free_ports 17100)
a=$project-uring
run_server "$a" "$base_a" --security-opt "seccomp=deploy/seccomp-io_uring.json"
wait_healthy "$a"
ok "$a healthy (HEALTHCHECK: $(docker inspect -f '{{(index .State.Health.Log 0).Output}}' "$a" |
  head -n1))"
echo_check "$base_a"
ok "echo round trip on :$base_a, byte for byte"
chat_port=$((base_a + 1))
chat_connect "$chat_port" alice 7
welcome="* welcome to greenline chat: you are guest-%d in #lobby (/help lists the commands)"
# shellcheck disable=SC2059 # the format is ours
chat_expect alice "$(printf "$welcome" 1)"
echo "/nick alice" >&7
chat_expect alice "* guest-1 is now known as alice"
chat_connect "$chat_port" bob 8
# shellcheck disable=SC2059
chat_expect bob "$(printf "$welcome" 2)"
echo "/nick bob" >&8
chat_expect alice "* guest-2 is now known as bob"
echo "hello bob, from alice" >&7
chat_expect bob "[#lobby] alice: hello bob, from alice"
echo "/msg alice hi alice" >&8
chat_expect alice "[pm] bob: hi alice"
ok "chat on :$chat_port: alice and bob joined #lobby, renamed, talked in the room and in private"

# --- [3/7] poller ------------------------------------------------------------------------------
step 3 "poller: io_uring with deploy/seccomp-io_uring.json, epoll when io_uring is blocked"
line=$(wait_log "$a" 'runtime: poller ')
[[ $line == *"poller io_uring"* ]] || fail "with deploy/seccomp-io_uring.json: $line"
ok "with deploy/seccomp-io_uring.json: ${line#*info  }"
# Docker >= 25's default profile: this one without the io_uring syscalls (default action: EPERM).
jq '.syscalls |= map(.names -= ["io_uring_setup", "io_uring_enter", "io_uring_register"]
    | select((.names | length) > 0))' deploy/seccomp-io_uring.json >"$work/seccomp-no-io_uring.json"
if grep -q io_uring "$work/seccomp-no-io_uring.json"; then
  fail "io_uring still in the derived profile"
fi
base_b=$(free_ports $((base_a + 10)))
b=$project-epoll
run_server "$b" "$base_b" --security-opt "seccomp=$work/seccomp-no-io_uring.json"
line=$(wait_log "$b" 'runtime: poller ')
[[ $line == *"poller epoll: fallback, io_uring_setup failed: Operation not permitted"* ]] ||
  fail "with io_uring blocked: $line"
ok "with io_uring blocked: ${line#*info  }"
wait_healthy "$b"
echo_check "$base_b"
ok "$b healthy and echoes on epoll"
docker stop -t 15 "$b" >/dev/null

# --- [4/7] shutdown and user -------------------------------------------------------------------
step 4 "non-root, and docker stop ends it cleanly"
pid=$(docker inspect -f '{{.State.Pid}}' "$a")
uid=$(awk '/^Uid:/ {print $2}' "/proc/$pid/status")
[ "$uid" = 10001 ] || fail "greenline runs as uid $uid (want 10001, not root)"
ok "greenline (host pid $pid) runs as uid $uid"
t0=$(date +%s%N)
docker stop -t 15 "$a" >/dev/null
ms=$((($(date +%s%N) - t0) / 1000000))
code=$(docker inspect -f '{{.State.ExitCode}}' "$a")
[ "$code" = 0 ] || { show_log "$a"; fail "exit status $code after docker stop (want 0)"; }
[ "$ms" -lt 6000 ] || fail "docker stop took ${ms}ms: over the server's 5s grace"
chat_expect alice "* server shutting down"
chat_expect bob "* server shutting down"
line=$(wait_log "$a" 'shutdown complete')
ok "docker stop: exit status 0 in ${ms}ms (grace 5s); both chat users told; ${line#*info  }"
exec 7>&- 8>&-

# --- [5/7] workers -----------------------------------------------------------------------------
step 5 "workers follow --cpus"
cpus=$(nproc)
line=$(docker logs "$a" 2>&1 | grep -E -m1 'runtime: [0-9]+ workers' || true)
say "  without --cpus ($cpus CPUs here): ${line#*info  }"
if [ "$cpus" -lt 2 ]; then
  say "  SKIP: --cpus=1 cannot lower the worker count on a 1-CPU machine"
else
  base_c=$(free_ports $((base_b + 10)))
  c=$project-cpus1
  # Also as deploy/k8s/deployment.yaml runs it: read-only root, no capabilities, no setuid.
  run_server "$c" "$base_c" --cpus=1 --security-opt "seccomp=deploy/seccomp-io_uring.json" \
    --read-only --cap-drop ALL --security-opt no-new-privileges
  line=$(wait_log "$c" 'runtime: [0-9]+ workers')
  # shellcheck disable=SC2016 # expanded by the container's shell
  quota=$(docker exec "$c" /bin/sh -c 'cd /sys/fs/cgroup && if [ -e cpu/cpu.cfs_quota_us ]; then
      echo "cgroup v1 cpu.cfs_quota_us $(cat cpu/cpu.cfs_quota_us)" \
        "/ cpu.cfs_period_us $(cat cpu/cpu.cfs_period_us)"
    else echo "cgroup v2 cpu.max $(cat cpu.max)"; fi' 2>/dev/null || echo "quota files not visible")
  say "  --cpus=1: $quota"
  [[ $line == *"runtime: 1 workers (cgroup quota 1)"* ]] || fail "--cpus=1: $line"
  ok "--cpus=1: ${line#*info  }"
  metric=""
  for _ in $(seq 1 50); do
    metric=$(http_get $((base_c + 2)) /metrics | grep -E '^greenline_workers ' || true)
    [ -n "$metric" ] && break
    sleep 0.1
  done
  [ "$metric" = "greenline_workers 1" ] || fail "--cpus=1: /metrics says '$metric'"
  ok "--cpus=1: /metrics: $metric (read-only root, no capabilities, as in deploy/k8s)"
  docker stop -t 15 "$c" >/dev/null
fi

# --- [6/7] compose -----------------------------------------------------------------------------
step 6 "compose: deploy/compose.yaml with docker-compose $(docker-compose version --short)"
base_d=$(free_ports $((base_a + 40)))
# Compose v1 reads the seccomp path relative to the current directory (v2: to the compose file).
export GREENLINE_SECCOMP_PROFILE=deploy/seccomp-io_uring.json GREENLINE_IMAGE=$image
export GREENLINE_ECHO_PORT=$base_d GREENLINE_CHAT_PORT=$((base_d + 1))
export GREENLINE_HTTP_PORT=$((base_d + 2))
# The engine grants no more descriptors than its own hard limit without CAP_SYS_RESOURCE.
GREENLINE_NOFILE=$(ulimit -Hn)
export GREENLINE_NOFILE
docker-compose -f deploy/compose.yaml config -q || fail "docker-compose config: not valid"
ok "docker-compose -f deploy/compose.yaml config: valid"
compose_up=1
compose up -d --no-build server >"$work/compose-up.log" 2>&1 ||
  { cat "$work/compose-up.log"; fail "docker-compose up failed"; }
d=$(compose ps -q server)
wait_healthy "$d"
line=$(wait_log "$d" 'runtime: poller ')
[[ $line == *"poller io_uring"* ]] || fail "compose server: $line"
echo_check "$base_d"
nofile=$(docker exec "$d" /bin/sh -c 'ulimit -n')
ok "server up and healthy, echo through published port $base_d, ${line#*info  }, nofile $nofile"
if ! compose --profile load run -T --rm load >"$work/load.log" 2>&1; then
  tail -n 20 "$work/load.log"
  fail "the load profile's greenline-load failed"
fi
rate=$(grep -m1 '/sec:' "$work/load.log" || true)
errors=$(grep -m1 '^Errors:' "$work/load.log" || true)
ok "--profile load: greenline-load against the server service: $rate, $errors"
compose stop -t 15 server >/dev/null 2>&1
code=$(docker inspect -f '{{.State.ExitCode}}' "$d")
[ "$code" = 0 ] || { show_log "$d"; fail "compose stop: exit status $code"; }
ok "docker-compose stop: exit status 0"
