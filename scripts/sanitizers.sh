#!/usr/bin/env bash
# The unit, net and integration tests with AddressSanitizer and UndefinedBehaviorSanitizer
# (GCC; the same build flags as a normal build plus the sanitizers), in build-asan. Any
# sanitizer report fails the run: every process (the test programs, and each edgeway the Node
# harness starts) halts on its first error and writes its report to build-asan/sanitizer-logs,
# which must stay empty. LeakSanitizer runs too, when it works here (not under ptrace).
#
#   bash scripts/sanitizers.sh        (ctest ci.sanitizers runs this)
# Exits non-zero on a failing test or any report. EW_ASAN_BUILD sets the build folder.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$(pwd)
BUILD=${EW_ASAN_BUILD:-build-asan}
LOGS=$SRC/$BUILD/sanitizer-logs

# vptr checks need RTTI, which the product is built without (-fno-rtti).
san="-fsanitize=address,undefined -fno-sanitize=vptr -fno-sanitize-recover=all -fno-omit-frame-pointer"
echo "== configure $BUILD ($san)"
mkdir -p "$BUILD"
# -O1 -g, as the sanitizers' documentation advises: reports with usable stacks, and the test
# programs (Catch2) compile several times faster than at -O2.
cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=None -DCMAKE_C_FLAGS="-O1 -g $san" -DCMAKE_CXX_FLAGS="-O1 -g $san" \
      -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" -DEW_CI_JOBS=OFF -DEW_PORTABILITY_TESTS=OFF \
      -DEW_LWIP_TEST=OFF >"$BUILD/configure.log" 2>&1 || { cat "$BUILD/configure.log"; exit 1; }
echo "== build"
cmake --build "$BUILD" -j2 >"$BUILD/build.log" 2>&1 || { tail -50 "$BUILD/build.log"; exit 1; }

# Does LeakSanitizer work here? It cannot run under ptrace (a debugger, some sandboxes).
leaks=1
if ASAN_OPTIONS=detect_leaks=1 "$BUILD/edgeway" --version 2>&1 >/dev/null | grep -q 'LeakSanitizer has encountered a fatal error'; then
  leaks=0
fi
rm -rf "$LOGS" && mkdir -p "$LOGS"
export ASAN_OPTIONS="halt_on_error=1:abort_on_error=0:detect_leaks=$leaks:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1:log_path=$LOGS/asan"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$LOGS/ubsan"
echo "   ASAN_OPTIONS=$ASAN_OPTIONS"

echo "== ctest (unit, net, integration)"
rc=0
timeout 1200 ctest --test-dir "$BUILD" -E '^(e2e|fuzz|lwip|port|ci|package|ui)\.' -j2 --timeout 400 --output-on-failure \
  >"$BUILD/ctest.log" 2>&1 || rc=$?
reports=$(find "$LOGS" -type f | sort)
if [ -n "$reports" ]; then
  echo "FAIL: sanitizer reports:"
  for f in $reports; do echo "---- $f"; head -60 "$f"; done
  exit 1
fi
if [ "$rc" != 0 ]; then cat "$BUILD/ctest.log"; exit 1; fi
n=$(grep -cE 'Test +#[0-9]+: integration\..* Passed' "$BUILD/ctest.log" || true)
[ "$n" -ge 1 ] || { echo "FAIL: no integration test ran"; exit 1; }
echo "   no sanitizer report (leak detection: $([ $leaks = 1 ] && echo on || echo 'off: not supported here'))"
tail -3 "$BUILD/ctest.log"
