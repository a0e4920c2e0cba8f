#!/usr/bin/env bash
# Cross-compiles edgeway for 64-bit ARM Linux and tests the ARM binaries under qemu-user:
#   - toolchains/aarch64-linux-gnu.cmake, libraries from Debian multiarch (:arm64 packages)
#   - the unit tests and the net tests (Linux PAL + TLS on loopback) under qemu-aarch64
#   - the integration tests: the ARM edgeway, under qemu-aarch64, probing and proxying to the
#     Node fake upstreams on the host's 127.0.0.1 (EDGEWAY_BIN = build-aarch64/edgeway-qemu,
#     a wrapper tests/CMakeLists.txt writes in cross builds)
#   - prints the stripped size of the ARM binary
#
#   bash scripts/cross-aarch64.sh        (root on Debian 12; installs what is missing)
# Exits non-zero on any failure. EW_AARCH64_BUILD sets the build folder (build-aarch64).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${EW_AARCH64_BUILD:-build-aarch64}
TRIPLE=aarch64-linux-gnu

# ---- dependencies: the cross compiler and qemu-user (host), the libraries (arm64) ------------
host_pkgs=(cmake make g++-$TRIPLE qemu-user catch2 node-llhttp)
command -v node >/dev/null || host_pkgs+=(nodejs)
target_pkgs=(libc6:arm64 libmbedtls-dev:arm64 libcjson-dev:arm64 libc-ares-dev:arm64)
missing=()
for p in "${host_pkgs[@]}" "${target_pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "== installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  dpkg --print-foreign-architectures | grep -qx arm64 || dpkg --add-architecture arm64
  apt-get update -qq || echo "warning: apt-get update reported errors; installing anyway"
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# ---- build ------------------------------------------------------------------------------------
echo "== configure $BUILD ($TRIPLE)"
cmake -S . -B "$BUILD" -DCMAKE_TOOLCHAIN_FILE=toolchains/$TRIPLE.cmake -DCMAKE_BUILD_TYPE=Release \
      -DEW_LWIP_TEST=OFF --no-warn-unused-cli >/dev/null
echo "== build"
cmake --build "$BUILD" -j"$(nproc)" >"$BUILD/build.log" 2>&1 || { tail -50 "$BUILD/build.log"; exit 1; }
machine=$($TRIPLE-readelf -h "$BUILD/edgeway" | awk -F: '/Machine:/ {gsub(/^ +/, "", $2); print $2}')
echo "   $BUILD/edgeway: $machine"
[ "$machine" = "AArch64" ] || { echo "FAIL: $BUILD/edgeway is not an AArch64 binary"; exit 1; }
"$BUILD/edgeway-qemu" --version

# ---- tests under qemu-aarch64 ------------------------------------------------------------------
# Everything ctest registered in the cross build except the e2e tests (they need the npm SDK
# installed in tests/e2e; the integration tests cover the ARM binary over loopback).
echo "== ctest under qemu-aarch64 (unit, net, integration)"
timeout 900 ctest --test-dir "$BUILD" -E '^(e2e|lwip)\.' -j2 --timeout 300 --output-on-failure \
  >"$BUILD/ctest.log" 2>&1 || { cat "$BUILD/ctest.log"; exit 1; }
grep -E '^[0-9]+% tests passed|Test #[0-9]+: integration\.' "$BUILD/ctest.log" | sed 's/^ *[0-9]*\/[0-9]* //'
integration=$(grep -cE 'Test +#[0-9]+: integration\..* Passed' "$BUILD/ctest.log" || true)
[ "$integration" -ge 1 ] || { echo "FAIL: no integration test ran"; exit 1; }

# ---- size ---------------------------------------------------------------------------------------
stripped="$BUILD/edgeway.stripped"
cp "$BUILD/edgeway" "$stripped"
$TRIPLE-strip "$stripped"
echo "== aarch64 edgeway: $(stat -c %s "$BUILD/edgeway") B unstripped, $(stat -c %s "$stripped") B stripped (Release)"
echo "   dynamic libraries: $($TRIPLE-readelf -d "$stripped" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' | tr '\n' ' ')"
tail -3 "$BUILD/ctest.log"
