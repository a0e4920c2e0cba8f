#!/usr/bin/env bash
# Cross-compiles edgeway for ARM Linux and tests the ARM binaries under qemu-user:
#   arm64: 64-bit (aarch64-linux-gnu, qemu-aarch64), armhf: 32-bit hard float
#   (arm-linux-gnueabihf, qemu-arm); toolchains/<triple>.cmake, libraries from Debian multiarch
#   - the unit tests and the net tests (Linux PAL + TLS on loopback) under qemu-user
#   - the integration tests: the ARM edgeway, under qemu, probing and proxying to the Node
#     fake upstreams on the host's 127.0.0.1 (EDGEWAY_BIN = <build>/edgeway-qemu, a wrapper
#     tests/CMakeLists.txt writes in cross builds)
#   - prints the stripped size of the ARM binary
#
#   bash scripts/cross-arm.sh arm64|armhf            (root; installs what is missing)
#   bash scripts/cross-arm.sh --prepare arm64|armhf  only install (scripts/install-deps.sh --test)
#
# Debian 12 has everything as multiarch packages. Debian 13's libllhttp-dev and libcatch2-dev
# cannot be installed beside the amd64 ones (not Multi-Arch: same), so their target .debs are
# downloaded with apt and unpacked into /var/cache/edgeway/target-<arch>-<versions> (static
# libllhttp.a and libCatch2.a; the headers are the host's, same version), which the toolchain
# file searches as one more root (EW_TARGET_EXTRA_ROOT).
# Exits non-zero on any failure. EW_CROSS_BUILD sets the build folder (build-aarch64, build-armhf).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/debian-release.sh
. scripts/debian-release.sh

prepare_only=0
if [ "${1:-}" = "--prepare" ]; then prepare_only=1; shift; fi
ARCH=${1:?usage: cross-arm.sh [--prepare] arm64|armhf}
case "$ARCH" in
  arm64 | aarch64) ARCH=arm64 TRIPLE=aarch64-linux-gnu QEMU=qemu-aarch64 MACHINE=AArch64 DEFAULT_BUILD=build-aarch64 ;;
  armhf) TRIPLE=arm-linux-gnueabihf QEMU=qemu-arm MACHINE=ARM DEFAULT_BUILD=build-armhf ;;
  *) echo "unknown architecture $ARCH (arm64 or armhf)"; exit 2 ;;
esac
BUILD=${EW_CROSS_BUILD:-$DEFAULT_BUILD}

# ---- dependencies: the cross compiler and qemu-user (host), the libraries (target) ----------
host_pkgs=(cmake make "g++-$TRIPLE" qemu-user catch2 "$EW_LLHTTP_PKG")
command -v node >/dev/null || host_pkgs+=(nodejs)
target_pkgs=("libc6:$ARCH" "libmbedtls-dev:$ARCH" "libc-ares-dev:$ARCH")
need_arch=0
for p in "${target_pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || need_arch=1; done
if [ "$need_arch" = 1 ] && ! dpkg --print-foreign-architectures | grep -qx "$ARCH"; then
  dpkg --add-architecture "$ARCH"
  apt-get update -qq || echo "warning: apt-get update reported errors; installing anyway"
fi
ew_apt_install "${host_pkgs[@]}" "${target_pkgs[@]}"

extra_root=""
if [ "$EW_RELEASE" != bookworm ]; then
  # The target's llhttp and Catch2, unpacked (see the header). Keyed by their versions.
  vers=$(apt-cache policy "libllhttp-dev:$ARCH" "libcatch2-dev:$ARCH" | sed -n 's/ *Candidate: //p' | tr '\n' '_')
  extra_root=/var/cache/edgeway/target-$ARCH-${vers%_}
  if [ ! -f "$extra_root/.complete" ]; then
    echo "== unpacking libllhttp-dev:$ARCH libcatch2-dev:$ARCH into $extra_root"
    tmp=$(mktemp -d)
    chmod 755 "$tmp"   # apt downloads as _apt
    (cd "$tmp" && apt-get download -qq "libllhttp-dev:$ARCH" "libcatch2-dev:$ARCH")
    rm -rf "$extra_root" && mkdir -p "$extra_root"
    for deb in "$tmp"/*.deb; do dpkg-deb -x "$deb" "$extra_root"; done
    rm -rf "$tmp"
    # Link the static libllhttp.a: the shared one's package is not installed for the target.
    rm -f "$extra_root"/usr/lib/"$TRIPLE"/libllhttp.so*
    touch "$extra_root/.complete"
  fi
fi
[ "$prepare_only" = 1 ] && exit 0

# ---- build ------------------------------------------------------------------------------------
echo "== configure $BUILD ($TRIPLE, Debian $EW_RELEASE)"
mkdir -p "$BUILD"
cmake -S . -B "$BUILD" -DCMAKE_TOOLCHAIN_FILE=toolchains/$TRIPLE.cmake -DCMAKE_BUILD_TYPE=Release \
      -DEW_TARGET_EXTRA_ROOT="$extra_root" -DEW_LWIP_TEST=OFF -DEW_CI_JOBS=OFF --no-warn-unused-cli \
      >"$BUILD/configure.log" 2>&1 || { cat "$BUILD/configure.log"; exit 1; }
grep -E '^-- (llhttp|Catch2)' "$BUILD/configure.log" | sed 's/^/   /'
echo "== build"
cmake --build "$BUILD" -j2 >"$BUILD/build.log" 2>&1 || { tail -50 "$BUILD/build.log"; exit 1; }
machine=$("$TRIPLE-readelf" -h "$BUILD/edgeway" | awk -F: '/Machine:/ {gsub(/^ +/, "", $2); print $2}')
echo "   $BUILD/edgeway: $machine"
[ "$machine" = "$MACHINE" ] || { echo "FAIL: $BUILD/edgeway is not an $MACHINE binary"; exit 1; }
"$BUILD/edgeway-qemu" --version

# ---- tests under qemu-user ---------------------------------------------------------------------
# Everything ctest registered in the cross build except the e2e tests (they need the npm SDK
# installed in tests/e2e; the integration tests cover the ARM binary over loopback).
echo "== ctest under $QEMU (unit, net, integration)"
timeout 900 ctest --test-dir "$BUILD" -E '^(e2e|lwip|fuzz|port|ci)\.' -j2 --timeout 300 --output-on-failure \
  >"$BUILD/ctest.log" 2>&1 || { cat "$BUILD/ctest.log"; exit 1; }
grep -E '^[0-9]+% tests passed|Test #[0-9]+: integration\.' "$BUILD/ctest.log" | sed 's/^ *[0-9]*\/[0-9]* //'
integration=$(grep -cE 'Test +#[0-9]+: integration\..* Passed' "$BUILD/ctest.log" || true)
[ "$integration" -ge 1 ] || { echo "FAIL: no integration test ran"; exit 1; }

# ---- size ---------------------------------------------------------------------------------------
stripped="$BUILD/edgeway.stripped"
cp "$BUILD/edgeway" "$stripped"
"$TRIPLE-strip" "$stripped"
echo "== $ARCH edgeway: $(stat -c %s "$BUILD/edgeway") B unstripped, $(stat -c %s "$stripped") B stripped (Release)"
echo "   dynamic libraries: $("$TRIPLE-readelf" -d "$stripped" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' | tr '\n' ' ')"
tail -3 "$BUILD/ctest.log"
