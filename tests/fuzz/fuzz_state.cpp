// libFuzzer entry: state_decode() (core/health_state.h) on arbitrary bytes. Most random
// inputs stop at the checksum, so half the runs seal the input first (a correct crc line
// appended), to reach the line parser. Aborts when an invariant breaks: a refused file
// changed health; a restored deadline lies beyond the cap; a file accepted once, written
// again and read again does not give the same health.
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/health_state.h"
#include "core/strbuf.h"

using namespace ew;

namespace {

Config g_cfg;
Health g_h[EW_CAP_ENDPOINTS];
Health g_again[EW_CAP_ENDPOINTS];
char g_text[EW_CAP_STATE_BYTES + 64];
char g_out[EW_CAP_STATE_BYTES];
constexpr uint64_t kNow = 1000;
constexpr uint64_t kWall = 1764650000000ULL;

void setup() {
    static bool done = false;
    if (done) return;
    done = true;
    const char* names[] = {"primary", "backup", "e2"};
    for (uint32_t i = 0; i < 3; i++) {
        EndpointConfig& e = g_cfg.endpoints[g_cfg.endpoint_count++];
        copy_str(e.name, sizeof e.name, names[i]);
        copy_str(e.url, sizeof e.url, i == 0 ? "http://10.0.0.1:8080/v1" : "https://api.example.com/v1");
        copy_str(e.api_key, sizeof e.api_key, "sk-one");
        copy_str(e.models[e.model_count++], EW_CAP_MODEL_NAME, "gpt-4o");
        copy_str(e.models[e.model_count++], EW_CAP_MODEL_NAME, "m");
    }
}

void check_bounds(const Health* h) {
    for (uint32_t i = 0; i < g_cfg.endpoint_count; i++) {
        if (h[i].rate_limited_until_ms > kNow + kStateMaxRemainingMs) abort();
        if (h[i].key_exhausted_until_ms > kNow + kStateMaxRemainingMs) abort();
        if (h[i].state == HealthState::down && h[i].down_until_ms > kNow + kStateMaxRemainingMs) abort();
        for (uint64_t m : h[i].model_limited_until_ms)
            if (m > kNow + kStateMaxRemainingMs) abort();
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    setup();
    if (size == 0 || size > EW_CAP_STATE_BYTES) return 0;
    const bool seal = data[0] & 1;
    size_t n = size - 1;
    memcpy(g_text, data + 1, n);
    if (seal) {
        StrBuf crc(g_text + n, sizeof g_text - n);
        crc.appendf("crc=%08x\n", static_cast<unsigned>(crc32(g_text, n)));
        n += crc.len;
    }
    HealthParams p;
    for (Health& h : g_h) health_init(&h);
    StateLoadResult r;
    const uint64_t wall = (data[0] & 2) ? kWall : 0;
    StateLoad s = state_decode(g_text, n, g_cfg, g_h, p, kNow, wall, &r);
    if (s != StateLoad::ok) {
        for (const Health& h : g_h)
            if (h.state != HealthState::healthy || h.rate_limited_until_ms || h.down_until_ms || h.key_bad ||
                h.key_exhausted_until_ms ||
                h.ejections || h.cooldown_level || h.has_latency || h.last_error[0])
                abort();
        for (const Health& h : g_h)
            for (uint64_t m : h.model_limited_until_ms)
                if (m) abort();
        if (r.why[0] == '\0') abort();
        return 0;
    }
    check_bounds(g_h);
    // What was accepted reads back the same once written again (same clocks: nothing elapsed).
    StrBuf out(g_out, sizeof g_out);
    if (!state_encode(g_cfg, g_h, kNow, 0, &out)) abort();
    for (Health& h : g_again) health_init(&h);
    StateLoadResult r2;
    if (state_decode(out.data, out.len, g_cfg, g_again, p, kNow, 0, &r2) != StateLoad::ok) abort();
    for (uint32_t i = 0; i < g_cfg.endpoint_count; i++) {
        const Health& a = g_h[i];
        const Health& b = g_again[i];
        if (a.rate_limited_until_ms != b.rate_limited_until_ms || a.state != b.state || a.key_bad != b.key_bad ||
            a.ejections != b.ejections || a.cooldown_level != b.cooldown_level ||
            a.key_exhausted_until_ms != b.key_exhausted_until_ms)
            abort();
        if (a.state == HealthState::down && a.down_until_ms != b.down_until_ms) abort();
        for (size_t m = 0; m < EW_CAP_MODELS_PER_ENDPOINT; m++)
            if (a.model_limited_until_ms[m] != b.model_limited_until_ms[m] ||
                a.model_unavailable_until_ms[m] != b.model_unavailable_until_ms[m])
                abort();
    }
    return 0;
}
