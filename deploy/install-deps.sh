#!/usr/bin/env bash
# Installs what greenline needs from Debian 12 packages, and nothing when all of it is there.
#
#   deploy/install-deps.sh [build|test|docker|ci]
#
#   build  compilers, CMake, Ninja, the libraries the server links (the default), and Chart.js
#          (libjs-chart.js), which the status page's build puts into the binary
#   test   build + GoogleTest, Google Benchmark, clang 14 with its sanitizer runtimes (TSan, and
#          libFuzzer for tests/fuzz/: libclang-rt-14-dev), Go 1.23 for the Go peers, python3
#          and gnuplot-nox for loadtest/bench's report and charts, linux-perf for its user-space
#          CPU figures, and chromium with python3-websocket for the status page's browser test
#   docker what deploy/smoke.sh needs (alone: the image builds its own compilers): the Docker
#          engine and CLI (docker.io), Compose v1 (docker-compose), debootstrap for base images
#          when no registry answers, jq, netcat and ss
#   ci     test + docker + the aarch64 cross toolchain and qemu-user-static for the arm64 stage
#
# Idempotent and quiet: when every package of the chosen set is installed it prints nothing and
# touches nothing. Go 1.23 comes from bookworm-backports, the newest Go Debian 12 offers; the suite
# is added with the mirror and keyring the machine's apt already uses. Runs apt as root: as root
# directly, otherwise through sudo.
set -euo pipefail

set_name=${1:-build}
build_pkgs=(g++ cmake ninja-build pkg-config git ca-certificates liburing-dev libasio-dev
  libspdlog-dev libfmt-dev libcli11-dev nlohmann-json3-dev libjs-chart.js)
test_pkgs=(libgtest-dev libgmock-dev googletest libbenchmark-dev clang libclang-rt-14-dev
  golang-1.23-go procps iproute2 netcat-openbsd python3 gnuplot-nox linux-perf chromium
  python3-websocket)
docker_pkgs=(docker.io docker-compose debootstrap jq netcat-openbsd iproute2)
ci_pkgs=(g++-aarch64-linux-gnu qemu-user-static)

case "$set_name" in
  build) want=("${build_pkgs[@]}") ;;
  test) want=("${build_pkgs[@]}" "${test_pkgs[@]}") ;;
  docker) want=("${docker_pkgs[@]}") ;;
  ci) want=("${build_pkgs[@]}" "${test_pkgs[@]}" "${docker_pkgs[@]}" "${ci_pkgs[@]}") ;;
  -h | --help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "install-deps: unknown set '$set_name' (build, test, docker or ci)" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# bookworm-backports, from the same mirror as the main suite, for golang-1.23-go.
needs_backports=0
for p in "${missing[@]}"; do [ "$p" = golang-1.23-go ] && needs_backports=1; done
if [ $needs_backports -eq 1 ] &&
  ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
  mirror=$(grep -rhs '^URIs:' /etc/apt/sources.list.d/*.sources | grep -v security | head -n1 |
    awk '{print $2}')
  if [ -z "$mirror" ]; then
    mirror=$(grep -hs '^deb ' /etc/apt/sources.list | grep -v security | head -n1 | awk '{print $2}')
  fi
  mirror=${mirror:-http://deb.debian.org/debian}
  echo "install-deps: adding bookworm-backports from $mirror (for Go 1.23)"
  as_root tee /etc/apt/sources.list.d/greenline-backports.sources >/dev/null <<SRC
Types: deb
URIs: $mirror
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
as_root apt-get update -qq >/dev/null
as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
