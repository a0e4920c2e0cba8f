#!/usr/bin/env bash
# What a device pays per request over TLS (issue 11, item 5). Not a test: nothing in ctest runs it.
# One HTTPS upstream (nginx, 1 worker, test certificate, keep-alive, TLS 1.3 and session
# tickets) with one server block per proxy, so that each proxy's handshakes are counted on
# their own. In front of it, each plain HTTP on 127.0.0.1 and verifying the certificate:
#   direct       wrk -> nginx over TLS (the baseline for "added latency")
#   ew-2.28      edgeway, Debian's Mbed TLS 2.28 (dynamic; TLS 1.2)
#   ew-3.6       edgeway, Mbed TLS 3.6.6 default config (TLS 1.3)
#   ew-lean      edgeway, the lean static build (-DEW_MBEDTLS_SOURCE, TLS 1.3)
#   ew-lean-idle32  the same with EW_CAPS=EW_CAP_IDLE_TLS_PER_ENDPOINT=32 (the default was 8
#                then: with 16 connections, every release beyond 8 parked closed one, and the
#                next request opened a new TLS connection; it is 16 now)
#   ew-lean-base another lean binary (EW_LEAN_BASE), e.g. from before a change
#   haproxy      HAProxy (OpenSSL), nbthread 1, `ssl verify required`, httpchk over TLS every 1 s
#   nginx-proxy  nginx as a proxy, 1 worker, upstream keepalive, proxy_ssl_session_reuse
# edgeway probes (kind = models) every 1 s like HAProxy's check; each probe is a new TLS
# connection, so probes are where resumption shows.
# Measured in the same run, each target in turn: latency p50/p99 at 1 connection (added =
# minus direct), requests/s at CONNS (16) connections, CPU per proxied request (utime+stime
# of the proxy's processes / requests, in the 16-connection run; and utime alone, the part that
# is the proxy's own code rather than the kernel's loopback TCP), TLS handshakes the proxy
# made to the upstream in the whole run (full and resumed: nginx's $ssl_session_reused on
# each connection's first request), RSS after the load.
#
#   bench/tls_bench.sh                        # about 3 minutes
#   LAT_SECS=3 RPS_SECS=3 bench/tls_bench.sh  # quick look
# Env: EW_DYN (build/edgeway), EW_36 (build-mbed36/edgeway), EW_LEAN (build-lean/edgeway),
#      EW_LEAN32 (build-lean-idle32/edgeway), EW_LEAN_BASE (none: another lean binary to compare,
#      e.g. one from before a change);
#      a missing binary is skipped. LAT_SECS (8), RPS_SECS (8), CONNS (16), WRK_THREADS (2),
#      QUIET_WAIT (30), KEEP=1 keeps the work dir.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

LAT_SECS=${LAT_SECS:-8}
RPS_SECS=${RPS_SECS:-8}
CONNS=${CONNS:-16}
WRK_THREADS=${WRK_THREADS:-2}
need nginx haproxy wrk curl awk openssl
declare -A BIN=([ew-2.28]=${EW_DYN:-$ROOT/build/edgeway} [ew-3.6]=${EW_36:-$ROOT/build-mbed36/edgeway}
                [ew-lean]=${EW_LEAN:-$ROOT/build-lean/edgeway}
                [ew-lean-idle32]=${EW_LEAN32:-$ROOT/build-lean-idle32/edgeway}
                [ew-lean-base]=${EW_LEAN_BASE:-/nonexistent})
TARGETS=(direct)
for t in ew-2.28 ew-3.6 ew-lean ew-lean-idle32 ew-lean-base; do
  if [[ -x "${BIN[$t]}" ]]; then TARGETS+=("$t"); else log "skip $t: no ${BIN[$t]}"; fi
done
TARGETS+=(haproxy nginx-proxy)

export BENCH_API_KEY=sk-bench
EDGEWAY=${BIN[ew-lean]}
make_work
make_certs "$WORK/certs"
mkdir -p "$WORK/nginx-body"
declare -A UP LISTEN PID
for t in "${TARGETS[@]}"; do UP[$t]=$(free_port); LISTEN[$t]=$(free_port); done
LISTEN[direct]=${UP[direct]}

# ---- the upstream: one TLS server block per target, each with its own handshake log -------
user_line=""
[[ $(id -u) == 0 ]] && user_line="user root;"
{
  cat <<EOF
$user_line
worker_processes 1;
pid $WORK/up.pid;
error_log $WORK/up-error.log warn;
events { worker_connections 1024; }
http {
    client_body_temp_path $WORK/nginx-body;
    keepalive_requests 100000000;
    keepalive_timeout 120s;
    default_type application/json;
    # A connection's first request says how its handshake went: r = resumed, . = full.
    log_format hs '\$ssl_session_reused \$ssl_protocol';
    ssl_certificate $WORK/certs/server.pem;
    ssl_certificate_key $WORK/certs/server.key;
    ssl_session_cache shared:up:1m;
    ssl_protocols TLSv1.2 TLSv1.3;  # nginx 1.22's default has no TLS 1.3
EOF
  for t in "${TARGETS[@]}"; do
    cat <<EOF
    server {
        listen 127.0.0.1:${UP[$t]} ssl;
        set \$first 0;
        if (\$connection_requests = 1) { set \$first 1; }
        access_log $WORK/hs-$t.log hs buffer=4k flush=1s if=\$first;
        location = /v1/models { return 200 '$MODELS_JSON'; }
        location = /v1/chat/completions { return 200 '$CHAT_JSON'; }
    }
EOF
  done
  echo "}"
} >"$WORK/up.conf"
nginx -t -q -p "$WORK" -c "$WORK/up.conf" -e "$WORK/up-error.log" || die "nginx -t: $(cat "$WORK/up-error.log")"
nginx -p "$WORK" -c "$WORK/up.conf" -e "$WORK/up-error.log" -g 'daemon off;' &
PIDS+=($!)
for t in "${TARGETS[@]}"; do wait_port "${UP[$t]}"; done

# ---- the proxies ---------------------------------------------------------------------------
start_edgeway() {  # TARGET
  local t=$1 ini="$WORK/$1.ini"
  cat >"$ini" <<EOF
[agent]
listen = 127.0.0.1:${LISTEN[$t]}
log_level = warn
max_clients = 64

[probe]
kind = models
interval_ms = 1000
down_interval_ms = 1000
timeout_ms = 2000

[endpoint.up]
url = https://localhost:${UP[$t]}/v1
api_key_env = BENCH_API_KEY
models = bench-model
ca_file = $WORK/certs/ca.pem
EOF
  "${BIN[$t]}" --check-config "$ini" || die "edgeway rejected $ini"
  BENCH_API_KEY=sk-bench "${BIN[$t]}" -c "$ini" 2>"$ini.log" &
  PID[$t]=$!
  PIDS=("${PID[$t]}" "${PIDS[@]}")
}

start_haproxy() {
  local t=haproxy cfg="$WORK/haproxy.cfg"
  cat >"$cfg" <<EOF
global
    nbthread 1
    maxconn 4096
    ssl-server-verify required

defaults
    mode http
    option http-keep-alive
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 60s
    timeout check 2s

frontend api
    bind 127.0.0.1:${LISTEN[$t]}
    default_backend upstreams

backend upstreams
    option httpchk GET /v1/models
    http-check expect status 200
    http-reuse always
    server up 127.0.0.1:${UP[$t]} ssl verify required ca-file $WORK/certs/ca.pem sni str(localhost) verifyhost localhost check inter 1s fall 3 rise 2
EOF
  haproxy -c -q -f "$cfg" || die "haproxy rejected $cfg"
  haproxy -db -f "$cfg" >"$cfg.log" 2>&1 &
  PID[$t]=$!
  PIDS=("${PID[$t]}" "${PIDS[@]}")
}

start_nginx_proxy() {
  local t=nginx-proxy conf="$WORK/proxy.conf"
  mkdir -p "$WORK/proxy-body"
  cat >"$conf" <<EOF
$user_line
worker_processes 1;
pid $WORK/proxy.pid;
error_log $WORK/proxy-error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $WORK/proxy-body;
    keepalive_requests 100000000;
    upstream up { server 127.0.0.1:${UP[$t]}; keepalive 32; }
    server {
        listen 127.0.0.1:${LISTEN[$t]};
        location / {
            proxy_pass https://up;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host localhost;
            proxy_ssl_server_name on;
            proxy_ssl_name localhost;
            proxy_ssl_verify on;
            proxy_ssl_trusted_certificate $WORK/certs/ca.pem;
            proxy_ssl_session_reuse on;
        }
    }
}
EOF
  nginx -t -q -p "$WORK" -c "$conf" -e "$WORK/proxy-error.log" || die "nginx -t (proxy): $(cat "$WORK/proxy-error.log")"
  nginx -p "$WORK" -c "$conf" -e "$WORK/proxy-error.log" -g 'daemon off;' &
  PID[$t]=$!
  PIDS=("${PID[$t]}" "${PIDS[@]}")
}

for t in "${TARGETS[@]}"; do
  case $t in
    direct) ;;
    ew-*) start_edgeway "$t" ;;
    haproxy) start_haproxy ;;
    nginx-proxy) start_nginx_proxy ;;
  esac
done
for t in "${TARGETS[@]}"; do wait_port "${LISTEN[$t]}"; done
sleep 2  # first probes and health checks

# ---- load ------------------------------------------------------------------------------------
tree_jiffies() {  # PID [user]: utime+stime (or utime alone) of a process and its children
  local s=0 p f='$14 + $15'
  [[ ${2:-} == user ]] && f='$14'
  for p in $1 $(pgrep -P "$1" 2>/dev/null); do
    [[ -r /proc/$p/stat ]] && s=$((s + $(awk "{print $f}" "/proc/$p/stat" 2>/dev/null || echo 0)))
  done
  echo "$s"
}
field() { sed -n "s/.*[ ]$2=\\([^ ]*\\).*/\\1/p" <<<" $1"; }
url_of() { [[ $1 == direct ]] && echo "https://localhost:${UP[direct]}/v1/chat/completions" || echo "http://127.0.0.1:${LISTEN[$1]}/v1/chat/completions"; }
run_wrk() {  # URL THREADS CONNS SECS
  local out
  out=$(timeout $(($4 + 30)) wrk -t"$2" -c"$3" -d"$4"s --timeout 5s -s "$BENCH_DIR/post.lua" "$1") || die "wrk failed: $out"
  grep '^RESULT' <<<"$out" || die "no RESULT from wrk: $out"
}

# The machine may be shared: wait (at most QUIET_WAIT s, default 30) until the CPUs are >= 90% idle
# over one second before each target, and say how busy they were.
cpu_busy_total() { awk '/^cpu / {b = $2 + $3 + $4; print b, b + $5 + $6 + $7 + $8}' /proc/stat; }
wait_quiet() {
  local b0 t0 b1 t1 waited=0
  while :; do
    read -r b0 t0 < <(cpu_busy_total); sleep 1; read -r b1 t1 < <(cpu_busy_total)
    (((b1 - b0) * 10 <= (t1 - t0))) && return 0
    ((waited++ >= ${QUIET_WAIT:-30})) && { log "machine busy ($(((b1 - b0) * 100 / (t1 - t0)))% CPU) after ${QUIET_WAIT:-30}s; measuring anyway"; return 0; }
  done
}
hs_count() { [[ -f "$WORK/hs-$1.log" ]] && wc -l <"$WORK/hs-$1.log" || echo 0; }
declare -A LAT RPS CPU USR RSS HS1 HS16
log "$(machine_line)"
log "$(source_line)"
for t in "${TARGETS[@]}"; do
  u=$(url_of "$t")
  wait_quiet
  run_wrk "$u" 1 2 1 >/dev/null  # warm-up: pools, sessions
  sleep 1.2; n0=$(hs_count "$t")
  LAT[$t]=$(run_wrk "$u" 1 1 "$LAT_SECS")
  sleep 1.2; n1=$(hs_count "$t")
  j0=0; u0=0; [[ $t != direct ]] && { j0=$(tree_jiffies "${PID[$t]}"); u0=$(tree_jiffies "${PID[$t]}" user); }
  RPS[$t]=$(run_wrk "$u" "$WRK_THREADS" "$CONNS" "$RPS_SECS")
  if [[ $t != direct ]]; then
    j1=$(tree_jiffies "${PID[$t]}"); u1=$(tree_jiffies "${PID[$t]}" user)
    CPU[$t]=$(awk -v j=$((j1 - j0)) -v hz="$(getconf CLK_TCK)" -v n="$(field "${RPS[$t]}" requests)" 'BEGIN { printf "%.1f", j * 1e6 / hz / n }')
    USR[$t]=$(awk -v j=$((u1 - u0)) -v hz="$(getconf CLK_TCK)" -v n="$(field "${RPS[$t]}" requests)" 'BEGIN { printf "%.1f", j * 1e6 / hz / n }')
    RSS[$t]=$(rss_tree_kb "${PID[$t]}")
  fi
  sleep 1.2; n2=$(hs_count "$t")
  HS1[$t]=$((n1 - n0)); HS16[$t]=$((n2 - n1))
  log "$t: 1 conn ${LAT[$t]}"
  log "$t: $CONNS conns ${RPS[$t]} cpu_us_per_req=${CPU[$t]:--} user_us_per_req=${USR[$t]:--} rss_kb=${RSS[$t]:--} handshakes: ${HS1[$t]} at 1 conn, ${HS16[$t]} at $CONNS"
done

# ---- table -----------------------------------------------------------------------------------
d50=$(field "${LAT[direct]}" p50_us); d99=$(field "${LAT[direct]}" p99_us)
hs() { [[ -f "$WORK/hs-$1.log" ]] || { echo "0 0 -"; return; }
       awk '{ if ($1 == "r") r++; else f++; p[$2]++ } END { s = ""; for (k in p) s = s k; printf "%d %d %s\n", f, r, (s == "") ? "-" : s }' "$WORK/hs-$1.log"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0 && a != "" && a != "-") printf "%.2f", a / b; else printf "-" }'; }
h50=$(( $(field "${LAT[haproxy]}" p50_us) - d50 )); h99=$(( $(field "${LAT[haproxy]}" p99_us) - d99 ))
hrps=$(field "${RPS[haproxy]}" rps)
echo
echo "# $(haproxy -v | head -1); $(nginx -v 2>&1); wrk $(wrk -v 2>&1 | awk 'NR==1 {print $2}'); $LAT_SECS s at 1 connection, $RPS_SECS s at $CONNS"
echo "| | latency p50 / p99, 1 conn (µs) | added p50 / p99 (µs) | added vs HAProxy | req/s, $CONNS conns | vs HAProxy | CPU per request (µs) | vs HAProxy | of it user-space (µs) | vs HAProxy | TLS handshakes full / resumed, whole run (protocol) | handshakes in the 1-conn / $CONNS-conn runs | RSS after load (kB) | vs HAProxy |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|"
for t in "${TARGETS[@]}"; do
  p50=$(field "${LAT[$t]}" p50_us); p99=$(field "${LAT[$t]}" p99_us); rps=$(field "${RPS[$t]}" rps)
  read -r full res proto < <(hs "$t")
  if [[ $t == direct ]]; then
    echo "| direct (wrk over TLS) | $p50 / $p99 | – | | $rps | | | | | | (wrk) | | | |"
    continue
  fi
  a50=$((p50 - d50)); a99=$((p99 - d99))
  echo "| $t | $p50 / $p99 | $a50 / $a99 | $(ratio "$a50" "$h50") / $(ratio "$a99" "$h99") | $rps | $(ratio "$rps" "$hrps") | ${CPU[$t]} | $(ratio "${CPU[$t]}" "${CPU[haproxy]}") | ${USR[$t]} | $(ratio "${USR[$t]}" "${USR[haproxy]}") | $full / $res ($proto) | ${HS1[$t]} / ${HS16[$t]} | ${RSS[$t]} | $(ratio "${RSS[$t]}" "${RSS[haproxy]}") |"
done
for t in "${TARGETS[@]}"; do
  e=$(field "${RPS[$t]}" status_errors); c=$(field "${RPS[$t]}" connect_errors); r=$(field "${RPS[$t]}" read_errors)
  [[ "$e$c$r" == 000 ]] || log "warning: $t had errors: status $e connect $c read $r"
done
