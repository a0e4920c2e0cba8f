// What a firmware that uses the whole core pays, for scripts/cortex-m-size.sh. Never run:
// linked (newlib-nano, nosys: no semihosting, no stdio) only to be measured and to show in
// its map which libc members the core pulls in.
//
// main() calls every public entry point of src/core with inputs the compiler cannot see,
// so --gc-sections keeps all of it; the state a device keeps for the core (Config, one
// Health per endpoint, an SSE parser, Metrics, a response buffer) is static, so it is
// counted in .bss. Its size follows the EW_CAP_* caps the core was built with.
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "core/health.h"
#include "core/health_state.h"
#include "core/json_scan.h"
#include "core/metrics.h"
#include "core/status_page.h"
#include "core/openai.h"
#include "core/request_check.h"
#include "core/retry.h"
#include "core/router.h"
#include "core/sse.h"
#include "core/strbuf.h"
#include "core/upstream_error.h"

using namespace ew;

// Set by nobody: opaque to the optimiser.
const char* volatile g_text;
volatile size_t g_len;
volatile uint64_t g_now;
volatile uint32_t g_word;
volatile uintptr_t g_sink;

namespace {

Config g_cfg;
Health g_health[EW_CAP_ENDPOINTS];
HealthParams g_params;
SseParser g_sse;
Metrics g_metrics;
char g_out[2048];
Candidate g_cand[EW_ROUTER_CANDIDATES_CAP];

const char* env(const char*, void*) { return g_text; }
int file(const char*, char*, size_t, size_t* len, bool* private_ok, void*) {
    *len = 0;
    *private_ok = true;
    return static_cast<int>(g_word);
}
void warn(const char* line, void*) { g_sink = reinterpret_cast<uintptr_t>(line); }
void on_event(const SseEvent& ev, void*) { g_sink = ev.data_len + (openai_event_is_error(ev) ? 1 : 0); }

}  // namespace

int main() {
    const char* t = g_text;
    const size_t n = g_len;
    const uint64_t now = g_now;
    const uint32_t w = g_word;
    uintptr_t acc = 0;

    ConfigSources src = {env, file, nullptr};
    ConfigDiag err;
    acc += static_cast<uintptr_t>(config_parse("f", t, n, src, &g_cfg, &err, warn, nullptr));
    acc += reinterpret_cast<uintptr_t>(g_cfg.fallback_for(t)) + static_cast<uintptr_t>(g_cfg.endpoint_index(t));
    acc += reinterpret_cast<uintptr_t>(to_string(g_cfg.agent.log_level)) +
           reinterpret_cast<uintptr_t>(to_string(g_cfg.probe.kind));

    Outcome o;
    o.kind = static_cast<ResultKind>(w % 6);
    o.latency_ms = w;
    health_init(&g_health[w % EW_CAP_ENDPOINTS]);
    health_record(&g_health[0], g_params, o, now, w & 1);
    health_rate_limit(&g_health[0], static_cast<int>(w % 3) - 1, now + w, now);
    health_key_bad(&g_health[0], 401, now);
    health_tick(&g_health[0], g_params, now);
    acc += health_serve_after_ms(g_health[0], 0, now) + static_cast<uintptr_t>(health_success_ratio(g_health[0]));
    acc += reinterpret_cast<uintptr_t>(health_status_class(g_health[0], g_params));

    Observation ob;
    ob.kind = o.kind;
    ob.http_status = static_cast<uint16_t>(w);
    ob.from_probe = (w & 2) != 0;
    acc += static_cast<uintptr_t>(health_observe(&g_health[1], g_params, ob, now));

    {
        StrBuf st(g_out, sizeof g_out);
        acc += state_encode(g_cfg, g_health, now, w, &st) ? 1 : 0;
        StateLoadResult lr;
        acc += static_cast<uintptr_t>(state_decode(t, n, g_cfg, g_health, g_params, now, w, &lr));
        acc += reinterpret_cast<uintptr_t>(to_string(lr.status));
        StateFacts fa, fb;
        state_facts_of(g_health[0], now, &fa);
        state_facts_of(g_health[1], now, &fb);
        acc += state_facts_changed(fa, fb) ? 1 : 0;
    }

    acc += router_candidates(g_cfg, g_health, t, now, g_cand, EW_ROUTER_CANDIDATES_CAP);
    acc += router_candidate_usable(g_health[0], g_cand[0], now) ? 1 : 0;
    const char* ctx_models[] = {t};
    acc += router_candidates_among(g_cfg, g_health, ctx_models, 1, now, g_cand, EW_ROUTER_CANDIDATES_CAP);
    acc += reinterpret_cast<uintptr_t>(router_context_rule(g_cfg, t));
    acc += static_cast<uintptr_t>(upstream_error_meaning(static_cast<uint16_t>(w), t, n)) +
           (error_body_wanted(static_cast<uint16_t>(w)) ? 1 : 0);
    health_key_exhausted(&g_health[0], now + w, now);
    acc += health_key_exhausted_now(g_health[0], now) ? 1 : 0;

    const char* why = nullptr;
    acc += static_cast<uintptr_t>(model_name_check(t, n)) + (upstream_path_check(t, n, &why) ? 1 : 0);
    acc += reinterpret_cast<uintptr_t>(why) + reinterpret_cast<uintptr_t>(to_string(model_name_check(t, 1)));
    acc += router_soonest_serve_ms(g_cfg, g_health, t, now) + (router_model_known(g_cfg, t) ? 1 : 0);

    acc += static_cast<uintptr_t>(classify_attempt(o.kind, static_cast<uint16_t>(w)));
    acc += backoff_with_retry_after(w, 200, 2000, w, now, now) + (attempt_allowed(w, 4, now, now) ? 1 : 0);
    uint64_t delay = 0;
    acc += parse_retry_after(t, n, t, n, &delay) + parse_retry_after_ms(t, n, &delay) + delay;

    sse_init(&g_sse);
    acc += static_cast<uintptr_t>(sse_feed(&g_sse, t, n, on_event, nullptr)) + (sse_has_partial(&g_sse) ? 1 : 0);

    JsonError je;
    JsonSpan span;
    acc += static_cast<uintptr_t>(json_validate(t, n, &je)) + static_cast<uintptr_t>(json_find_key(t, n, "model", &span));
    acc += static_cast<uintptr_t>(json_span_type(t, span)) + (json_span_string(t, span, g_out, sizeof g_out) ? 1 : 0);
    const char* path[] = {"usage", "total_tokens"};
    uint64_t tokens = 0;
    acc += json_find_path_uint(t, n, path, 2, &tokens) + tokens;
    size_t lit_len = 0;
    BodySegments seg;
    if (json_string_literal(t, n, g_out, sizeof g_out, &lit_len)) json_rewrite_model(t, n, span, g_out, lit_len, &seg);
    acc += seg.total();
    OpenAIUsage usage;
    acc += openai_find_usage(t, n, &usage) + usage.total_tokens;
    bool b = false;
    acc += json_span_bool(t, span, &b) + json_span_uint(t, span, &tokens) + json_span_string_equals(t, span, "m");
    acc += body_segments_copy(seg, g_out, sizeof g_out, &lit_len);
    int64_t unix_s = 0;
    acc += http_date_to_unix(t, n, &unix_s) + static_cast<uintptr_t>(unix_s) + backoff_ms(w, 1, 2, w);
    acc += reinterpret_cast<uintptr_t>(to_string(static_cast<JsonStatus>(w))) +
           reinterpret_cast<uintptr_t>(to_string(static_cast<AttemptVerdict>(w))) +
           reinterpret_cast<uintptr_t>(to_string(static_cast<SseStatus>(w))) +
           reinterpret_cast<uintptr_t>(to_string(static_cast<HealthState>(w))) +
           reinterpret_cast<uintptr_t>(to_string(static_cast<Strategy>(w)));

    StrBuf out(g_out, sizeof g_out);
    openai_error_body(&out, t, openai_error_type(static_cast<int>(w)), nullptr, "x");
    openai_chat_probe_body(&out, t);
    openai_stream_error_event(&out, t);
    openai_models_body(&out, path, 2);
    g_metrics.count_probe(w % EW_CAP_ENDPOINTS, o.kind);
    RequestRecord rec;
    rec.endpoint = 0;
    rec.model_slot = 0;
    rec.status = static_cast<uint16_t>(w);
    rec.duration_ms = w;
    rec.now_ms = now;
    g_metrics.count_request(rec);
    g_metrics.observe_first_token(0, 0, w);
    MetricsView v = {&g_cfg, g_health, &g_params, &g_metrics, now, 0};
    metrics_render_prometheus(v, &out);
    metrics_render_status(v, &out);
    status_page_render(v, &out);
    acc += out.len;

    g_sink = acc;
    return 0;
}
