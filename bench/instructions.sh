#!/usr/bin/env bash
# Instructions per proxied request (valgrind callgrind), JSON and SSE, plain and TLS upstream: the
# figure to track per commit, since it does not move with machine noise. Not a test.
#   bench/instructions.sh                    # EDGEWAY=build-bench/edgeway, 2000 requests
#   EDGEWAY=/path/to/old/edgeway REQUESTS=500 TOP=25 CASES=json,sse bench/instructions.sh
#   PEER=haproxy CASES=json,json-tls bench/instructions.sh   # the same counts for HAProxy
# Cases: json, sse, json-tls, sse-tls (plain and TLS upstream); also syscalls per request
# (strace -f -c; SYSCALLS=0 skips); TOP=n prints the n costliest functions per request.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need valgrind callgrind_annotate strace node openssl
[[ -n "${PEER:-}" ]] && need "$PEER"
[[ -n "${PEER:-}" || -x "$EDGEWAY" ]] || die "$EDGEWAY not built (cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release && cmake --build build-bench --target edgeway)"
EDGEWAY=$EDGEWAY exec node "$BENCH_DIR/instructions.js"
