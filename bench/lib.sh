# Shared helpers for the bench/ scripts (sourced, not run). Everything binds 127.0.0.1.
# shellcheck shell=bash

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
EDGEWAY=${EDGEWAY:-$ROOT/build-bench/edgeway}

# The answer every fake upstream gives to POST /v1/chat/completions: a typical small,
# non-streaming chat completion (about 450 bytes).
CHAT_JSON='{"id":"chatcmpl-bench0001","object":"chat.completion","created":1735689600,"model":"bench-model","choices":[{"index":0,"message":{"role":"assistant","content":"Hello! This is a fixed answer from the benchmark upstream, long enough to look like a short reply."},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":21,"total_tokens":33},"system_fingerprint":"fp_bench"}'
MODELS_JSON='{"object":"list","data":[{"id":"bench-model","object":"model","created":1735689600,"owned_by":"bench"}]}'
# The request body the clients send.
REQ_JSON='{"model":"bench-model","messages":[{"role":"user","content":"Say hello."}],"max_tokens":32}'

PIDS=()
WORK=""

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

need() {
  local t
  for t in "$@"; do command -v "$t" >/dev/null 2>&1 || die "$t not found (Debian: apt-get install -y nginx haproxy wrk nodejs openssl curl)"; done
}

# cleanup: stop what this script started (by pid), remove the work dir unless KEEP=1.
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do
    for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null || true
  done
  if [[ -n "$WORK" && -d "$WORK" ]]; then
    if [[ "${KEEP:-0}" == 1 ]]; then log "kept $WORK"; else rm -rf "$WORK"; fi
  fi
}

make_work() {
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/edgeway-bench.XXXXXX")
  trap cleanup EXIT
  trap 'exit 130' INT TERM
}

# A free TCP port on 127.0.0.1: random below the kernel's ephemeral range (a proxy opening
# thousands of upstream connections would otherwise take a port before its server binds it),
# not in use, not handed out before (remembered in $WORK/ports: callers use $(free_port),
# a subshell, so a shell variable would not survive).
free_port() {
  local p lo hi
  read -r lo _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || lo=32768
  hi=$((lo - 1)); lo=$((hi > 20000 ? 15000 : 2000))
  touch "$WORK/ports"
  for _ in $(seq 1 200); do
    p=$((lo + RANDOM % (hi - lo)))
    grep -qx "$p" "$WORK/ports" && continue
    if ! ss -Htan "( sport = :$p )" 2>/dev/null | grep -q .; then
      echo "$p" >>"$WORK/ports"
      echo "$p"
      return 0
    fi
  done
  die "no free port found"
}

wait_port() {  # wait_port PORT [seconds]
  local port=$1 limit=${2:-10} i
  for ((i = 0; i < limit * 20; i++)); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  die "nothing listening on 127.0.0.1:$port after ${limit}s"
}

# make_certs DIR: a test CA and a localhost server certificate (EC P-256) signed by it.
make_certs() {
  local d=$1
  mkdir -p "$d"
  (
    cd "$d"
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca.key 2>/dev/null
    openssl req -x509 -new -sha256 -key ca.key -out ca.pem -days 30 -subj "/CN=edgeway bench CA" \
      -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out server.key 2>/dev/null
    openssl req -new -sha256 -key server.key -out server.csr -subj "/CN=localhost" 2>/dev/null
    printf '%s\n' 'basicConstraints=critical,CA:FALSE' 'keyUsage=critical,digitalSignature' \
      'extendedKeyUsage=serverAuth' 'subjectAltName=DNS:localhost,IP:127.0.0.1' >server.ext
    openssl x509 -req -sha256 -in server.csr -CA ca.pem -CAkey ca.key -set_serial 0x5eed \
      -days 30 -extfile server.ext -out server.pem 2>/dev/null
    chmod 600 ca.key server.key
  ) || die "openssl failed"
}

# nginx_conf FILE SERVERS... : write an nginx configuration with one server block per
# argument "PORT" (http), "PORT:ssl" (https, needs $WORK/certs), "PORT:ssl12" (https, TLS 1.2 only)
# or "PORT:status" (stub_status). Each block answers
# GET /v1/models and POST /v1/chat/completions with fixed JSON, keep-alive without limit.
nginx_conf() {
  local file=$1; shift
  local user_line=""
  [[ $(id -u) == 0 ]] && user_line="user root;"
  {
    cat <<EOF
$user_line
worker_processes ${NGINX_WORKERS:-1};
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
    keepalive_requests 100000000;
    keepalive_timeout 120s;
    default_type application/json;
EOF
    local s port ssl
    for s in "$@"; do
      port=${s%%:*}
      if [[ "$s" == *:status ]]; then
        echo "    server { listen 127.0.0.1:$port; location / { stub_status; } }"
        continue
      fi
      ssl=""
      [[ "$s" == *:ssl || "$s" == *:ssl12 ]] && ssl=" ssl"
      cat <<EOF
    server {
        listen 127.0.0.1:$port$ssl;
EOF
      if [[ -n "$ssl" ]]; then
        cat <<EOF
        ssl_certificate $WORK/certs/server.pem;
        ssl_certificate_key $WORK/certs/server.key;
EOF
        if [[ "$s" == *:ssl12 ]]; then echo "        ssl_protocols TLSv1.2;"
        else echo "        ssl_protocols TLSv1.2 TLSv1.3;  # nginx 1.22's default has no TLS 1.3"; fi
      fi
      cat <<EOF
        location = /v1/models { return 200 '$MODELS_JSON'; }
        location = /v1/chat/completions { return 200 '$CHAT_JSON'; }
        location / { return 404 '{"error":{"message":"not found","type":"invalid_request_error","param":null,"code":null}}'; }
    }
EOF
    done
    echo "}"
  } >"$file"
}

start_nginx() {  # start_nginx CONF
  mkdir -p "$WORK/nginx-body"
  nginx -t -q -p "$WORK" -c "$1" -e "$WORK/nginx-error.log" || die "nginx -t failed: $(cat "$WORK/nginx-error.log")"
  nginx -p "$WORK" -c "$1" -e "$WORK/nginx-error.log" -g 'daemon off;' &
  PIDS+=($!)
}

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
status_kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
hwm_kb() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

# Sum of VmRSS of a process and its children (nginx and HAProxy with workers).
rss_tree_kb() {
  local total=0 p
  for p in $1 $(pgrep -P "$1" 2>/dev/null); do total=$((total + $(rss_kb "$p"))); done
  echo "$total"
}

# RSS per mapping (file name, [heap], [stack], anon), largest first; Rss and Private_Dirty.
smaps_by_mapping() {
  awk '
    /^[0-9a-f]+-[0-9a-f]+ / { name = (NF >= 6) ? $6 : "[anon]"; sub(/.*\//, "", name); next }
    /^Rss:/ { rss[name] += $2; tot += $2; next }
    /^Private_Dirty:/ { pd[name] += $2; tpd += $2; next }
    END {
      for (n in rss) if (rss[n] > 0) printf "%7d %7d  %s\n", rss[n], pd[n], n
      printf "%7d %7d  %s\n", tot, tpd, "TOTAL (Rss, Private_Dirty)"
    }' "/proc/$1/smaps" 2>/dev/null | sort -rn
}

source_line() {
  local rev dirty=""
  rev=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
  [[ -n "$(git -C "$ROOT" status --porcelain -- src platform 2>/dev/null)" ]] && dirty="+uncommitted src changes"
  echo "git HEAD at run time $rev$dirty; binary $EDGEWAY built $(date -u -r "$EDGEWAY" +%Y-%m-%dT%H:%MZ 2>/dev/null)"
}

machine_line() {
  printf 'nproc %s; %s; %s; %s\n' "$(nproc)" \
    "$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)" \
    "$(awk '/^MemTotal/ {printf "%.1f GB RAM", $2/1048576}' /proc/meminfo)" \
    "$(uname -sr)"
}
