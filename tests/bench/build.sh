#!/bin/sh
# build.sh - compile the C benchmark tools (echo servers and load generators).
#
# Usage: tests/bench/build.sh [OUT_DIR]     (default: tests/bench/bin)
# Needs gcc (or $CC) and libuv headers (libuv1-dev) for echo_uv.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/bin}
cc=${CC:-gcc}
cflags="-std=c99 -O2 -Wall -Wextra ${CFLAGS:-}"

mkdir -p "$out"
for t in echo_epoll loadgen udp_echo_epoll udp_loadgen ws_loadgen; do
  $cc $cflags -o "$out/$t" "$here/$t.c"
done

uvlibs=$(pkg-config --libs libuv 2>/dev/null || echo -luv)
uvcflags=$(pkg-config --cflags libuv 2>/dev/null || true)
if $cc $cflags $uvcflags -o "$out/echo_uv" "$here/echo_uv.c" $uvlibs; then
  :
else
  echo "build.sh: echo_uv not built (libuv missing?)" >&2
fi
echo "built into $out"
