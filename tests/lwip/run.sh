#!/usr/bin/env bash
# edgeway over lwIP's own TCP/IP stack, end to end (run as root).
#
# Builds edgeway with -DEW_PLATFORM=lwip (into build-lwip, reused; or takes EW_LWIP_BIN),
# makes a network namespace with a tap device (10.77.0.1/24 on the kernel side), starts a
# fake OpenAI-compatible upstream on 10.77.0.1 inside it, and runs the lwIP edgeway on that
# tap (PRECONFIGURED_TAPIF=tap0) with lwIP's address 10.77.0.2, listening on
# 10.77.0.2:8088. From the kernel side it then checks /status (endpoint HEALTHY, probes_ok
# >= 1), a chat completion through edgeway (200 from the upstream), and a large one (a
# 128 KiB request body arrives intact upstream, a 256 KiB answer comes back).
#
# How it knows the traffic went through lwIP's stack and not the kernel's:
#   - 10.77.0.2 is on no kernel interface in the namespace (asserted with `ip addr`), and
#     no kernel socket in the namespace listens on :8088 (asserted with `ss`): whatever
#     answers there is lwIP, behind the tap;
#   - the kernel learnt 10.77.0.2 by ARP on tap0, with a MAC that is not tap0's own (lwIP's);
#   - the upstream logs the TCP peer of every request: all are 10.77.0.2;
#   - once edgeway stops, 10.77.0.2:8088 no longer answers;
#   - with tcpdump installed (and EW_LWIP_CAPTURE not 0), a capture on tap0 shows both TCP
#     conversations, lwIP's SYNs with MSS 536.
# With mosquitto installed, fleet telemetry too: a broker on 10.77.0.1 (kernel side), edgeway's
# MQTT session over lwIP, mosquitto_sub seeing the retained status and, after SIGTERM, the
# offline will.
# Everything stays in the namespace this script makes (ew-lwip-<pid>), deleted on exit.
#
# Exit: 0 pass, 1 fail, 77 skipped (not root, or no ip/node/curl/tun).
set -u

SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD="${EW_LWIP_BUILD_DIR:-$SRC/build-lwip}"
NS="ew-lwip-$$"
LWIP_ADDR=10.77.0.2
KERNEL_ADDR=10.77.0.1
AGENT_PORT=8088
UP_PORT=18080
MQTT_PORT=18830
WORK="$(mktemp -d /tmp/ew-lwip-test.XXXXXX)"
PIDS=()
NS_MADE=0

say() { printf '[lwip-test] %s\n' "$*"; }
fail() {
    say "FAIL: $*"
    for f in edgeway.log upstream.out requests.log mosquitto.log mqtt.out; do
        [ -s "$WORK/$f" ] && { say "---- $f"; tail -n 40 "$WORK/$f"; }
    done
    exit 1
}
pass() { say "ok: $*"; }
skip() { say "SKIP: $*"; exit 77; }

cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do
        for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
        kill -9 "$p" 2>/dev/null
    done
    [ "$NS_MADE" = 1 ] && ip netns del "$NS" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

X() { ip netns exec "$NS" "$@"; }
# Background processes: `exec` so that $! is the process itself (timeout, then the program),
# not a subshell running the function.
XBG() { exec ip netns exec "$NS" "$@"; }

# Waits up to $1 seconds for the command after it to succeed.
wait_for() {
    local secs=$1
    shift
    local end=$((SECONDS + secs))
    while ! "$@" >/dev/null 2>&1; do
        [ $SECONDS -ge $end ] && return 1
        sleep 0.2
    done
}

# ---- prerequisites -----------------------------------------------------------------------
[ "$(id -u)" = 0 ] || skip "needs root (network namespace and tap device)"
for t in ip node curl; do command -v "$t" >/dev/null || skip "needs $t"; done
[ -c /dev/net/tun ] || skip "no /dev/net/tun"

# ---- build -------------------------------------------------------------------------------
BIN="${EW_LWIP_BIN:-}"
if [ -z "$BIN" ]; then
    if ! grep -q '^EW_PLATFORM:STRING=lwip$' "$BUILD/CMakeCache.txt" 2>/dev/null; then
        say "configuring $BUILD (-DEW_PLATFORM=lwip)"
        timeout 300 cmake -S "$SRC" -B "$BUILD" -DEW_PLATFORM=lwip -DEW_BUILD_TESTS=OFF \
            >"$WORK/configure.log" 2>&1 || { cat "$WORK/configure.log"; fail "cmake configure"; }
    fi
    say "building edgeway in $BUILD"
    timeout 900 cmake --build "$BUILD" --target edgeway -j "$(nproc)" >"$WORK/build.log" 2>&1 ||
        { tail -n 40 "$WORK/build.log"; fail "build"; }
    BIN="$BUILD/edgeway"
fi
[ -x "$BIN" ] || fail "no edgeway binary at $BIN"
pass "binary $BIN"

# ---- namespace with a tap device ---------------------------------------------------------
ip netns add "$NS" || skip "ip netns add failed (no network namespaces here)"
NS_MADE=1
X ip link set lo up
X ip tuntap add dev tap0 mode tap || fail "ip tuntap add"
X ip addr add "$KERNEL_ADDR/24" dev tap0
X ip link set tap0 up
TAP_MAC="$(X cat /sys/class/net/tap0/address)"

# Before anything runs: the kernel owns 10.77.0.1 only.
X ip -4 addr show | grep -q "inet $KERNEL_ADDR/" || fail "kernel side lacks $KERNEL_ADDR"
if X ip addr show | grep -q "inet $LWIP_ADDR/"; then fail "kernel has $LWIP_ADDR"; fi
pass "namespace $NS: tap0 $KERNEL_ADDR/24 (mac $TAP_MAC); no kernel interface has $LWIP_ADDR"

if [ "${EW_LWIP_CAPTURE:-1}" = 1 ] && command -v tcpdump >/dev/null; then
    XBG timeout 60 tcpdump -i tap0 -n -U -w "$WORK/tap0.pcap" tcp >"$WORK/tcpdump.log" 2>&1 &
    PIDS+=($!)
    wait_for 5 grep -q "listening on" "$WORK/tcpdump.log" || say "tcpdump did not start; no capture"
fi

# ---- the fake upstream on the kernel side -------------------------------------------------
XBG timeout 60 node "$SRC/tests/lwip/upstream.js" "$KERNEL_ADDR" "$UP_PORT" "$WORK/requests.log" \
    >"$WORK/upstream.out" 2>&1 &
PIDS+=($!)
wait_for 10 grep -q "^listening" "$WORK/upstream.out" || fail "upstream did not start"
pass "upstream listening on $KERNEL_ADDR:$UP_PORT (kernel stack)"

# ---- an MQTT broker and its observer on the kernel side (when mosquitto is installed) --------
MQTT=0
MOSQUITTO="$(command -v mosquitto || ls /usr/sbin/mosquitto 2>/dev/null)"
if [ -n "$MOSQUITTO" ] && command -v mosquitto_sub >/dev/null; then
    printf 'user root\npersistence false\nallow_anonymous true\nlistener %s %s\n' "$MQTT_PORT" "$KERNEL_ADDR" \
        >"$WORK/mosquitto.conf"
    XBG timeout 60 "$MOSQUITTO" -c "$WORK/mosquitto.conf" >"$WORK/mosquitto.log" 2>&1 &
    PIDS+=($!)
    wait_for 10 X bash -c "exec 3<>/dev/tcp/$KERNEL_ADDR/$MQTT_PORT" || fail "mosquitto did not start"
    XBG timeout 60 mosquitto_sub -h "$KERNEL_ADDR" -p "$MQTT_PORT" -t 'edgeway/lwip-dev/status' -v -q 1 \
        >"$WORK/mqtt.out" 2>&1 &
    PIDS+=($!)
    MQTT=1
    pass "mosquitto on $KERNEL_ADDR:$MQTT_PORT (kernel stack), mosquitto_sub watching edgeway/lwip-dev/status"
else
    say "no mosquitto: the telemetry step is skipped"
fi

# ---- edgeway on lwIP ----------------------------------------------------------------------
cat >"$WORK/edgeway.ini" <<EOF
[agent]
listen = $LWIP_ADDR:$AGENT_PORT
log_level = debug
state_file = $WORK/edgeway.state
[probe]
kind = models
interval_ms = 300
down_interval_ms = 300
timeout_ms = 2000
fall = 2
rise = 1
[endpoint.up]
url = http://$KERNEL_ADDR:$UP_PORT/v1
api_key_env = EW_LWIP_TEST_KEY
models = test-model, test-model-big
EOF
if [ "$MQTT" = 1 ]; then
    printf '[telemetry]\nmqtt_url = mqtt://%s:%s\ndevice_id = lwip-dev\ninterval_ms = 1000\n' "$KERNEL_ADDR" \
        "$MQTT_PORT" >>"$WORK/edgeway.ini"
fi
XBG timeout 60 env PRECONFIGURED_TAPIF=tap0 EW_LWIP_ADDR=$LWIP_ADDR EW_LWIP_NETMASK=255.255.255.0 \
    EW_LWIP_GW=$KERNEL_ADDR EW_LWIP_TEST_KEY=sk-lwip-test "$BIN" -c "$WORK/edgeway.ini" \
    >"$WORK/edgeway.log" 2>&1 &
EW_PID=$!
PIDS+=("$EW_PID")
wait_for 10 grep -q "listening on $LWIP_ADDR:$AGENT_PORT" "$WORK/edgeway.log" || fail "edgeway did not start"
grep -q "lwip: stack up on tap0" "$WORK/edgeway.log" || fail "no lwIP start-up line"
pass "edgeway up: $(grep -m1 'lwip: stack up' "$WORK/edgeway.log")"

# The kernel has still no 10.77.0.2, and no kernel socket listens on :8088.
if X ip addr show | grep -q "inet $LWIP_ADDR/"; then fail "kernel has $LWIP_ADDR"; fi
if X ss -Hltn "sport = :$AGENT_PORT" | grep -q .; then fail "a kernel socket listens on :$AGENT_PORT"; fi
pass "kernel: no $LWIP_ADDR address, no listener on :$AGENT_PORT"

# ---- /status: endpoint HEALTHY with a successful probe -------------------------------------
status_ok() {
    X curl -sS --max-time 3 "http://$LWIP_ADDR:$AGENT_PORT/status" >"$WORK/status.json" || return 1
    node -e '
        const s = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
        const e = s.endpoints.find((x) => x.name === "up");
        process.exit(e && e.state === "HEALTHY" && e.probes_ok >= 1 ? 0 : 1);' "$WORK/status.json"
}
wait_for 15 status_ok || { cat "$WORK/status.json" 2>/dev/null; echo; fail "/status never showed up HEALTHY with probes_ok >= 1"; }
pass "GET http://$LWIP_ADDR:$AGENT_PORT/status: $(node -e '
    const e = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).endpoints[0];
    console.log(`${e.name} ${e.state} probes_ok=${e.probes_ok}`)' "$WORK/status.json")"

# ---- fleet telemetry over lwIP: the retained status arrives at the broker ------------------------
if [ "$MQTT" = 1 ]; then
    wait_for 15 grep -q '^edgeway/lwip-dev/status {"device":"lwip-dev","online":true,"verdict":"serving"' "$WORK/mqtt.out" ||
        fail "mosquitto_sub never saw edgeway/lwip-dev/status online and serving"
    grep -q "telemetry: connected to $KERNEL_ADDR:$MQTT_PORT" "$WORK/edgeway.log" || fail "no telemetry connect line"
    pass "telemetry over lwIP: mosquitto_sub got $(grep -c '"online":true' "$WORK/mqtt.out") status document(s) from lwip-dev"
fi

# ---- a chat completion through edgeway -----------------------------------------------------
CODE=$(X curl -sS --max-time 10 -o "$WORK/chat.json" -w '%{http_code}' \
    -H 'Content-Type: application/json' \
    -d '{"model":"test-model","messages":[{"role":"user","content":"hello"}]}' \
    "http://$LWIP_ADDR:$AGENT_PORT/v1/chat/completions") || fail "chat request failed"
[ "$CODE" = 200 ] || { cat "$WORK/chat.json"; echo; fail "chat: HTTP $CODE"; }
grep -q "Hello over lwIP from $LWIP_ADDR" "$WORK/chat.json" || { cat "$WORK/chat.json"; fail "chat: unexpected body"; }
pass "POST /v1/chat/completions: 200, $(node -e '
    console.log(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).choices[0].message.content)' "$WORK/chat.json")"

# ---- a large exchange: many segments each way, partial writes, the MTU cap -------------------
node -e 'process.stdout.write(JSON.stringify({ model: "test-model-big",
    messages: [{ role: "user", content: "z".repeat(131072) }] }))' >"$WORK/big.json"
BIG_SHA="$(sha256sum "$WORK/big.json" | cut -d" " -f1)"
CODE=$(X curl -sS --max-time 20 -o "$WORK/big-reply.json" -w '%{http_code}' \
    -H 'Content-Type: application/json' --data-binary @"$WORK/big.json" \
    "http://$LWIP_ADDR:$AGENT_PORT/v1/chat/completions") || fail "large chat request failed"
[ "$CODE" = 200 ] || { head -c 400 "$WORK/big-reply.json"; echo; fail "large chat: HTTP $CODE"; }
node -e '
    const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    const n = r.choices[0].message.content.length;
    console.log(`[lwip-test] large chat: upstream got ${r.received_bytes} bytes, answered ${n} characters`);
    process.exit(r.received_sha256 === process.argv[2] && n === 262144 ? 0 : 1);' \
    "$WORK/big-reply.json" "$BIG_SHA" || fail "large chat: body changed on the way"
pass "large chat: $(stat -c %s "$WORK/big.json")-byte request arrived intact (sha256), 256 KiB answer relayed"

# ---- what the upstream saw ------------------------------------------------------------------
node -e '
    const lines = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map(JSON.parse);
    const probes = lines.filter((r) => r.method === "GET" && r.path === "/v1/models").length;
    const chats = lines.filter((r) => r.method === "POST" && r.path === "/v1/chat/completions").length;
    const peers = [...new Set(lines.map((r) => r.remote))];
    console.log(`[lwip-test] upstream saw ${lines.length} requests (${probes} probes, ${chats} chat) from ${peers.join(", ")}`);
    process.exit(probes >= 1 && chats === 2 && peers.length === 1 && peers[0] === process.argv[2] ? 0 : 1);' \
    "$WORK/requests.log" "$LWIP_ADDR" || fail "upstream requests did not all come from $LWIP_ADDR"
pass "every upstream request came from $LWIP_ADDR"

# The kernel reached 10.77.0.2 through ARP on tap0: the answer came from another MAC (lwIP's).
NEIGH="$(X ip neigh show "$LWIP_ADDR" dev tap0)"
PEER_MAC="$(awk '{for (i = 1; i < NF; i++) if ($i == "lladdr") print $(i + 1)}' <<<"$NEIGH")"
[ -n "$PEER_MAC" ] || fail "no neighbour entry for $LWIP_ADDR on tap0 ($NEIGH)"
[ "$PEER_MAC" != "$TAP_MAC" ] || fail "$LWIP_ADDR resolves to tap0's own MAC"
pass "kernel neighbour: $LWIP_ADDR is at $PEER_MAC on tap0 (tap0 itself is $TAP_MAC)"

# ---- stop edgeway: SIGTERM exits 0, and 10.77.0.2 goes silent --------------------------------
kill -TERM "$EW_PID"
for _ in $(seq 1 50); do kill -0 "$EW_PID" 2>/dev/null || break; sleep 0.2; done
kill -0 "$EW_PID" 2>/dev/null && fail "edgeway did not exit on SIGTERM"
wait "$EW_PID"
RC=$?
[ "$RC" = 0 ] || fail "edgeway exit status $RC"
if X curl -sS --max-time 3 -o /dev/null "http://$LWIP_ADDR:$AGENT_PORT/status" 2>/dev/null; then
    fail "$LWIP_ADDR:$AGENT_PORT still answers without edgeway"
fi
pass "edgeway stopped (exit 0); $LWIP_ADDR:$AGENT_PORT no longer answers"
# The state file went through the port's file functions (the host half's, on Linux).
grep -qE '^E up url=[0-9a-f]{8} ej=0 cl=0 lat=[0-9]+$' "$WORK/edgeway.state" 2>/dev/null &&
    tail -n 1 "$WORK/edgeway.state" | grep -qE '^crc=[0-9a-f]{8}$' ||
    fail "no state file with the endpoint's latency: $(cat "$WORK/edgeway.state" 2>&1)"
pass "state file written: $(grep '^E up' "$WORK/edgeway.state")"
if [ "$MQTT" = 1 ]; then
    wait_for 15 grep -q '^edgeway/lwip-dev/status {"device":"lwip-dev","online":false,"verdict":"offline"}' "$WORK/mqtt.out" ||
        fail "no offline will after edgeway stopped"
    pass "telemetry over lwIP: the offline will arrived after the stop"
fi

# ---- the capture, when tcpdump is here -------------------------------------------------------
if [ -s "$WORK/tap0.pcap" ]; then
    sleep 0.5  # -U writes per packet; let the last ones land
    X tcpdump -n -r "$WORK/tap0.pcap" >"$WORK/tap0.txt" 2>/dev/null
    IN=$(grep -c "$KERNEL_ADDR\.[0-9]* > $LWIP_ADDR\.$AGENT_PORT:" "$WORK/tap0.txt")
    OUT=$(grep -c "$LWIP_ADDR\.[0-9]* > $KERNEL_ADDR\.$UP_PORT:" "$WORK/tap0.txt")
    [ "$IN" -gt 0 ] && [ "$OUT" -gt 0 ] || { head -n 20 "$WORK/tap0.txt"; fail "capture on tap0 lacks the conversations"; }
    pass "capture on tap0: $IN packets client->$LWIP_ADDR:$AGENT_PORT, $OUT packets $LWIP_ADDR->upstream:$UP_PORT"
    SYN="$(grep -m1 "$LWIP_ADDR\.[0-9]* > $KERNEL_ADDR\.$UP_PORT: Flags \[S\]" "$WORK/tap0.txt")"
    say "  $SYN"
    grep -q "mss 536" <<<"$SYN" || fail "lwIP's SYN does not carry MSS 536 (the port's MTU cap)"
fi

say "PASS"
exit 0
