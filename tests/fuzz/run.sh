#!/usr/bin/env bash
# Builds every tests/fuzz/fuzz_*.cpp with libFuzzer, ASan and UBSan (clang) in a build
# directory of its own, then runs each target for a bounded time.
#
#   tests/fuzz/run.sh [fuzz_NAME...]     default: every fuzz_* target
#
#   FUZZ_SECONDS    time per target, seconds (default 60)
#   FUZZ_BUILD_DIR  build directory (default: build-fuzz at the top of the source tree)
#   FUZZ_JOBS       parallel compile jobs (default 2)
#   FUZZ_ARGS       extra libFuzzer arguments, e.g. "-max_len=8192"
#   CC, CXX         compilers (default: the newest clang-19 or clang-14 installed, as
#                   scripts/install-deps.sh --test installs the one of this Debian release)
#
# Seeds for fuzz_NAME: tests/fuzz/corpus/NAME/ and tests/unit/data/NAME/ when they exist
# (read, never written); tests/fuzz/fuzz_NAME.dict is passed as -dict when it exists.
# New inputs go to BUILD/corpus/fuzz_NAME, crash inputs to BUILD/artifacts/fuzz_NAME/.
# Exit status: 0 when no target crashed, leaked, timed out or failed to build; 1 otherwise.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=$(cd "$here/../.." && pwd)
seconds=${FUZZ_SECONDS:-60}
build=${FUZZ_BUILD_DIR:-$src/build-fuzz}
jobs=${FUZZ_JOBS:-2}
if [ -z "${CXX:-}" ]; then
    for v in 19 14; do
        if command -v "clang++-$v" >/dev/null; then CC=clang-$v CXX=clang++-$v; break; fi
    done
fi
export CC=${CC:-clang} CXX=${CXX:-clang++}

echo "fuzz: building in $build with $CXX"
mkdir -p "$build"
cmake -S "$src" -B "$build" -DEW_FUZZ=ON -DEW_BUILD_TESTS=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DCMAKE_C_COMPILER="$CC" -DCMAKE_CXX_COMPILER="$CXX" >"$build/configure.log" 2>&1 ||
    { cat "$build/configure.log"; echo "fuzz: configure failed"; exit 1; }
cmake --build "$build" --target fuzz -j "$jobs"

targets=()
if [ $# -gt 0 ]; then
    for t in "$@"; do targets+=("$build/fuzz/$t"); done
else
    for exe in "$build"/fuzz/fuzz_*; do
        [ -f "$exe" ] && [ -x "$exe" ] && targets+=("$exe")
    done
fi
if [ ${#targets[@]} -eq 0 ]; then
    echo "fuzz: no fuzz_* targets built"
    exit 1
fi

failed=()
for exe in "${targets[@]}"; do
    name=$(basename "$exe")
    short=${name#fuzz_}
    corpus="$build/corpus/$name"
    artifacts="$build/artifacts/$name"
    log="$build/$name.log"
    mkdir -p "$corpus" "$artifacts"
    args=("$corpus")
    for d in "$here/corpus/$short" "$src/tests/unit/data/$short"; do
        [ -d "$d" ] && args+=("$d")
    done
    [ -f "$here/$name.dict" ] && args+=("-dict=$here/$name.dict")
    args+=("-max_total_time=$seconds" "-timeout=10" "-rss_limit_mb=2048" "-print_final_stats=1"
           "-artifact_prefix=$artifacts/")
    # shellcheck disable=SC2206  # FUZZ_ARGS is a list of words on purpose
    extra=(${FUZZ_ARGS:-})
    echo "fuzz: $name for ${seconds}s (log: $log)"
    if [ -x "$exe" ] && "$exe" "${args[@]}" ${extra[@]+"${extra[@]}"} >"$log" 2>&1; then
        grep -E '^stat::(number_of_executed_units|new_units_added):' "$log" | sed "s/^/  $name /" || true
    else
        echo "fuzz: $name FAILED; last lines of $log:"
        tail -n 40 "$log" || true
        ls "$artifacts" 2>/dev/null | sed "s|^|  artifact: $artifacts/|"
        failed+=("$name")
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: FAILED: ${failed[*]}"
    exit 1
fi
echo "fuzz: all ${#targets[@]} target(s) ran ${seconds}s each without a finding"
