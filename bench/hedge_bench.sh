#!/usr/bin/env bash
# Hedged first tokens (issue 13): time to first token when the primary has a slow tail.
#   primary: the first SSE data event after 50 ms for 90 % of requests, after 3 s for 10 %
#            (seeded: every target sees the same sequence); the 200 head comes at once
#   backup:  a steady 80 ms
# Targets, one after the other, each with WARMUP requests first (not measured), then the
# counters reset and REQUESTS measured, CONC at a time:
#   direct           client -> primary
#   edgeway          client -> edgeway (primary, backup; no hedging)        -> upstreams
#   edgeway_hedge    client -> edgeway (hedge_after_ms = auto, hedge_budget_pct = 15)
#   haproxy          client -> HAProxy (server primary, server backup `backup`, httpchk)
#   nginx            client -> nginx (upstream: primary, backup `backup`, next_upstream)
# Prints a Markdown table: p50/p90/p99/max time to first token, what served the answers and
# the extra upstream requests (requests the upstreams saw beyond the client's).
#   bench/hedge_bench.sh   (REQUESTS=300 CONC=8 WARMUP=40; EDGEWAY=path, default build-bench/ or build/)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
[[ -x "$EDGEWAY" || ! -x "$ROOT/build/edgeway" ]] || EDGEWAY=$ROOT/build/edgeway  # lib.sh's build-bench, else build
REQUESTS=${REQUESTS:-300}
CONC=${CONC:-8}
WARMUP=${WARMUP:-40}
need node curl haproxy nginx jq ss
[[ -x "$EDGEWAY" ]] || die "no edgeway binary at $EDGEWAY (cmake --build build --target edgeway, or EDGEWAY=...)"
make_work

PP=$(free_port); BP=$(free_port); E1=$(free_port); E2=$(free_port); H=$(free_port); N=$(free_port)

node "$BENCH_DIR/hedge_upstream.js" "$PP" "$BP" &
PIDS+=($!)
wait_port "$PP"; wait_port "$BP"

edgeway_ini() {  # FILE LISTEN [AGENT_LINES]
  cat >"$1" <<EOF
[agent]
listen = 127.0.0.1:$2
log_level = warn
max_clients = 64
${3:-}

[probe]
kind = models
interval_ms = 1000
down_interval_ms = 1000
timeout_ms = 2000

[endpoint.primary]
url = http://127.0.0.1:$PP/v1
models = bench-model
priority = 10

[endpoint.backup]
url = http://127.0.0.1:$BP/v1
models = bench-model
priority = 5
EOF
}

start_edgeway() {  # INI PORT
  "$EDGEWAY" --check-config "$1" >/dev/null || die "edgeway rejected $1"
  "$EDGEWAY" -c "$1" 2>"$1.log" &
  PIDS=("$!" "${PIDS[@]}")
  wait_port "$2"
  for _ in $(seq 1 100); do
    [[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$2/readyz")" == 200 ]] && return 0
    sleep 0.1
  done
  die "edgeway on :$2 not ready: $(tail -5 "$1.log")"
}

edgeway_ini "$WORK/plain.ini" "$E1"
edgeway_ini "$WORK/hedge.ini" "$E2" $'hedge_after_ms = auto\nhedge_budget_pct = 15'
start_edgeway "$WORK/plain.ini" "$E1"
start_edgeway "$WORK/hedge.ini" "$E2"

cat >"$WORK/haproxy.cfg" <<EOF
global
    maxconn 4096
defaults
    mode http
    option http-keep-alive
    option http-no-delay
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 60s
    timeout check 2s
frontend api
    bind 127.0.0.1:$H
    default_backend upstreams
backend upstreams
    option httpchk GET /v1/models
    http-check expect status 200
    http-reuse always
    retry-on all-retryable-errors
    option redispatch
    default-server inter 1s fall 3 rise 2
    server primary 127.0.0.1:$PP check
    server backup 127.0.0.1:$BP check backup
EOF
haproxy -c -q -f "$WORK/haproxy.cfg" || die "haproxy rejected its configuration"
haproxy -db -f "$WORK/haproxy.cfg" >"$WORK/haproxy.log" 2>&1 &
PIDS=("$!" "${PIDS[@]}")
wait_port "$H"

user_line=""
[[ $(id -u) == 0 ]] && user_line="user root;"
mkdir -p "$WORK/nginx-body"
cat >"$WORK/nginx.conf" <<EOF
$user_line
worker_processes 1;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $WORK/nginx-body;
    proxy_temp_path $WORK/nginx-proxy;
    fastcgi_temp_path $WORK/nginx-fastcgi;
    uwsgi_temp_path $WORK/nginx-uwsgi;
    scgi_temp_path $WORK/nginx-scgi;
    upstream llm {
        server 127.0.0.1:$PP max_fails=3 fail_timeout=10s;
        server 127.0.0.1:$BP backup;
        keepalive 32;
    }
    server {
        listen 127.0.0.1:$N;
        location /v1/ {
            proxy_pass http://llm;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
            proxy_next_upstream error timeout http_502 http_503 http_504;
            proxy_read_timeout 60s;
        }
    }
}
EOF
nginx -t -q -p "$WORK" -c "$WORK/nginx.conf" -e "$WORK/nginx-error.log" || die "nginx -t failed: $(cat "$WORK/nginx-error.log")"
nginx -p "$WORK" -c "$WORK/nginx.conf" -e "$WORK/nginx-error.log" -g 'daemon off;' &
PIDS=("$!" "${PIDS[@]}")
wait_port "$N"
sleep 1.5  # first health checks (HAProxy, edgeway probes)

declare -A URL=(
  [direct]="http://127.0.0.1:$PP/v1/chat/completions"
  [edgeway]="http://127.0.0.1:$E1/v1/chat/completions"
  [edgeway_hedge]="http://127.0.0.1:$E2/v1/chat/completions"
  [haproxy]="http://127.0.0.1:$H/v1/chat/completions"
  [nginx]="http://127.0.0.1:$N/v1/chat/completions"
)
TARGETS=(direct edgeway edgeway_hedge haproxy nginx)
stats() { curl -s "http://127.0.0.1:$PP/bench/stats"; }
reset() { curl -s -X POST "http://127.0.0.1:$PP/bench/reset" >/dev/null; }
metric() { curl -s "http://127.0.0.1:$E2/metrics" | awk -v k="$1" '$1 == k {print $2}'; }

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
declare -A RES EXTRA UPS CANC
H0=0; HW0=0; HP0=0
for t in "${TARGETS[@]}"; do
  log "$t: $WARMUP warm-up requests, then $REQUESTS measured ($CONC at a time)"
  node "$BENCH_DIR/hedge_client.js" "$t" "${URL[$t]}" "$WARMUP" "$CONC" >/dev/null
  reset
  if [[ $t == edgeway_hedge ]]; then
    H0=$(metric edgeway_hedges_started_total); HW0=$(metric 'edgeway_hedge_wins_total{winner="hedge"}')
    HP0=$(metric 'edgeway_hedge_wins_total{winner="primary"}')
  fi
  RES[$t]=$(node "$BENCH_DIR/hedge_client.js" "$t" "${URL[$t]}" "$REQUESTS" "$CONC")
  s=$(stats)
  UPS[$t]=$(jq -r '"\(.primary.requests) / \(.backup.requests)"' <<<"$s")
  CANC[$t]=$(jq -r '.primary.cancelled' <<<"$s")
  EXTRA[$t]=$(jq -r --argjson n "$REQUESTS" '.primary.requests + .backup.requests - $n' <<<"$s")
  log "$t: ${RES[$t]} upstream requests primary/backup ${UPS[$t]}"
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
HS=$(( $(metric edgeway_hedges_started_total) - H0 ))
HW=$(( $(metric 'edgeway_hedge_wins_total{winner="hedge"}') - HW0 ))
HP=$(( $(metric 'edgeway_hedge_wins_total{winner="primary"}') - HP0 ))
SKIP=$(curl -s "http://127.0.0.1:$E2/metrics" | awk '$1 ~ /^edgeway_hedges_skipped_total/ {printf "%s%s", sep, $0; sep="; "}')

echo
echo "# hedge_bench: $REQUESTS streaming requests per target, $CONC at a time, after $WARMUP warm-up requests"
echo "# $(machine_line)"
echo "# $(source_line)"
echo "# load average before $LOAD_BEFORE, after $LOAD_AFTER; $(haproxy -v | head -1 | cut -d' ' -f1-3); $(nginx -v 2>&1); node $(node -v)"
echo
echo "| time to first token (ms) | p50 | p90 | p99 | max | answers from primary / backup | upstream requests primary / backup | extra upstream requests | primary requests closed before their first token |"
echo "|---|---|---|---|---|---|---|---|---|"
for t in "${TARGETS[@]}"; do
  r=${RES[$t]}
  echo "| $t | $(jq -r .p50 <<<"$r") | $(jq -r .p90 <<<"$r") | $(jq -r .p99 <<<"$r") | $(jq -r .max <<<"$r") |" \
    "$(jq -r '"\(.served.primary // 0) / \(.served.backup // 0)"' <<<"$r")$(jq -r 'if .errors > 0 then " (\(.errors) errors)" else "" end' <<<"$r") | ${UPS[$t]} | ${EXTRA[$t]} | ${CANC[$t]} |"
done
echo
echo "edgeway_hedge during the measured run: hedges started $HS, won by the hedge $HW, by the primary $HP; $SKIP"
