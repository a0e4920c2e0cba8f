// Per-endpoint health: latency EWMA, ring of recent results, score, state machine.
// Pure: no I/O, time is passed in as monotonic milliseconds. Probes and forwarded
// requests (passive health) feed the same health_record().
#pragma once
#include <stddef.h>
#include <stdint.h>
#include "core/caps.h"

namespace ew {

// How one probe or one forwarded attempt ended.
enum class ResultKind : uint8_t { ok, timeout, connect, tls, http_status, bad_response };

enum class HealthState : uint8_t { healthy, degraded, down, rate_limited };

struct Outcome {
    ResultKind kind = ResultKind::ok;
    uint32_t latency_ms = 0;   // time to response head (or connect, for tcp/tls probes)
    uint16_t http_status = 0;  // when kind == http_status (or ok with a status)
    const char* error = "";    // short human text, e.g. "certificate: unknown CA"; may be ""
};

struct HealthParams {
    uint32_t fall = 3;                   // consecutive failures to go DOWN
    uint32_t rise = 2;                   // consecutive successes to come back
    uint32_t cooldown_base_ms = 5000;    // first ejection lasts this long (probe.down_interval_ms)
    uint32_t cooldown_max_ms = 300000;   // doubled per ejection up to this
    float ewma_alpha = 0.2f;
    uint32_t latency_good_ms = 1000;     // latency score 100 at or below this
    uint32_t latency_bad_ms = 10000;     // latency score 0 at or above this
    float healthy_above = 70.0f;         // status classes (seed thresholds)
    float degraded_above = 50.0f;
};

struct Health {
    HealthState state = HealthState::healthy;
    float score = 100.0f;
    float latency_ewma_ms = 0.0f;
    bool has_latency = false;
    uint32_t consecutive_failures = 0;
    uint32_t consecutive_successes = 0;
    uint64_t last_success_ms = 0;   // monotonic; 0 = never
    uint64_t last_failure_ms = 0;
    uint64_t probes_ok = 0;
    uint64_t probes_failed = 0;
    uint64_t requests = 0;          // forwarded attempts recorded
    uint32_t ejections = 0;         // times it went DOWN
    uint64_t down_until_ms = 0;     // cooldown end while DOWN
    uint64_t rate_limited_until_ms = 0;                            // whole endpoint
    uint64_t model_limited_until_ms[EW_CAP_MODELS_PER_ENDPOINT] = {};  // by model index
    bool key_bad = false;           // a 401/403 was seen; cleared by a later success
    ResultKind last_kind = ResultKind::ok;
    uint16_t last_http_status = 0;
    char last_error[EW_CAP_ERROR_TEXT] = "";
    // ring of the last EW_CAP_HISTORY results: 1 = success
    uint8_t ring[EW_CAP_HISTORY] = {};
    uint32_t ring_pos = 0;
    uint32_t ring_count = 0;
    // Cooldown doubling: ejections since the endpoint last served cleanly for a long spell
    // (`ejections` above is the lifetime total, for metrics, and never decreases).
    uint32_t cooldown_level = 0;
    uint32_t cooldown_ms = 0;       // length of the current/last cooldown
    uint32_t down_probe_ms = 0;     // probe interval while DOWN (cooldown_base_ms), for estimates
    uint64_t serving_since_ms = 0;  // when it last left DOWN (or first result); for decay
};

void health_init(Health* h);

// Feeds one result. `from_probe` counts it as a probe, else as a forwarded request.
// A 429 must not be passed here as a failure: use health_rate_limit().
void health_record(Health* h, const HealthParams& p, const Outcome& o, uint64_t now_ms, bool from_probe);

// Marks the endpoint (model_index < 0) or one of its models RATE_LIMITED until `until_ms`.
void health_rate_limit(Health* h, int model_index, uint64_t until_ms, uint64_t now_ms);

// Marks the API key bad after a 401/403 (not a health failure of the service).
void health_key_bad(Health* h, uint16_t status, uint64_t now_ms);

// Advances time-driven transitions (rate limit expiry, cooldown end). Call before reading state.
void health_tick(Health* h, const HealthParams& p, uint64_t now_ms);

// True when a request for the model (index, or -1 for any) may be sent now.
bool health_can_serve(const Health& h, int model_index, uint64_t now_ms);

// Earliest time >= now at which health_can_serve may become true, as an estimate for a
// Retry-After header: `now` when it can serve; the end of the endpoint's (and, for
// model_index >= 0, the model's) rate limit; for DOWN the cooldown end, or when that has
// passed, now + one DOWN probe interval (it still needs `rise` good probes).
// UINT64_MAX when the key is bad (needs an operator, not time).
uint64_t health_serve_after_ms(const Health& h, int model_index, uint64_t now_ms);

// Fraction of successes in the ring, 0..1 (1 when empty).
float health_success_ratio(const Health& h);

// Score = 0.7 * (ring success ratio * 100) + 0.3 * latency score, where the latency score is
// 100 at EWMA <= latency_good_ms falling linearly to 0 at latency_bad_ms (slower = lower;
// 100 while no latency is known). health_record() stores it in Health::score.
float health_compute_score(const Health& h, const HealthParams& p);

// "healthy" | "degraded" | "unhealthy" from the score (seed thresholds: > healthy_above,
// > degraded_above); always "unhealthy" while DOWN or with a bad key.
const char* health_status_class(const Health& h, const HealthParams& p);

const char* to_string(HealthState s);  // "HEALTHY", "DEGRADED", "DOWN", "RATE_LIMITED"
const char* to_string(ResultKind k);   // "ok", "timeout", "connect", "tls", "http_status", "bad_response"

}  // namespace ew
