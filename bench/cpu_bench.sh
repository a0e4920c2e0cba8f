#!/usr/bin/env bash
# CPU time per proxied request (issue 14), every proxy in the same run against the same nginx
# upstream: wrk -t2 -c64 POSTs a small chat completion through each proxy in turn, and each
# proxy's utime+stime (all its processes and threads, from /proc/PID/stat) over the run is
# divided by the requests wrk completed through it.
#   direct          wrk -> nginx (the upstream's own cost, for reference; not a proxy)
#   edgeway         two endpoints (primary, backup), probes every 1 s (as bench/proxy_bench.sh)
#   haproxy-1t      HAProxy as bench/proxy_bench.sh configures it: nbthread 1, two servers
#                   (backup), httpchk every 1 s, http-reuse always
#   haproxy-2t      the same with nbthread 2 (HAProxy's own default on this 2-CPU machine)
#   nginx-proxy-1w  nginx as a proxy, 1 worker, upstream keepalive 64
#   nginx-proxy-2w  the same, 2 workers
#   ew-LABEL        other edgeway binaries, from EDGEWAYS="LABEL=PATH ..." (same configuration)
# Every figure has the 1-minute load average read just before its run, and the CPU other
# processes used during it (% of one CPU): the machine may be shared, and CPU per request
# moves with that less than requests/s does. Rounds alternate the targets. Not a test.
#
#   bench/cpu_bench.sh                    # ROUNDS=3 SECS=10: about 4 minutes
#   ROUNDS=1 SECS=5 bench/cpu_bench.sh    # quick look
# Env: EDGEWAY, EDGEWAYS, ROUNDS (3), SECS (10), CONNS (64), WRK_THREADS (2), TARGETS (the list above),
#      QUIET_WAIT (30: seconds to wait for an idle machine before each run), KEEP=1.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ROUNDS=${ROUNDS:-3}
SECS=${SECS:-10}
CONNS=${CONNS:-64}
WRK_THREADS=${WRK_THREADS:-2}
read -r -a TARGETS <<<"${TARGETS:-direct edgeway haproxy-1t haproxy-2t nginx-proxy-1w nginx-proxy-2w}"
# EDGEWAYS="base=/tmp/old/edgeway poll=build-poll/edgeway": more edgeway binaries in the same
# run, as targets ew-base, ew-poll (before/after comparisons on the same machine state).
declare -A EW_BIN=([edgeway]=$EDGEWAY)
for kv in ${EDGEWAYS:-}; do
  EW_BIN[ew-${kv%%=*}]=${kv#*=}
  TARGETS+=("ew-${kv%%=*}")
done
need nginx haproxy wrk curl awk
[[ -x "$EDGEWAY" ]] || die "$EDGEWAY not built (cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release && cmake --build build-bench --target edgeway)"

make_work
export BENCH_API_KEY=sk-bench-not-a-real-key
P1=$(free_port); P2=$(free_port)
declare -A PORT PID URL
for t in "${TARGETS[@]}"; do PORT[$t]=$(free_port); done
PORT[direct]=$P1

# ---- the upstream and the proxies -----------------------------------------------------------
nginx_conf "$WORK/nginx.conf" "$P1" "$P2"
start_nginx "$WORK/nginx.conf"
PID[direct]=${PIDS[-1]}
wait_port "$P1"; wait_port "$P2"

start_edgeway() {  # TARGET
  local ini="$WORK/$1.ini" bin=${EW_BIN[$1]}
  [[ -x "$bin" ]] || die "$bin: not an executable"
  cat >"$ini" <<EOF
[agent]
listen = 127.0.0.1:${PORT[$1]}
log_level = warn
max_clients = 64

[probe]
kind = models
interval_ms = 1000
down_interval_ms = 1000
timeout_ms = 2000
fall = 3
rise = 2

[endpoint.primary]
url = http://127.0.0.1:$P1/v1
api_key_env = BENCH_API_KEY
models = bench-model
priority = 10

[endpoint.backup]
url = http://127.0.0.1:$P2/v1
api_key_env = BENCH_API_KEY
models = bench-model
priority = 5
EOF
  "$bin" --check-config "$ini" >/dev/null || die "$1 rejected its configuration"
  "$bin" -c "$ini" 2>"$ini.log" &
  PID[$1]=$!
  PIDS=("$!" "${PIDS[@]}")
  wait_port "${PORT[$1]}"
  for _ in $(seq 1 100); do
    [[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${PORT[$1]}/readyz")" == 200 ]] && return 0
    sleep 0.1
  done
  die "edgeway not ready"
}

start_haproxy() {  # TARGET THREADS
  local cfg="$WORK/$1.cfg"
  cat >"$cfg" <<EOF
global
    nbthread $2
    maxconn 4096

defaults
    mode http
    option http-keep-alive
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 60s
    timeout check 2s

frontend api
    bind 127.0.0.1:${PORT[$1]}
    default_backend upstreams

backend upstreams
    option httpchk GET /v1/models
    http-check expect status 200
    http-reuse always
    default-server inter 1s fall 3 rise 2
    server primary 127.0.0.1:$P1 check
    server backup 127.0.0.1:$P2 check backup
EOF
  haproxy -c -q -f "$cfg" || die "haproxy rejected $cfg"
  haproxy -db -f "$cfg" >"$cfg.log" 2>&1 &
  PID[$1]=$!
  PIDS=("$!" "${PIDS[@]}")
  wait_port "${PORT[$1]}"
}

start_nginx_proxy() {  # TARGET WORKERS
  local conf="$WORK/$1.conf" user_line=""
  [[ $(id -u) == 0 ]] && user_line="user root;"
  mkdir -p "$WORK/$1-body"
  cat >"$conf" <<EOF
$user_line
worker_processes $2;
pid $WORK/$1.pid;
error_log $WORK/$1-error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $WORK/$1-body;
    proxy_temp_path $WORK/$1-body;
    keepalive_requests 100000000;
    keepalive_timeout 120s;
    upstream up { server 127.0.0.1:$P1; server 127.0.0.1:$P2 backup; keepalive 64; }
    server {
        listen 127.0.0.1:${PORT[$1]};
        location / {
            proxy_pass http://up;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
  nginx -t -q -p "$WORK" -c "$conf" -e "$WORK/$1-error.log" || die "nginx -t failed for $1"
  nginx -p "$WORK" -c "$conf" -e "$WORK/$1-error.log" -g 'daemon off;' &
  PID[$1]=$!
  PIDS=("$!" "${PIDS[@]}")
  wait_port "${PORT[$1]}"
}

for t in "${TARGETS[@]}"; do
  case $t in
    direct) ;;
    edgeway | ew-*) start_edgeway "$t" ;;
    haproxy-1t) start_haproxy "$t" 1 ;;
    haproxy-2t) start_haproxy "$t" 2 ;;
    nginx-proxy-1w) start_nginx_proxy "$t" 1 ;;
    nginx-proxy-2w) start_nginx_proxy "$t" 2 ;;
    *) die "unknown target $t" ;;
  esac
  URL[$t]="http://127.0.0.1:${PORT[$t]}/v1/chat/completions"
done
sleep 1.5  # first health checks
for t in "${TARGETS[@]}"; do
  out=$(curl -s -H 'Content-Type: application/json' -d "$REQ_JSON" "${URL[$t]}") || die "$t: curl failed"
  grep -q '"chatcmpl-bench0001"' <<<"$out" || die "$t: unexpected answer: $out"
done

# ---- measuring ----------------------------------------------------------------------------------
HZ=$(getconf CLK_TCK)
tree_jiffies() {  # PID: utime+stime of a process (all threads) and its children
  local s=0 p
  for p in $1 $(pgrep -P "$1" 2>/dev/null); do
    [[ -r /proc/$p/stat ]] && s=$((s + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)))
  done
  echo "$s"
}
all_jiffies() { local s=0 t; for t in "${TARGETS[@]}"; do s=$((s + $(tree_jiffies "${PID[$t]}"))); done; echo "$s"; }
cpu_busy() { awk '/^cpu / {b = $2 + $3 + $4 + $7 + $8; print b, b + $5 + $6}' /proc/stat; }
wait_quiet() {  # until the CPUs are >= 90% idle over one second, at most QUIET_WAIT seconds
  local b0 t0 b1 t1 waited=0
  while :; do
    read -r b0 t0 < <(cpu_busy); sleep 1; read -r b1 t1 < <(cpu_busy)
    (((b1 - b0) * 10 <= (t1 - t0))) && return 0
    ((waited++ >= ${QUIET_WAIT:-30})) && return 0
  done
}

echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ)  $(machine_line)"
echo "# $(source_line)"
echo "# $(haproxy -v | head -1); $(nginx -v 2>&1); wrk $(wrk -v 2>&1 | awk 'NR==1 {print $2}')"
echo "# ROUNDS=$ROUNDS SECS=$SECS CONNS=$CONNS WRK_THREADS=$WRK_THREADS; upstream nginx 1 worker"

declare -A V
for ((r = 1; r <= ROUNDS; r++)); do
  for t in "${TARGETS[@]}"; do
    wrk -t"$WRK_THREADS" -c"$CONNS" -d1s -s "$BENCH_DIR/post.lua" "${URL[$t]}" >/dev/null  # warm-up
    wait_quiet
    load=$(awk '{print $1}' /proc/loadavg)
    j0=$(tree_jiffies "${PID[$t]}"); a0=$(all_jiffies); read -r b0 _ < <(cpu_busy)
    out=$(bash -c 'wrk "$@"; rc=$?; read -r _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ cu cs _ </proc/$$/stat; echo "WRKCPU $((cu + cs))"; exit $rc' \
      _ -t"$WRK_THREADS" -c"$CONNS" -d"$SECS"s --timeout 5s -s "$BENCH_DIR/post.lua" "${URL[$t]}") || die "wrk failed: $out"
    j1=$(tree_jiffies "${PID[$t]}"); a1=$(all_jiffies); read -r b1 _ < <(cpu_busy)
    res=$(grep '^RESULT' <<<"$out") || die "no RESULT from wrk: $out"
    n=$(sed -n 's/.* requests=\([0-9]*\).*/\1/p' <<<"$res")
    rps=$(sed -n 's/.* rps=\([0-9.]*\).*/\1/p' <<<"$res")
    p99=$(sed -n 's/.* p99_us=\([0-9]*\).*/\1/p' <<<"$res")
    errs=$(awk '{for (i = 1; i <= NF; i++) if ($i ~ /_errors=|timeouts=/) {split($i, a, "="); s += a[2]}} END {print s + 0}' <<<"$res")
    w=$(awk '/^WRKCPU/ {print $2}' <<<"$out")
    # Everything busy on the machine minus wrk and the servers of this benchmark.
    foreign=$(awk -v f="$((b1 - b0 - (a1 - a0) - w))" -v s="$SECS" -v hz="$HZ" 'BEGIN { x = f * 100 / (s * hz); printf "%d", (x < 0) ? 0 : x }')
    us=$(awk -v j="$((j1 - j0))" -v hz="$HZ" -v n="$n" 'BEGIN { printf "%.1f", (n > 0) ? j * 1e6 / hz / n : 0 }')
    cpu=$(awk -v j="$((j1 - j0))" -v hz="$HZ" -v s="$SECS" 'BEGIN { printf "%d", j * 100 / (hz * s) }')
    echo "round $r $t requests=$n rps=$rps cpu_us_per_req=$us cpu_pct=$cpu p99_us=$p99 errors=$errs load1=$load foreign_cpu_pct=$foreign"
    V["$t rps"]+=" $rps"; V["$t us"]+=" $us"; V["$t cpu"]+=" $cpu"; V["$t p99"]+=" $p99"
    V["$t load"]+=" $load"; V["$t foreign"]+=" $foreign"; V["$t errs"]+=" $errs"
  done
done

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
range() { printf '%s\n' "$@" | sort -g | awk 'NR == 1 {lo = $1} {hi = $1} END {print lo "–" hi}'; }
m() { median ${V["$1 $2"]}; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "n/a"; else printf "%.2f", a / b }'; }
EU=$(m edgeway us 2>/dev/null || echo 0)
echo
echo "| medians of $ROUNDS rounds, wrk -t$WRK_THREADS -c$CONNS, ${SECS} s each | requests/s | CPU µs per request | (range) | CPU % of one core | edgeway's CPU/request ÷ this | p99 latency (µs) | errors | load avg (1 min) before the runs | other processes' CPU during the runs (% of one core) |"
echo "|---|---:|---:|---|---:|---:|---:|---:|---|---|"
for t in "${TARGETS[@]}"; do
  echo "| $t | $(m "$t" rps | awk '{printf "%.0f", $1}') | $(m "$t" us) | $(range ${V["$t us"]}) | $(m "$t" cpu) | $( [[ $t == direct || $t == edgeway || $t == ew-* ]] && echo "" || ratio "$EU" "$(m "$t" us)") | $(m "$t" p99) | $(m "$t" errs) | $(range ${V["$t load"]}) | $(range ${V["$t foreign"]}) |"
done
if [[ -n "${V[edgeway us]:-}" ]]; then
  goal() { awk -v a="$1" -v b="$2" -v k="$3" 'BEGIN { print (a <= b * k) ? "met" : "MISSED" }'; }
  NG=$(m nginx-proxy-2w us 2>/dev/null || echo 0); HA=$(m haproxy-1t us 2>/dev/null || echo 0)
  echo
  echo "Goals (issue 14): edgeway CPU/request <= nginx (2 workers): $(goal "$EU" "$NG" 1) ($EU vs $NG µs); \
<= 0.8 x HAProxy (nbthread 1): $(goal "$EU" "$HA" 0.8) ($EU vs $(awk -v h="$HA" 'BEGIN { printf "%.1f", 0.8 * h }') µs); \
requests/s >= HAProxy (nbthread 1): $(awk -v a="$(m edgeway rps)" -v b="$(m haproxy-1t rps 2>/dev/null || echo 0)" 'BEGIN { print (a >= b) ? "met" : "MISSED" }')."
fi
