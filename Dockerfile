# greenline's container image: echo (7007), chat (7070) and HTTP (9070: /metrics, /healthz).
#
#   docker build -t greenline .
#   docker run --rm -p 7007:7007 -p 7070:7070 -p 9070:9070 \
#     --security-opt seccomp=deploy/seccomp-io_uring.json greenline
#
# Two stages. `build` is debian:bookworm with what the README's first command installs
# (deploy/install-deps.sh build) and the release preset's build of the two programs the image
# ships: the server and the load client greenline-load (tests and benchmarks are not configured).
# The runtime stage is debian:bookworm-slim with only the shared libraries those two link
# (liburing, spdlog, fmt; libstdc++ is already there): no compiler, no headers, no apt lists.
#
# Nothing here names an architecture: `docker build` on arm64 gives an arm64 image from the same
# file. The binaries keep their symbols (goroutine dumps and panic reports print function names).
#
# Run as the unprivileged user greenline (uid 10001). ENTRYPOINT is exec form, so greenline is
# PID 1 and gets `docker stop`'s SIGTERM itself: it stops accepting, turns /healthz to 503, tells
# chat users, and exits 0 within --shutdown-grace (5s; Docker's default stop timeout is 10s).
# Configure it with flags after the image name or with their GREENLINE_* environment twins
# (`greenline --help`). The health check reads GREENLINE_HTTP_ADDR, so move the HTTP listener
# with that variable rather than the flag.

FROM debian:bookworm AS build
WORKDIR /src
# The dependency layer first: it is cached until install-deps.sh changes, not on every source edit.
COPY deploy/install-deps.sh deploy/install-deps.sh
RUN deploy/install-deps.sh build
COPY . .
RUN cmake --preset release -DGREENLINE_BUILD_TESTS=OFF -DGREENLINE_BUILD_BENCH=OFF \
  && cmake --build --preset release --target greenline greenline_load

FROM debian:bookworm-slim
RUN apt-get update \
  && apt-get install -y --no-install-recommends liburing2 libspdlog1.10 libfmt9 \
  && apt-get clean && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin \
  && useradd --system --uid 10001 --user-group --no-create-home --home-dir /nonexistent \
    --shell /usr/sbin/nologin greenline
COPY --from=build /src/build/release/server/greenline \
  /src/build/release/loadtest/load/greenline-load /usr/local/bin/
COPY deploy/healthcheck.sh /usr/local/bin/greenline-healthcheck
# Numeric, so that Kubernetes' runAsNonRoot can check it without reading /etc/passwd.
USER 10001:10001
EXPOSE 7007 7070 9070
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["/usr/local/bin/greenline-healthcheck"]
ENTRYPOINT ["/usr/local/bin/greenline"]
