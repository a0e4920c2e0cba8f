#!/usr/bin/env bash
# What Mbed TLS costs a device, per build, in one run (issue 11, item 4). Not a test.
#   size     stripped edgeway binary, and for dynamic builds + the Mbed TLS shared
#            libraries it loads (what the device must carry); amd64 and aarch64
#   idle RSS edgeway with one https endpoint probed (kind = tls) every second, after 5 s:
#            with the endpoint's ca_file (the test CA) and with the system CA bundle
#   heap     per live TLS connection (bench/tls_heap: 16 connections at once to nginx,
#            handshake and ticket done, glibc heap in use with tcache off, divided by 16)
#            against TLS 1.3 and TLS 1.2-only nginx servers
# Builds (folders in the source tree; missing ones are skipped with a note):
#   BUILD_DYN   (build)         Debian's Mbed TLS 2.28, dynamic
#   BUILD_36    (build-mbed36)  Mbed TLS 3.6.6 default config, static (-DCMAKE_PREFIX_PATH=...)
#   BUILD_LEAN  (build-lean)    -DEW_MBEDTLS_SOURCE=<3.6.6 source>: platform/mbedtls_config.h,
#                               fully static (EW_STATIC, the default with EW_MBEDTLS_SOURCE)
#   BUILD_LEAN_SHLIBC (build-lean-shlibc)  the same with -DEW_STATIC=OFF: glibc and c-ares shared
#   A64_DYN (build-a64-dyn), A64_LEAN (build-a64-lean): aarch64 cross builds, sizes only
# Each needs `cmake --build DIR --target edgeway tls_heap` (aarch64: edgeway).
#   bench/tls_footprint.sh            # about 1 minute
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need nginx node openssl curl strip
A64_STRIP=${A64_STRIP:-aarch64-linux-gnu-strip}

declare -A DIRS=(
  [dyn]=${BUILD_DYN:-$ROOT/build} [mbed36]=${BUILD_36:-$ROOT/build-mbed36} [lean]=${BUILD_LEAN:-$ROOT/build-lean}
  [lean-shlibc]=${BUILD_LEAN_SHLIBC:-$ROOT/build-lean-shlibc}
  [a64-dyn]=${A64_DYN:-$ROOT/build-a64-dyn} [a64-lean]=${A64_LEAN:-$ROOT/build-a64-lean})
ORDER=(dyn mbed36 lean-shlibc lean)

make_work
make_certs "$WORK/certs"
T13=$(free_port); T12=$(free_port)
nginx_conf "$WORK/nginx.conf" "$T13:ssl" "$T12:ssl12"
start_nginx "$WORK/nginx.conf"
wait_port "$T13"; wait_port "$T12"

kib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1024 }'; }

stripped_size() {  # FILE [STRIP] -> bytes
  local out="$WORK/stripped.$$"
  "${2:-strip}" -o "$out" "$1"
  stat -c %s "$out"
  rm -f "$out"
}

# The Mbed TLS shared libraries a dynamic binary loads (amd64: ldd; aarch64: the same
# sonames from the multiarch folder), stripped sizes summed.
mbed_libs_size() {  # BINARY ARCH
  local total=0 lib sonames
  sonames=$(objdump -p "$1" | awk '$1 == "NEEDED" && $2 ~ /^libmbed/ {print $2}')
  for lib in $sonames; do
    local path
    if [[ $2 == amd64 ]]; then path=$(ldd "$1" | awk -v l="$lib" '$1 == l {print $3}')
    else path=/usr/lib/aarch64-linux-gnu/$lib; fi
    [[ -e "$path" ]] || continue
    total=$((total + $(stripped_size "$(readlink -f "$path")" "$([[ $2 == amd64 ]] && echo strip || echo "$A64_STRIP")")))
  done
  echo "$total"
}

idle_rss() {  # BINARY CA_FILE -> kB after 5 s of probes
  local bin=$1 ca=$2 port ini pid
  port=$(free_port)
  ini="$WORK/idle-$port.ini"
  cat >"$ini" <<EOF
[agent]
listen = 127.0.0.1:$port
log_level = warn

[probe]
kind = tls
interval_ms = 1000
timeout_ms = 2000

[endpoint.up]
url = https://localhost:$T13/v1
api_key_env = BENCH_API_KEY
models = bench-model
ca_file = $ca
EOF
  BENCH_API_KEY=sk-bench "$bin" -c "$ini" 2>"$ini.log" &
  pid=$!
  PIDS=("$pid" "${PIDS[@]}")
  wait_port "$port"
  sleep 5
  # With the system bundle the test certificate is not trusted: those probes fail, by design.
  [[ -z "$ca" ]] || curl -s "http://127.0.0.1:$port/status" | grep -q '"probes_ok":[1-9]' ||
    log "warning: no ok probe for $bin ($ca)"
  rss_kb "$pid"
  # Where it goes (kB: Rss, Private_Dirty per mapping), on stderr beside the figures.
  [[ -z "$ca" ]] || smaps_by_mapping "$pid" | sed "s|^|  $(basename "$(dirname "$bin")") |" >&2
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

heap_line() {  # TLS_HEAP PORT -> per_conn_bytes, or "-"
  GLIBC_TUNABLES=glibc.malloc.tcache_count=0 "$1" localhost "$2" "$WORK/certs/ca.pem" 16 2>&1 |
    awk '/per_conn_bytes/ { for (i = 1; i <= NF; i++) if ($i ~ /^(version|per_conn_bytes|kept_after_round1|growth_round2)=/) printf "%s ", $i; print "" }'
}

declare -A SIZE LIBS RSS_CA RSS_SYS H13 H12
log "$(machine_line)"
for b in "${ORDER[@]}" a64-dyn a64-lean; do
  d=${DIRS[$b]}
  if [[ ! -x "$d/edgeway" ]]; then log "skip $b: no $d/edgeway"; continue; fi
  arch=amd64; st=strip
  [[ $b == a64-* ]] && { arch=aarch64; st=$A64_STRIP; }
  SIZE[$b]=$(stripped_size "$d/edgeway" "$st")
  LIBS[$b]=$(mbed_libs_size "$d/edgeway" "$arch")
  log "$b: stripped $(kib "${SIZE[$b]}") KiB, + Mbed TLS shared libraries $(kib "${LIBS[$b]}") KiB"
  [[ $arch == amd64 ]] || continue
  RSS_CA[$b]=$(idle_rss "$d/edgeway" "$WORK/certs/ca.pem")
  RSS_SYS[$b]=$(idle_rss "$d/edgeway" "")
  log "$b: idle RSS ${RSS_CA[$b]} kB (test CA file), ${RSS_SYS[$b]} kB (system CA bundle)"
  if [[ -x "$d/tls_heap" ]]; then
    H13[$b]=$(heap_line "$d/tls_heap" "$T13"); H12[$b]=$(heap_line "$d/tls_heap" "$T12")
    log "$b: heap per connection: TLS 1.3 server: ${H13[$b]}; TLS 1.2 server: ${H12[$b]}"
  fi
done

field() { sed -n "s/.*$1=\\([^ ]*\\).*/\\1/p" <<<"$2"; }
echo
echo "| build | stripped binary | binary + Mbed TLS .so | idle RSS, ca_file | idle RSS, system bundle | heap/conn vs TLS 1.3 server | heap/conn vs TLS 1.2 server |"
echo "|---|---|---|---|---|---|---|"
for b in "${ORDER[@]}" a64-dyn a64-lean; do
  [[ -n "${SIZE[$b]:-}" ]] || continue
  total=$((SIZE[$b] + LIBS[$b]))
  h13="-"; h12="-"
  [[ -n "${H13[$b]:-}" ]] && h13="$(kib "$(field per_conn_bytes "${H13[$b]}")") KiB ($(field version "${H13[$b]}"))"
  [[ -n "${H12[$b]:-}" ]] && h12="$(kib "$(field per_conn_bytes "${H12[$b]}")") KiB ($(field version "${H12[$b]}"))"
  rca="-"; rsys="-"
  [[ -n "${RSS_CA[$b]:-}" ]] && rca="$(kib $((RSS_CA[$b] * 1024))) KiB"
  [[ -n "${RSS_SYS[$b]:-}" ]] && rsys="$(kib $((RSS_SYS[$b] * 1024))) KiB"
  echo "| $b | $(kib "${SIZE[$b]}") KiB | $(kib "$total") KiB | $rca | $rsys | $h13 | $h12 |"
done
