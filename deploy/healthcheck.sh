#!/bin/bash
# greenline-healthcheck: exits 0 when greenline's GET /healthz answers 200, 1 otherwise.
#
# The image's HEALTHCHECK. debian:bookworm-slim has no curl or wget, and adding one for this would
# grow the image, so this is bash's /dev/tcp. It asks the address in GREENLINE_HTTP_ADDR (the
# server's default 0.0.0.0:9070 when unset); a wildcard host is asked on loopback. With the HTTP
# listener off there is nothing to ask: it says so and exits 0.
set -u
addr=${GREENLINE_HTTP_ADDR:-0.0.0.0:9070}
if [ "$addr" = off ]; then
  echo "greenline-healthcheck: GREENLINE_HTTP_ADDR=off: no /healthz to check"
  exit 0
fi
port=${addr##*:}
host=${addr%:*}
host=${host#[}
host=${host%]}
case $host in
  '' | 0.0.0.0) host=127.0.0.1 ;;
  ::) host=::1 ;;
esac
if ! exec 3<>"/dev/tcp/$host/$port"; then
  echo "greenline-healthcheck: cannot connect to $host:$port"
  exit 1
fi
printf 'GET /healthz HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n\r\n' "$host" >&3
status=
IFS=' ' read -r -t 2 _ status _ <&3 || true
exec 3<&-
if [ "$status" != 200 ]; then
  echo "greenline-healthcheck: GET http://$host:$port/healthz: status '${status:-none}'"
  exit 1
fi
echo "greenline-healthcheck: ok"
