#!/usr/bin/env bash
# RSS soak (issue 2): edgeway with 4 endpoints, 2 over http and 2 over https (test CA made
# here with openssl, given as ca_file), each probed every second (kind models), for
# DURATION seconds (default 300). Samples VmRSS every SAMPLE seconds, prints the series,
# min/max, and two verdicts:
#   flat   - the last sample is less than 5% above the sample at 60 s (at DURATION/2 for runs
#            shorter than 120 s), i.e. no growth once warmed up;
#   < 4 MB - the largest sample (and VmHWM) is under 4096 kB.
# Exit status 0 when both hold, 1 otherwise. Not a test: nothing runs it in ctest.
#
#   bench/rss_soak.sh                      # 5 minutes
#   DURATION=30 bench/rss_soak.sh          # quick look
#   CA_MODE=system bench/rss_soak.sh       # https endpoints verify against the whole system
#                                          # CA bundle (+ the test CA), as with `ca_file =`
# Env: EDGEWAY (binary, default build-bench/edgeway), DURATION, SAMPLE, CA_MODE (test|system),
#      KEEP=1 keeps the work dir (configs, logs).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DURATION=${DURATION:-300}
SAMPLE=${SAMPLE:-10}
CA_MODE=${CA_MODE:-test}
need nginx openssl curl ss awk
[[ -x "$EDGEWAY" ]] || die "$EDGEWAY not built (cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release && cmake --build build-bench --target edgeway)"

make_work
make_certs "$WORK/certs"
case "$CA_MODE" in
  test) CA_FILE=$WORK/certs/ca.pem ;;
  system)
    # The system bundle plus the test CA: the memory cost of verifying against every public CA.
    CA_FILE=$WORK/certs/bundle.pem
    cat /etc/ssl/certs/ca-certificates.crt "$WORK/certs/ca.pem" >"$CA_FILE"
    ;;
  *) die "CA_MODE must be test or system" ;;
esac

H1=$(free_port); H2=$(free_port); S1=$(free_port); S2=$(free_port); LISTEN=$(free_port)
nginx_conf "$WORK/nginx.conf" "$H1" "$H2" "$S1:ssl" "$S2:ssl"
start_nginx "$WORK/nginx.conf"
for p in "$H1" "$H2" "$S1" "$S2"; do wait_port "$p"; done

cat >"$WORK/edgeway.ini" <<EOF
[agent]
listen = 127.0.0.1:$LISTEN
log_level = warn

[probe]
kind = models
interval_ms = 1000
down_interval_ms = 1000
timeout_ms = 2000

[endpoint.http-a]
url = http://127.0.0.1:$H1/v1
api_key_env = BENCH_API_KEY
models = bench-model
priority = 10

[endpoint.http-b]
url = http://127.0.0.1:$H2/v1
api_key_env = BENCH_API_KEY
models = bench-model
priority = 5

[endpoint.https-a]
url = https://localhost:$S1/v1
api_key_env = BENCH_API_KEY
models = bench-model
ca_file = $CA_FILE

[endpoint.https-b]
url = https://localhost:$S2/v1
api_key_env = BENCH_API_KEY
models = bench-model
ca_file = $CA_FILE
EOF

export BENCH_API_KEY=sk-bench-not-a-real-key
"$EDGEWAY" --check-config "$WORK/edgeway.ini" || die "edgeway rejected the configuration"
"$EDGEWAY" -c "$WORK/edgeway.ini" 2>"$WORK/edgeway.log" &
EW=$!
PIDS=("$EW" "${PIDS[@]}")
wait_port "$LISTEN"

log "edgeway pid $EW, 4 endpoints (http :$H1 :$H2, https :$S1 :$S2, CA_MODE=$CA_MODE), probe every 1 s, ${DURATION}s"
echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ)  $(machine_line)"
echo "# edgeway $("$EDGEWAY" --version 2>&1 | head -1), CA_MODE=$CA_MODE, DURATION=${DURATION}s, SAMPLE=${SAMPLE}s"
echo "# $(source_line)"
printf '%6s %10s %10s %10s %10s\n' t_s VmRSS_kB RssAnon_kB RssFile_kB VmHWM_kB

REF_T=60
((DURATION < 120)) && REF_T=$((DURATION / 2))
series=()
ref=""
start=$(date +%s)
t=0
while :; do
  kill -0 "$EW" 2>/dev/null || die "edgeway exited: $(tail -5 "$WORK/edgeway.log")"
  r=$(rss_kb "$EW"); h=$(hwm_kb "$EW")
  printf '%6d %10d %10d %10d %10d\n' "$t" "$r" "$(status_kb "$EW" RssAnon)" "$(status_kb "$EW" RssFile)" "$h"
  series+=("$r")
  [[ -z "$ref" && $t -ge $REF_T ]] && ref=$r
  ((t >= DURATION)) && break
  next=$((t + SAMPLE)); ((next > DURATION)) && next=$DURATION
  while (($(date +%s) - start < next)); do sleep 0.2; done
  t=$(($(date +%s) - start))
done

status=$(curl -sf "http://127.0.0.1:$LISTEN/status" || true)
hwm=$(hwm_kb "$EW")
min=$(printf '%s\n' "${series[@]}" | sort -n | head -1)
max=$(printf '%s\n' "${series[@]}" | sort -n | tail -1)
last=${series[-1]}
[[ -z "$ref" ]] && ref=${series[0]}

echo
echo "# per endpoint (from /status): name state probes_ok probes_failed"
if command -v jq >/dev/null && [[ -n "$status" ]]; then
  jq -r '.endpoints[] | "#   \(.name) \(.state) \(.probes_ok) \(.probes_failed)"' <<<"$status" || echo "$status"
else
  echo "#   $status"
fi
echo "# $(awk '/^(Rss|Pss|Pss_Anon|Pss_File|Private_Dirty):/ {printf "%s %s kB  ", $1, $2}' "/proc/$EW/smaps_rollup" 2>/dev/null)"
echo "# where the RSS is at the end (kB, from /proc/PID/smaps, by mapping):"
smaps_by_mapping "$EW" | sed 's/^/#   /'
growth=$(awk -v a="$ref" -v b="$last" 'BEGIN { printf "%.2f", (b - a) * 100 / a }')
flat=$(awk -v g="$growth" 'BEGIN { print (g < 5) ? "yes" : "no" }')
under=$([[ $max -lt 4096 && $hwm -lt 4096 ]] && echo yes || echo no)
echo "RSS min ${min} kB, max ${max} kB, VmHWM ${hwm} kB; at ${REF_T}s ${ref} kB, at end ${last} kB (${growth}%)"
echo "flat (end < 5% above the ${REF_T}s sample): $flat"
echo "under 4 MB (max and VmHWM < 4096 kB): $under"
[[ "$flat" == yes && "$under" == yes ]]
