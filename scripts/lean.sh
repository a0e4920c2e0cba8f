#!/usr/bin/env bash
# The lean static build for devices (README, "The lean static build for devices"), as CI runs
# it (root, Debian 12 or 13):
#   1. Debian 13's mbedtls 3.6.6 source tree, fetched once through a private apt configuration
#      into /var/cache/edgeway (scripts/mbedtls36.sh --source);
#   2. edgeway configured with EW_MBEDTLS_SOURCE=<that tree> (Mbed TLS compiled with
#      platform/mbedtls_config.h, the whole binary static) in build-lean, MinSizeRel, built;
#   3. checks on the binary: static, no shared library, the TLS 1.3 client in it, no TLS server;
#   4. its unit, net (including the AES-GCM fast path's vectors on x86-64) and integration
#      tests (ctest in that folder).
#
#   bash scripts/lean.sh            (ctest ci.lean runs this)
# Exits non-zero on any failure. EW_LEAN_BUILD sets the build folder.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$(pwd)
BUILD=${EW_LEAN_BUILD:-build-lean}

bash scripts/mbedtls36.sh --source
TREE=$(bash scripts/mbedtls36.sh --source-dir)

echo "== configure $BUILD (EW_MBEDTLS_SOURCE=$TREE, MinSizeRel)"
mkdir -p "$BUILD"
cmake -S "$SRC" -B "$BUILD" -DEW_MBEDTLS_SOURCE="$TREE" -DCMAKE_BUILD_TYPE=MinSizeRel -DEW_CI_JOBS=OFF \
      -DEW_PORTABILITY_TESTS=OFF -DEW_LWIP_TEST=OFF >"$BUILD/configure.log" 2>&1 \
  || { cat "$BUILD/configure.log"; exit 1; }
echo "== build"
cmake --build "$BUILD" -j2 >"$BUILD/build.log" 2>&1 || { tail -50 "$BUILD/build.log"; exit 1; }

bin=$BUILD/edgeway
# Static: no program interpreter and no shared library needed (binutils' readelf).
if readelf -lW "$bin" | grep -q 'INTERP' || readelf -dW "$bin" | grep -q '(NEEDED)'; then
  echo "FAIL: $bin is dynamically linked:"; readelf -dW "$bin" | grep '(NEEDED)'; exit 1
fi
nm "$bin" | grep ' mbedtls_ssl_tls13_handshake_client_step$' >/dev/null \
  || { echo "FAIL: $bin has no TLS 1.3 client"; exit 1; }
if nm "$bin" | grep -E ' mbedtls_ssl_(tls13_)?handshake_server_step$' >/dev/null; then
  echo "FAIL: $bin has a TLS server (the lean configuration is client only)"; exit 1
fi
strip -o "$BUILD/edgeway.stripped" "$bin"
echo "   $bin: static, TLS 1.3 client, no server; stripped $(( $(stat -c %s "$BUILD/edgeway.stripped") / 1024 )) KiB"

echo "== ctest (unit, net, integration)"
timeout 1200 ctest --test-dir "$BUILD" -E '^(e2e|fuzz|lwip|port|ci|package|ui)\.' -j2 --timeout 300 \
      --output-on-failure >"$BUILD/ctest.log" 2>&1 || { cat "$BUILD/ctest.log"; exit 1; }
n=$(grep -cE 'Test +#[0-9]+: integration\..* Passed' "$BUILD/ctest.log" || true)
[ "$n" -ge 1 ] || { echo "FAIL: no integration test ran"; exit 1; }
# On x86-64 the AES-GCM fast path (platform/mbedtls/gcm_clmul.cpp) is in the build; its
# known-answer tests (4 cases, one ctest entry each) must have run and passed, not been left out.
if [ "$(uname -m)" = x86_64 ]; then
  n=$(grep -cE 'Test +#[0-9]+: AES-GCM: .* Passed' "$BUILD/ctest.log" || true)
  [ "$n" -ge 4 ] || { echo "FAIL: $n of the AES-GCM fast path's 4 test cases passed in $BUILD"; exit 1; }
fi
tail -3 "$BUILD/ctest.log"
