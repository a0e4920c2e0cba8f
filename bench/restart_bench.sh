#!/usr/bin/env bash
# Time back to the primary after a restart (issue 13, item 2): the primary fake upstream is
# killed (-9) and started again on its port DOWN_MS later, ROUNDS clean restarts spaced by
# CLEAN_MS of serving, then one kill soon after it came back (the flap the cooldown grows
# for); one client sends a chat request every GAP_MS through edgeway throughout. Prints a
# Markdown table: time from "listening again" to the first request the primary served,
# requests that failed or paid a failed attempt meanwhile, and the cooldown /status shows.
# Not a test: nothing in ctest runs it. About 3 minutes with the defaults.
#
#   bench/restart_bench.sh
#   ROUNDS=2 CLEAN_MS=25000 bench/restart_bench.sh     # a quicker look
# Env: EDGEWAY (binary, default build-bench/edgeway), ROUNDS (4), DOWN_MS (2000),
#      CLEAN_MS (30000), FLAP_AFTER_MS (3000), GAP_MS (50).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need node
[[ -x "$EDGEWAY" ]] || die "$EDGEWAY not built (cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release && cmake --build build-bench --target edgeway)"
EDGEWAY_BIN=$EDGEWAY EW_SOURCE_DIR=$ROOT exec node "$BENCH_DIR/restart.js"
