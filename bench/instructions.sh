#!/usr/bin/env bash
# Instructions per proxied request (valgrind callgrind), JSON and SSE, plain upstream: the
# figure to track per commit, since it does not move with machine noise. Not a test.
#   bench/instructions.sh                    # EDGEWAY=build-bench/edgeway, 2000 requests
#   EDGEWAY=/path/to/old/edgeway REQUESTS=1000 TOP=15 bench/instructions.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need valgrind callgrind_annotate node
[[ -x "$EDGEWAY" ]] || die "$EDGEWAY not built (cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release && cmake --build build-bench --target edgeway)"
EDGEWAY=$EDGEWAY exec node "$BENCH_DIR/instructions.js"
