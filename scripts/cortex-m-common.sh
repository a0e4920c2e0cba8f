# Shared by scripts/cortex-m-size.sh and scripts/cortex-m-test.sh (sourced, not run).
# The core for a bare-metal Cortex-M4: toolchains/cortex-m4.cmake, newlib-nano, MinSizeRel.

# Two builds: the core with its default caps (the ones the Linux agent uses), and with
# smaller caps, the way a microcontroller port would build it (core/caps.h: "A port shrinks
# them by defining the macro"). Struct layouts follow the caps, so each is its own build.
EW_CM4_BUILD=${EW_CM4_BUILD:-build-cm4}
EW_CM4_SMALL_BUILD=${EW_CM4_SMALL_BUILD:-build-cm4-small}
EW_CM4_SMALL_CAPS="EW_CAP_ENDPOINTS=4;EW_CAP_MODELS_PER_ENDPOINT=4;EW_CAP_FALLBACK_RULES=4;EW_CAP_FALLBACK_CHAIN=2"
EW_CM4_SMALL_CAPS+=";EW_CAP_MODEL_NAME=48;EW_CAP_URL=128;EW_CAP_HOST=64;EW_CAP_PATH=64;EW_CAP_SECRET=128"
EW_CM4_SMALL_CAPS+=";EW_CAP_HISTORY=32;EW_CAP_ERROR_TEXT=64;EW_CAP_SSE_EVENT=3584;EW_CAP_REQUEST_SERIES=16"
EW_CM4_SMALL_CAPS+=";EW_STATE_FILE=0"
# A device profile (core/caps.h, "parts a bare-metal device profile may leave out"): GET / is
# a short page (the verdict, links to /status and /metrics), recovery reasons in /status are
# short codes, file errors are worded without newlib's strerror table.
EW_CM4_SMALL_CAPS+=";EW_STATUS_PAGE=0;EW_RECOVERY_TEXT=0;EW_ERRNO_TEXT=0"
# (Without the full page the minute ring it charts is one cell.) Static RAM: one
# [context_fallback] rule; one dns_servers entry (the lwIP port resolves no names); 32-bit
# latency-histogram buckets (they wrap after 2^32 answers in one bucket). EW_CAP_SSE_EVENT
# 3584: a chat-completions chunk (one delta, usage, even 20 top_logprobs) is under 1.5 KB.
EW_CM4_SMALL_CAPS+=";EW_CAP_CONTEXT_FALLBACK_RULES=1;EW_CAP_DNS_SERVERS=1;EW_HISTOGRAM_BUCKET_BITS=32"
EW_CM4_SMALL_CAPS+=";EW_CAP_STATUS_MINUTES=15;EW_CAP_ENDPOINT_HEADERS=128;EW_CAP_CORS_ORIGINS=2;EW_CAP_ORIGIN=64;EW_CAP_HISTOGRAM_PAIRS=4"
EW_CM4_SMALL_CAPS+=";EW_CAP_HEDGE_SAMPLES=16"  # hedge `auto`: 16 recent delivery times per endpoint and kind (256 B, not 1 KB)

# Installing what is missing is the release helper's (ew_apt_install).
# shellcheck source=scripts/debian-release.sh
. scripts/debian-release.sh

# cm4_build DIR CAPS TARGET...: configures (once) and builds the targets.
cm4_build() {
  local dir=$1 caps=$2
  shift 2
  mkdir -p "$dir"
  cmake -S . -B "$dir" -DCMAKE_TOOLCHAIN_FILE=toolchains/cortex-m4.cmake -DCMAKE_BUILD_TYPE=MinSizeRel \
        -DEW_CORE_ONLY=ON -DEW_TARGET_SELFTEST=ON "-DEW_CAPS=$caps" >"$dir/configure.log" 2>&1 \
    || { cat "$dir/configure.log"; return 1; }
  cmake --build "$dir" -j"$(nproc)" --target "$@"
}
