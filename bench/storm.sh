#!/usr/bin/env bash
# Fault storm soak (issue 7): three fake upstreams (Node, 127.0.0.1) whose behaviour flips
# every 2-5 s (seeded) among ok, 500, reset, hang, 429 (Retry-After: 1), slow SSE and refused,
# one of them ok at every moment; four clients (JSON and streams alternating) for MINUTES
# minutes (default 20). Reports requests, failures by kind, silent truncations (a stream that
# ends cleanly without [DONE] or an error event), crossed answers, /status samples with every
# endpoint DOWN, RSS and fd counts (from /proc) over time. Exit 0 when >= 99.9 % succeed, no
# stream was cut silently and no answer crossed. Not a test: the 60 s version is ctest's
# integration.fault_storm.
#
#   bench/storm.sh                 # 20 minutes
#   MINUTES=2 bench/storm.sh       # a quick look
# Env: EDGEWAY (binary, default build-bench/edgeway), MINUTES, SEED, SAMPLE_MS (default 10000),
#      OUT (write the full JSON report there).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need node
[[ -x "$EDGEWAY" ]] || die "$EDGEWAY not built (cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release && cmake --build build-bench --target edgeway)"
EDGEWAY_BIN=$EDGEWAY EW_SOURCE_DIR=$ROOT STORM_MINUTES=${MINUTES:-20} STORM_SEED=${SEED:-20261202} \
  STORM_SAMPLE_MS=${SAMPLE_MS:-10000} STORM_OUT=${OUT:-} exec node "$BENCH_DIR/storm.js"
