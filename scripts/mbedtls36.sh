#!/usr/bin/env bash
# edgeway against Mbed TLS 3.6 (TLS 1.3), the version Debian 13 ships, on any machine (root):
#   1. Debian 13's mbedtls source package, pinned to $EW_MBEDTLS36_VERSION, fetched with apt
#      through a private configuration (a deb-src line for trixie; the machine's own apt
#      sources are not touched), built as static libraries and installed into
#      /var/cache/edgeway/mbedtls-<upstream version> (outside the clone, reused when present;
#      the unpacked source stays beside it in mbedtls-<upstream version>-src for scripts/lean.sh);
#   2. edgeway configured against it in build-mbedtls36 (CMAKE_PREFIX_PATH), built, and its
#      unit, net, integration and e2e tests run (ctest in that folder).
#
#   bash scripts/mbedtls36.sh             both steps (ctest ci.mbedtls36 runs this)
#   bash scripts/mbedtls36.sh --prepare   step 1 only (scripts/install-deps.sh --test on Debian 12)
#   bash scripts/mbedtls36.sh --source    only fetches and unpacks the source tree
#   bash scripts/mbedtls36.sh --prefix    prints the library folder (--source-dir: the source tree)
# Exits non-zero on any failure. EW_MBEDTLS36_BUILD sets the build folder.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$(pwd)

EW_MBEDTLS36_VERSION=3.6.6-0.1~deb13u1
upstream=${EW_MBEDTLS36_VERSION%%-*}
CACHE=${EW_CACHE_DIR:-/var/cache/edgeway}
PREFIX=$CACHE/mbedtls-$upstream
BUILD=${EW_MBEDTLS36_BUILD:-build-mbedtls36}

SOURCE=$CACHE/mbedtls-$upstream-src
if [ "${1:-}" = "--prefix" ]; then echo "$PREFIX"; exit 0; fi
if [ "${1:-}" = "--source-dir" ]; then echo "$SOURCE"; exit 0; fi

# shellcheck source=scripts/debian-release.sh
. scripts/debian-release.sh

# Debian 13's source tree, unpacked once into $SOURCE (the lean build, scripts/lean.sh,
# compiles it with edgeway's own configuration; prepare() builds the default one from it).
fetch_source() {
  [ -f "$SOURCE/include/mbedtls/build_info.h" ] && return 0
  mkdir -p "$CACHE"
  exec 8>"$CACHE/.mbedtls-$upstream-src.lock"
  flock 8
  [ -f "$SOURCE/include/mbedtls/build_info.h" ] && return 0   # another run fetched it meanwhile
  ew_apt_install dpkg-dev ca-certificates
  local work apt
  work=$(mktemp -d /var/tmp/ew-mbedtls36-src.XXXXXX)
  chmod 755 "$work"   # apt downloads as _apt
  apt=$work/apt
  mkdir -p "$apt/lists/partial"
  printf 'deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] %s trixie main\n' \
    "$(ew_apt_mirror)" >"$apt/sources.list"
  local opts=(-o "Dir::Etc::sourcelist=$apt/sources.list" -o Dir::Etc::sourceparts=-
              -o "Dir::State::Lists=$apt/lists" -o APT::Get::List-Cleanup=0)
  echo "== fetching Debian 13's mbedtls $EW_MBEDTLS36_VERSION source (private apt configuration)"
  apt-get "${opts[@]}" update -qq
  (cd "$work" && apt-get "${opts[@]}" source -qq "mbedtls=$EW_MBEDTLS36_VERSION" >"$work/source.log" 2>&1) \
    || { cat "$work/source.log"; rm -rf "$work"; echo "FAIL: apt-get source mbedtls=$EW_MBEDTLS36_VERSION"; return 1; }
  local tree
  tree=$(find "$work" -maxdepth 1 -type d -name "mbedtls-$upstream*" | head -n 1)
  [ -n "$tree" ] || { rm -rf "$work"; echo "FAIL: no mbedtls-$upstream source tree"; return 1; }
  echo "$EW_MBEDTLS36_VERSION" >"$tree/DEBIAN-VERSION"
  rm -rf "$SOURCE"
  mv "$tree" "$SOURCE"
  rm -rf "$work"
}

prepare() {
  [ -f "$PREFIX/lib/libmbedtls.a" ] && return 0
  fetch_source
  mkdir -p "$CACHE"
  exec 9>"$CACHE/.mbedtls-$upstream.lock"
  flock 9
  [ -f "$PREFIX/lib/libmbedtls.a" ] && return 0   # another run built it meanwhile
  ew_apt_install cmake build-essential
  local work
  work=$(mktemp -d /var/tmp/ew-mbedtls36.XXXXXX)
  trap 'rm -rf "$work"' RETURN
  echo "== building Mbed TLS $upstream (static) into $PREFIX"
  SECONDS=0
  cmake -S "$SOURCE" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_POSITION_INDEPENDENT_CODE=ON \
        -DENABLE_TESTING=OFF -DENABLE_PROGRAMS=OFF -DUSE_SHARED_MBEDTLS_LIBRARY=OFF \
        -DUSE_STATIC_MBEDTLS_LIBRARY=ON -DMBEDTLS_FATAL_WARNINGS=OFF \
        -DCMAKE_INSTALL_PREFIX="$PREFIX.part" >"$work/configure.log" 2>&1 \
    || { cat "$work/configure.log"; return 1; }
  cmake --build "$work/build" -j2 >"$work/build.log" 2>&1 || { tail -40 "$work/build.log"; return 1; }
  rm -rf "$PREFIX.part"
  cmake --install "$work/build" >/dev/null
  # One lib folder whatever GNUInstallDirs chose (lib or lib/<triple>).
  if [ ! -d "$PREFIX.part/lib" ]; then mv "$PREFIX.part"/lib* "$PREFIX.part/lib"; fi
  echo "$EW_MBEDTLS36_VERSION" >"$PREFIX.part/DEBIAN-VERSION"
  mv "$PREFIX.part" "$PREFIX"
  echo "   built in ${SECONDS}s"
}

if [ "${1:-}" = "--source" ]; then fetch_source; exit 0; fi
prepare
[ "${1:-}" = "--prepare" ] && exit 0

echo "== configure $BUILD against $PREFIX"
mkdir -p "$BUILD"
cmake -S "$SRC" -B "$BUILD" -DCMAKE_PREFIX_PATH="$PREFIX" -DEW_CI_JOBS=OFF -DEW_PORTABILITY_TESTS=OFF \
      -DEW_LWIP_TEST=OFF >"$BUILD/configure.log" 2>&1 || { cat "$BUILD/configure.log"; exit 1; }
inc=$(sed -n 's/^MBEDTLS_INCLUDE_DIR:PATH=//p' "$BUILD/CMakeCache.txt")
lib=$(sed -n 's/^MBEDTLS_LIB:FILEPATH=//p' "$BUILD/CMakeCache.txt")
[ "$inc" = "$PREFIX/include" ] && [ "$lib" = "$PREFIX/lib/libmbedtls.a" ] \
  || { echo "FAIL: the build found Mbed TLS at $inc, $lib, not in $PREFIX"; exit 1; }
echo "== build"
cmake --build "$BUILD" -j2 >"$BUILD/build.log" 2>&1 || { tail -50 "$BUILD/build.log"; exit 1; }
if ldd "$BUILD/edgeway" | grep libmbed >/dev/null; then echo "FAIL: edgeway links a shared Mbed TLS"; exit 1; fi
# The TLS 1.3 client is in the binary (Mbed TLS 2.28 has none).
nm "$BUILD/edgeway" | grep ' mbedtls_ssl_tls13_handshake_client_step$' >/dev/null \
  || { echo "FAIL: edgeway has no Mbed TLS 3.6 TLS 1.3 client"; exit 1; }
echo "   $BUILD/edgeway links Mbed TLS $upstream ($(sed -n 's/.*MBEDTLS_VERSION_STRING_FULL *//p' "$PREFIX/include/mbedtls/build_info.h")) statically, TLS 1.3 client included"

echo "== ctest (unit, net, integration, e2e)"
timeout 1200 ctest --test-dir "$BUILD" -E '^(fuzz|lwip|port|ci)\.' -j2 --timeout 300 --output-on-failure \
  >"$BUILD/ctest.log" 2>&1 || { cat "$BUILD/ctest.log"; exit 1; }
for kind in integration e2e; do
  n=$(grep -cE "Test +#[0-9]+: $kind\..* Passed" "$BUILD/ctest.log" || true)
  [ "$n" -ge 1 ] || { echo "FAIL: no $kind test ran"; exit 1; }
done
tail -3 "$BUILD/ctest.log"
