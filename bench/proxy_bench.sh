#!/usr/bin/env bash
# Proxy benchmark (issue 3, point 13): in one run, against the same fast local upstream,
#   direct        wrk -> nginx
#   edgeway       wrk -> edgeway -> nginx   (two endpoints, primary and backup, probes every 1 s)
#   HAProxy       wrk -> haproxy -> nginx   (two servers, `backup`, httpchk every 1 s)
# measures: latency p50/p99 at one connection (and what the proxy adds to direct; once more
# with every process on CPU 0, which takes cross-CPU wake-ups out of the figure), requests
# per second at 32 connections, the upstream connections each proxy opened meanwhile, RSS of
# edgeway and HAProxy after the load; then, against a Node upstream that writes one SSE event
# every 20 ms with its own timestamp inside, the delay each chunk takes direct, through
# edgeway and through HAProxy. Prints the raw runs and a Markdown table (medians of ROUNDS
# rounds; targets alternate within a round). Each measured run starts when the machine is
# idle (QUIET_WAIT, default 90 s at most) and reports the CPU other processes used during it.
# Not a test: nothing in ctest runs it.
#
#   bench/proxy_bench.sh                         # about 7 minutes on an idle machine
#   ROUNDS=1 LAT_SECS=3 RPS_SECS=3 SSE_STREAMS=4 bench/proxy_bench.sh   # quick look
# Env: EDGEWAY, ROUNDS (3), LAT_SECS (10), RPS_SECS (10), CONNS (32), WRK_THREADS (2),
#      HAPROXY_THREADS (1, like edgeway's one thread), SSE_STREAMS (20 per target, 50 events
#      each), SSE_GAP_MS (20), QUIET_WAIT (90), KEEP=1 keeps the work dir.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ROUNDS=${ROUNDS:-3}
LAT_SECS=${LAT_SECS:-10}
RPS_SECS=${RPS_SECS:-10}
CONNS=${CONNS:-32}
WRK_THREADS=${WRK_THREADS:-2}
HAPROXY_THREADS=${HAPROXY_THREADS:-1}
SSE_STREAMS=${SSE_STREAMS:-20}
export SSE_GAP_MS=${SSE_GAP_MS:-20} SSE_EVENTS=${SSE_EVENTS:-50}
need nginx haproxy wrk node curl ss awk jq
[[ -x "$EDGEWAY" ]] || die "$EDGEWAY not built (cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release && cmake --build build-bench --target edgeway)"

make_work
P1=$(free_port); P2=$(free_port); PS=$(free_port)   # nginx primary, backup, stub_status
N1=$(free_port); N2=$(free_port)                    # Node SSE upstream primary, backup
E=$(free_port); H=$(free_port)                      # edgeway, haproxy (nginx upstreams)
E2=$(free_port); H2=$(free_port); H3=$(free_port)  # edgeway, haproxy, haproxy + http-no-delay (SSE)

edgeway_ini() {  # FILE LISTEN PRIMARY_PORT BACKUP_PORT
  cat >"$1" <<EOF
[agent]
listen = 127.0.0.1:$2
log_level = info
max_clients = 64

[probe]
kind = models
interval_ms = 1000
down_interval_ms = 1000
timeout_ms = 2000
fall = 3
rise = 2

[endpoint.primary]
url = http://127.0.0.1:$3/v1
api_key_env = BENCH_API_KEY
models = bench-model
priority = 10

[endpoint.backup]
url = http://127.0.0.1:$4/v1
api_key_env = BENCH_API_KEY
models = bench-model
priority = 5
EOF
}

haproxy_cfg() {  # FILE LISTEN PRIMARY_PORT BACKUP_PORT [EXTRA_DEFAULTS_LINE]
  cat >"$1" <<EOF
global
    nbthread $HAPROXY_THREADS
    maxconn 4096

defaults
    mode http
    option http-keep-alive
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 60s
    timeout check 2s
    ${5:-}

frontend api
    bind 127.0.0.1:$2
    default_backend upstreams

backend upstreams
    option httpchk GET /v1/models
    http-check expect status 200
    http-reuse always
    default-server inter 1s fall 3 rise 2
    server primary 127.0.0.1:$3 check
    server backup 127.0.0.1:$4 check backup
EOF
}

start_edgeway() {  # INI PORT -> EW_PID
  "$EDGEWAY" --check-config "$1" || die "edgeway rejected $1"
  "$EDGEWAY" -c "$1" 2>"$1.log" &
  EW_PID=$!
  PIDS=("$EW_PID" "${PIDS[@]}")
  wait_port "$2"
  for _ in $(seq 1 100); do
    [[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$2/readyz")" == 200 ]] && return 0
    sleep 0.1
  done
  die "edgeway on :$2 not ready"
}

start_haproxy() {  # CFG PORT -> HA_PID
  haproxy -c -q -f "$1" || die "haproxy rejected $1"
  haproxy -db -f "$1" >"$1.log" 2>&1 &
  HA_PID=$!
  PIDS=("$HA_PID" "${PIDS[@]}")
  wait_port "$2"
  sleep 1.5  # first health checks
}

check_answer() {  # NAME URL: one request must answer 200 with the upstream's JSON
  local out
  out=$(curl -s -D "$WORK/h.txt" -H 'Content-Type: application/json' -d "$REQ_JSON" "$2") || die "$1: curl failed"
  grep -q '"chatcmpl-bench0001"' <<<"$out" || die "$1: unexpected answer: $out"
  log "$1 answers 200 $(grep -i '^x-edgeway-endpoint' "$WORK/h.txt" | tr -d '\r' || true)"
}

nginx_accepts() { curl -s "http://127.0.0.1:$PS/" | awk 'NR == 3 {print $1}'; }

# The machine may be shared (compilers, tests): wait until it is idle before each measured run,
# and report how much CPU something other than this benchmark used during the run.
cpu_busy_total() { awk '/^cpu / {b = $2 + $3 + $4; print b, b + $5 + $6 + $7 + $8}' /proc/stat; }  # user+nice+system (irq/softirq time: not charged to any process)
bench_jiffies() {
  local s=0 p
  for p in $(bench_pids); do
    [[ -r /proc/$p/stat ]] && s=$((s + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)))
  done
  echo "$s"
}
ALL_CPUS="0-$(($(nproc) - 1))"
pin_all() {  # CPUS: move every process (and thread) of the benchmark to these CPUs
  local p
  for p in $(bench_pids); do taskset -a -p -c "$1" "$p" >/dev/null 2>&1 || true; done
}
tree_jiffies() {  # PID: CPU time (jiffies) of a process and its children
  local s=0 p
  for p in $1 $(pgrep -P "$1" 2>/dev/null); do
    [[ -r /proc/$p/stat ]] && s=$((s + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)))
  done
  echo "$s"
}
bench_pids() { local p; for p in "${PIDS[@]}"; do echo "$p"; pgrep -P "$p" 2>/dev/null || true; done; }
wait_quiet() {  # until the CPUs are >= 90% idle over one second, at most QUIET_WAIT seconds
  local b0 t0 b1 t1 waited=0
  while :; do
    read -r b0 t0 < <(cpu_busy_total); sleep 1; read -r b1 t1 < <(cpu_busy_total)
    (((b1 - b0) * 10 <= (t1 - t0))) && return 0
    ((waited++ >= ${QUIET_WAIT:-90})) && { log "machine still busy after ${QUIET_WAIT:-90}s; measuring anyway"; return 0; }
  done
}
run_wrk() {  # URL THREADS CONNS SECS -> RESULT line + foreign_cpu_pct=N (another process's CPU use, % of one CPU)
  local out b0 t0 b1 t1 o0 o1 w hz
  hz=$(getconf CLK_TCK)
  local p0=0 p1=0
  [[ -n "${TPID:-}" ]] && p0=$(tree_jiffies "$TPID")
  read -r b0 t0 < <(cpu_busy_total); o0=$(bench_jiffies)
  out=$(${WRK_PREFIX:-} bash -c 'wrk "$@"; rc=$?; read -r _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ cu cs _ </proc/$$/stat; echo "WRKCPU $((cu + cs))"; exit $rc' \
    _ -t"$2" -c"$3" -d"$4"s --timeout 5s -s "$BENCH_DIR/post.lua" "$1") || die "wrk failed: $out"
  read -r b1 t1 < <(cpu_busy_total); o1=$(bench_jiffies)
  [[ -n "${TPID:-}" ]] && p1=$(tree_jiffies "$TPID")
  w=$(awk '/^WRKCPU/ {print $2}' <<<"$out")
  grep '^RESULT' <<<"$out" | tr -d '\n' || die "no RESULT from wrk: $out"
  awk -v f="$((b1 - b0 - (o1 - o0) - w))" -v s="$4" -v hz="$hz" -v pj="$((p1 - p0))" -v n="$(field "$out" requests)" \
    'BEGIN { x = f * 100 / (s * hz); printf " foreign_cpu_pct=%d server_cpu_pct=%d server_cpu_us_per_req=%.1f\n", (x < 0) ? 0 : x, pj * 100 / (s * hz), (n > 0) ? pj * 1e6 / hz / n : 0 }'
}

field() { sed -n "s/.* $2=\([0-9.]*\).*/\1/p" <<<" $1"; }
maxv() { printf '%s\n' "$@" | sort -g | tail -1; }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

# ---- set up -------------------------------------------------------------------------------
export BENCH_API_KEY=sk-bench-not-a-real-key
nginx_conf "$WORK/nginx.conf" "$P1" "$P2" "$PS:status"
start_nginx "$WORK/nginx.conf"
NGINX_PID=${PIDS[-1]}
wait_port "$P1"; wait_port "$P2"; wait_port "$PS"

edgeway_ini "$WORK/edgeway.ini" "$E" "$P1" "$P2"
haproxy_cfg "$WORK/haproxy.cfg" "$H" "$P1" "$P2"
start_edgeway "$WORK/edgeway.ini" "$E"; EW_MAIN=$EW_PID
start_haproxy "$WORK/haproxy.cfg" "$H"; HA_MAIN=$HA_PID

declare -A URL=(
  [direct]="http://127.0.0.1:$P1/v1/chat/completions"
  [edgeway]="http://127.0.0.1:$E/v1/chat/completions"
  [haproxy]="http://127.0.0.1:$H/v1/chat/completions"
)
TARGETS=(direct edgeway haproxy)
declare -A SERVER_PID=([direct]=$NGINX_PID [edgeway]=$EW_MAIN [haproxy]=$HA_MAIN)  # whose CPU time is reported
for t in "${TARGETS[@]}"; do check_answer "$t" "${URL[$t]}"; done
RSS_IDLE_EW=$(rss_kb "$EW_MAIN"); RSS_IDLE_HA=$(rss_tree_kb "$HA_MAIN")

echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ)  $(machine_line)"
echo "# $(source_line)"
echo "# $(haproxy -v | head -1); $(nginx -v 2>&1); wrk $(wrk -v 2>&1 | awk 'NR==1 {print $2}'); node $(node -v)"
echo "# ROUNDS=$ROUNDS LAT_SECS=$LAT_SECS RPS_SECS=$RPS_SECS CONNS=$CONNS WRK_THREADS=$WRK_THREADS HAPROXY_THREADS=$HAPROXY_THREADS nginx workers=${NGINX_WORKERS:-1}"

# ---- load: latency at 1 connection, throughput at CONNS ---------------------------------------
declare -A V  # "target metric" -> values, one per round
for ((r = 1; r <= ROUNDS; r++)); do
  for t in "${TARGETS[@]}"; do
    TPID=${SERVER_PID[$t]}
    run_wrk "${URL[$t]}" "$WRK_THREADS" "$CONNS" 2 >/dev/null  # warm-up: pools, caches
    wait_quiet
    a0=$(nginx_accepts)
    lat=$(run_wrk "${URL[$t]}" 1 1 "$LAT_SECS")
    a1=$(nginx_accepts)
    V["$t conns1"]+=" $((a1 - a0 - 1))"
    echo "round $r $t c=1  $lat"
    # The same, with wrk, the proxy and nginx all on CPU 0: no cross-CPU wake-ups (costly in a
    # VM whose idle CPUs halt), so this isolates the work each hop does per request.
    pin_all 0
    wait_quiet
    pin=$(WRK_PREFIX="taskset -c 0" run_wrk "${URL[$t]}" 1 1 "$LAT_SECS")
    pin_all "$ALL_CPUS"
    echo "round $r $t c=1 pinned to CPU 0  $pin"
    V["$t pin50"]+=" $(field "$pin" p50_us)"
    V["$t pin99"]+=" $(field "$pin" p99_us)"
    wait_quiet
    a0=$(nginx_accepts)
    rps=$(run_wrk "${URL[$t]}" "$WRK_THREADS" "$CONNS" "$RPS_SECS")
    a1=$(nginx_accepts)
    echo "round $r $t c=$CONNS $rps"
    V["$t p50"]+=" $(field "$lat" p50_us)"
    V["$t p99"]+=" $(field "$lat" p99_us)"
    V["$t mean"]+=" $(field "$lat" mean_us)"
    V["$t rps"]+=" $(field "$rps" rps)"
    V["$t rps_p99"]+=" $(field "$rps" p99_us)"
    V["$t cpu"]+=" $(field "$rps" server_cpu_pct)"
    V["$t cpureq"]+=" $(field "$rps" server_cpu_us_per_req)"
    V["$t conns"]+=" $((a1 - a0 - 1))"  # minus the stub_status request itself
    errs=$(( $(field "$lat" status_errors) + $(field "$pin" status_errors) + $(field "$rps" status_errors) + $(field "$rps" connect_errors) + $(field "$rps" read_errors) + $(field "$rps" timeouts) ))
    V["$t errors"]+=" $errs"
    V["$t foreign"]+=" $(field "$lat" foreign_cpu_pct) $(field "$rps" foreign_cpu_pct)"
  done
done
RSS_EW=$(rss_kb "$EW_MAIN"); HWM_EW=$(hwm_kb "$EW_MAIN")
RSS_HA=$(rss_tree_kb "$HA_MAIN"); HWM_HA=$(hwm_kb "$HA_MAIN")
RSS_NGINX=$(rss_tree_kb "$NGINX_PID")
ANON_EW=$(status_kb "$EW_MAIN" RssAnon); FILE_EW=$(status_kb "$EW_MAIN" RssFile)
ANON_HA=$(status_kb "$HA_MAIN" RssAnon); FILE_HA=$(status_kb "$HA_MAIN" RssFile)
echo "RSS after load: edgeway VmRSS $RSS_EW kB (VmHWM $HWM_EW, idle before load $RSS_IDLE_EW); haproxy VmRSS $RSS_HA kB (VmHWM $HWM_HA, idle $RSS_IDLE_HA); nginx $RSS_NGINX kB"
echo "edgeway /status totals: $(curl -s "http://127.0.0.1:$E/status" | jq -c '.metrics // .totals // {}' 2>/dev/null)"

# ---- SSE: per-chunk delay ---------------------------------------------------------------------
node "$BENCH_DIR/sse_upstream.js" "$N1" "$N2" &
PIDS=("$!" "${PIDS[@]}")
wait_port "$N1"; wait_port "$N2"
edgeway_ini "$WORK/edgeway-sse.ini" "$E2" "$N1" "$N2"
# HAProxy twice: as configured above (its default aggregates with MSG_MORE, which holds small
# chunks in the kernel), and with `option http-no-delay`, its documented setting for
# interactive traffic. The table compares edgeway with the latter.
haproxy_cfg "$WORK/haproxy-sse.cfg" "$H2" "$N1" "$N2"
haproxy_cfg "$WORK/haproxy-sse-nodelay.cfg" "$H3" "$N1" "$N2" "option http-no-delay"
start_edgeway "$WORK/edgeway-sse.ini" "$E2"
start_haproxy "$WORK/haproxy-sse.cfg" "$H2"
start_haproxy "$WORK/haproxy-sse-nodelay.cfg" "$H3"
SSE_TARGETS=("direct=http://127.0.0.1:$N1/v1/chat/completions" "edgeway=http://127.0.0.1:$E2/v1/chat/completions"
  "haproxy=http://127.0.0.1:$H3/v1/chat/completions" "haproxy_default=http://127.0.0.1:$H2/v1/chat/completions")
node "$BENCH_DIR/sse_client.js" 2 "${SSE_TARGETS[@]}" >/dev/null || die "sse warm-up failed"
wait_quiet
SSE=$(node "$BENCH_DIR/sse_client.js" "$SSE_STREAMS" "${SSE_TARGETS[@]}") || die "sse client failed"
echo "$SSE" | sed 's/^/sse /'
sse() { jq -r "select(.name == \"$1\") | .$2" <<<"$SSE"; }

# ---- table ------------------------------------------------------------------------------------
m() { median ${V["$1 $2"]}; }
f1() { awk -v x="$1" 'BEGIN { printf "%.1f", x }'; }
f0() { awk -v x="$1" 'BEGIN { printf "%.0f", x }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "n/a"; else printf "%.2f", a / b }'; }
sub_() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", a - b }'; }

D50=$(m direct p50); D99=$(m direct p99)
E50=$(m edgeway p50); E99=$(m edgeway p99)
H50=$(m haproxy p50); H99=$(m haproxy p99)
EA50=$(sub_ "$E50" "$D50"); EA99=$(sub_ "$E99" "$D99")
HA50=$(sub_ "$H50" "$D50"); HA99=$(sub_ "$H99" "$D99")
DR=$(m direct rps); ER=$(m edgeway rps); HR=$(m haproxy rps)
SD50=$(sse direct rest_us.p50); SE50=$(sse edgeway rest_us.p50); SH50=$(sse haproxy rest_us.p50)
SD99=$(sse direct rest_us.p99); SE99=$(sse edgeway rest_us.p99); SH99=$(sse haproxy rest_us.p99)
SDM=$(sse direct rest_us.mean); SEM=$(sse edgeway rest_us.mean); SHM=$(sse haproxy rest_us.mean)
SX50=$(sse haproxy_default rest_us.p50); SX99=$(sse haproxy_default rest_us.p99); SXM=$(sse haproxy_default rest_us.mean)

cat <<EOF

| medians of $ROUNDS rounds | direct (nginx) | edgeway | HAProxy | edgeway / HAProxy |
|---|---:|---:|---:|---:|
| latency p50, 1 connection (µs) | $(f0 "$D50") | $(f0 "$E50") | $(f0 "$H50") | $(ratio "$E50" "$H50") |
| latency p99, 1 connection (µs) | $(f0 "$D99") | $(f0 "$E99") | $(f0 "$H99") | $(ratio "$E99" "$H99") |
| **added latency p50** (µs) | – | **$EA50** | **$HA50** | $(ratio "$EA50" "$HA50") |
| **added latency p99** (µs) | – | **$EA99** | **$HA99** | $(ratio "$EA99" "$HA99") |
| latency p50 / p99, 1 connection, all on CPU 0 (µs) | $(f0 "$(m direct pin50)") / $(f0 "$(m direct pin99)") | $(f0 "$(m edgeway pin50)") / $(f0 "$(m edgeway pin99)") | $(f0 "$(m haproxy pin50)") / $(f0 "$(m haproxy pin99)") | $(ratio "$(m edgeway pin50)" "$(m haproxy pin50)") / $(ratio "$(m edgeway pin99)" "$(m haproxy pin99)") |
| added latency p50 / p99, all on CPU 0 (µs) | – | $(sub_ "$(m edgeway pin50)" "$(m direct pin50)") / $(sub_ "$(m edgeway pin99)" "$(m direct pin99)") | $(sub_ "$(m haproxy pin50)" "$(m direct pin50)") / $(sub_ "$(m haproxy pin99)" "$(m direct pin99)") | $(ratio "$(sub_ "$(m edgeway pin50)" "$(m direct pin50)")" "$(sub_ "$(m haproxy pin50)" "$(m direct pin50)")") / $(ratio "$(sub_ "$(m edgeway pin99)" "$(m direct pin99)")" "$(sub_ "$(m haproxy pin99)" "$(m direct pin99)")") |
| **requests/s, $CONNS connections** | $(f0 "$DR") | **$(f0 "$ER")** | **$(f0 "$HR")** | $(ratio "$ER" "$HR") |
| CPU of the server process at $CONNS connections (% of one CPU; direct: nginx) | $(m direct cpu) | $(m edgeway cpu) | $(m haproxy cpu) | |
| CPU time per request at $CONNS connections (µs) | $(m direct cpureq) | $(m edgeway cpureq) | $(m haproxy cpureq) | $(ratio "$(m edgeway cpureq)" "$(m haproxy cpureq)") |
| latency p99 at $CONNS connections (µs) | $(f0 "$(m direct rps_p99)") | $(f0 "$(m edgeway rps_p99)") | $(f0 "$(m haproxy rps_p99)") | $(ratio "$(m edgeway rps_p99)" "$(m haproxy rps_p99)") |
| upstream connections opened during the 1-connection run (incl. both proxies' health checks, about 4 per second) | $(m direct conns1) (wrk's own) | $(m edgeway conns1) | $(m haproxy conns1) | |
| upstream connections opened during the $CONNS-connection run (incl. both proxies' health checks, about 4 per second) | $(m direct conns) (wrk's own) | $(m edgeway conns) | $(m haproxy conns) | |
| CPU used by other processes during the runs, max (% of one CPU) | $(maxv ${V["direct foreign"]}) | $(maxv ${V["edgeway foreign"]}) | $(maxv ${V["haproxy foreign"]}) | |
| errors (non-2xx, socket), all runs | $(m direct errors) | $(m edgeway errors) | $(m haproxy errors) | |
| **RSS after the load** (VmRSS kB) | nginx $RSS_NGINX | **$RSS_EW** | **$RSS_HA** | $(ratio "$RSS_EW" "$RSS_HA") |
| of which anonymous / file-backed (kB) | | $ANON_EW / $FILE_EW | $ANON_HA / $FILE_HA | |
| peak RSS (VmHWM kB) | | $HWM_EW | $HWM_HA | $(ratio "$HWM_EW" "$HWM_HA") |
| SSE chunk delay p50, upstream write -> client (µs); HAProxy with http-no-delay | $(f1 "$SD50") | $(f1 "$SE50") | $(f1 "$SH50") | |
| SSE chunk delay p99 (µs) | $(f1 "$SD99") | $(f1 "$SE99") | $(f1 "$SH99") | |
| **SSE delay added per chunk, p50 / p99 / mean** (µs) | – | **$(sub_ "$SE50" "$SD50") / $(sub_ "$SE99" "$SD99") / $(sub_ "$SEM" "$SDM")** | $(sub_ "$SH50" "$SD50") / $(sub_ "$SH99" "$SD99") / $(sub_ "$SHM" "$SDM") | |
| SSE added per chunk by HAProxy *without* http-no-delay, p50 / p99 / mean (µs) | | | $(sub_ "$SX50" "$SD50") / $(sub_ "$SX99" "$SD99") / $(sub_ "$SXM" "$SDM") | |

Targets (issue 3): added p50 and p99 <= HAProxy's: $(awk -v a="$EA50" -v b="$HA50" -v c="$EA99" -v d="$HA99" 'BEGIN { print (a <= b && c <= d) ? "met" : "MISSED" }'); \
requests/s >= HAProxy's: $(awk -v a="$ER" -v b="$HR" 'BEGIN { print (a >= b) ? "met" : "MISSED" }'); \
RSS < 4096 kB: $( ((RSS_EW < 4096)) && echo met || echo MISSED ); \
SSE added < 1 ms: $(awk -v a="$SE99" -v b="$SD99" 'BEGIN { print (a - b < 1000) ? "met (p99)" : "MISSED (p99)" }').
SSE: $SSE_STREAMS streams x $SSE_EVENTS events per target, ${SSE_GAP_MS} ms apart; delays exclude each stream's first event (in the raw "sse" lines: first_us).
EOF
