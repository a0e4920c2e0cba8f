// Per-endpoint health state machine. See health.h for the contract.
//
// States: HEALTHY / DEGRADED are chosen by score while the endpoint serves; `fall`
// consecutive failures eject it (DOWN) for a cooldown that doubles with each ejection;
// it returns once it has `rise` consecutive successes AND the cooldown has ended.
// RATE_LIMITED is shown while an endpoint-wide limit is active (DOWN takes precedence).
// No allocation, no OS, no printf (newlib-nano's printf family can pull in malloc).
#include "core/health.h"

#include <string.h>

#include "core/strbuf.h"

namespace ew {

namespace {

// After this many cooldown_max_ms of serving without being ejected, the cooldown
// doubling starts over (cooldown_level = 0). With the defaults (300 s) that is 50 min:
// long compared to any cooldown, so a flapping endpoint keeps its growing cooldown, but an
// endpoint that had one bad afternoon does not carry a 5-minute first ejection forever.
// Time-based rather than a success streak: under heavy traffic 100 successes can pass in a
// minute between two failures of a flapping endpoint.
constexpr uint64_t kDecaySpellFactor = 10;

bool is_success(const Outcome& o) { return o.kind == ResultKind::ok; }

// "HTTP 503" etc. without printf.
void format_status(char* dst, size_t cap, const char* prefix, uint16_t status, const char* suffix) {
    char num[8];
    char rev[8];
    size_t n = 0;
    uint32_t v = status;  // at most 5 digits
    do {
        rev[n++] = static_cast<char>('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++) num[i] = rev[n - 1 - i];
    num[n] = '\0';
    StrBuf b(dst, cap);
    b.append(prefix);
    b.append(num);
    b.append(suffix);
}

void set_error_text(Health* h, const Outcome& o) {
    if (o.error && o.error[0]) {
        copy_str(h->last_error, sizeof h->last_error, o.error);
        return;
    }
    switch (o.kind) {
        case ResultKind::timeout: copy_str(h->last_error, sizeof h->last_error, "timeout"); break;
        case ResultKind::connect: copy_str(h->last_error, sizeof h->last_error, "connect error"); break;
        case ResultKind::tls: copy_str(h->last_error, sizeof h->last_error, "TLS error"); break;
        case ResultKind::bad_response: copy_str(h->last_error, sizeof h->last_error, "bad response"); break;
        case ResultKind::http_status:
            format_status(h->last_error, sizeof h->last_error, "HTTP ", o.http_status, "");
            break;
        case ResultKind::ok: h->last_error[0] = '\0'; break;
    }
}

uint32_t cooldown_for_level(const HealthParams& p, uint32_t level) {
    uint64_t c = p.cooldown_base_ms;
    for (uint32_t i = 1; i < level && c < p.cooldown_max_ms; i++) c *= 2;
    if (c > p.cooldown_max_ms) c = p.cooldown_max_ms;
    return static_cast<uint32_t>(c);
}

HealthState state_by_score(const Health& h, const HealthParams& p) {
    return h.score > p.healthy_above ? HealthState::healthy : HealthState::degraded;
}

// Recomputes the state from the stored facts at `now`. The only place that leaves DOWN.
void update_state(Health* h, const HealthParams& p, uint64_t now) {
    if (h->state == HealthState::down) {
        if (h->consecutive_successes < p.rise || now < h->down_until_ms) return;
        h->serving_since_ms = now;
        h->consecutive_failures = 0;
    }
    if (h->cooldown_level > 0 && now >= h->serving_since_ms &&
        now - h->serving_since_ms >= kDecaySpellFactor * p.cooldown_max_ms) {
        h->cooldown_level = 0;
    }
    if (now < h->rate_limited_until_ms) {
        h->state = HealthState::rate_limited;
    } else {
        h->state = state_by_score(*h, p);
    }
}

void go_down(Health* h, const HealthParams& p, uint64_t now) {
    h->ejections++;
    h->cooldown_level++;
    h->cooldown_ms = cooldown_for_level(p, h->cooldown_level);
    h->down_probe_ms = p.cooldown_base_ms;
    h->down_until_ms = now + h->cooldown_ms;
    h->state = HealthState::down;
}

}  // namespace

void health_init(Health* h) { *h = Health{}; }

float health_success_ratio(const Health& h) {
    if (h.ring_count == 0) return 1.0f;
    uint32_t n = h.ring_count < EW_CAP_HISTORY ? h.ring_count : EW_CAP_HISTORY;
    uint32_t ok = 0;
    for (uint32_t i = 0; i < n; i++) ok += h.ring[i] ? 1u : 0u;
    return static_cast<float>(ok) / static_cast<float>(n);
}

float health_compute_score(const Health& h, const HealthParams& p) {
    float latency_score = 100.0f;
    if (h.has_latency) {
        float l = h.latency_ewma_ms;
        float good = static_cast<float>(p.latency_good_ms);
        float bad = static_cast<float>(p.latency_bad_ms);
        if (l <= good) {
            latency_score = 100.0f;
        } else if (l >= bad || bad <= good) {
            latency_score = 0.0f;
        } else {
            latency_score = 100.0f * (bad - l) / (bad - good);
        }
    }
    float s = 0.7f * (health_success_ratio(h) * 100.0f) + 0.3f * latency_score;
    if (s < 0.0f) s = 0.0f;
    if (s > 100.0f) s = 100.0f;
    return s;
}

void health_record(Health* h, const HealthParams& p, const Outcome& o, uint64_t now_ms, bool from_probe) {
    const bool ok = is_success(o);
    if (from_probe) {
        if (ok) h->probes_ok++;
        else h->probes_failed++;
    } else {
        h->requests++;
    }

    h->ring[h->ring_pos] = ok ? 1 : 0;
    h->ring_pos = (h->ring_pos + 1) % EW_CAP_HISTORY;
    if (h->ring_count < EW_CAP_HISTORY) h->ring_count++;

    h->last_kind = o.kind;
    h->last_http_status = o.http_status;
    if (ok) {
        h->last_success_ms = now_ms;
        h->consecutive_failures = 0;
        h->consecutive_successes++;
        h->key_bad = false;
        float lat = static_cast<float>(o.latency_ms);
        if (!h->has_latency) {
            h->latency_ewma_ms = lat;
            h->has_latency = true;
        } else {
            h->latency_ewma_ms = p.ewma_alpha * lat + (1.0f - p.ewma_alpha) * h->latency_ewma_ms;
        }
    } else {
        h->last_failure_ms = now_ms;
        h->consecutive_successes = 0;
        h->consecutive_failures++;
        set_error_text(h, o);
    }
    h->score = health_compute_score(*h, p);

    // A failure while DOWN restarts nothing (the cooldown keeps its end); it only resets
    // the success streak above.
    uint32_t fall = p.fall ? p.fall : 1;
    if (!ok && h->state != HealthState::down && h->consecutive_failures >= fall) {
        go_down(h, p, now_ms);
        return;
    }
    update_state(h, p, now_ms);
}

void health_rate_limit(Health* h, int model_index, uint64_t until_ms, uint64_t now_ms) {
    // Keeps the later of two limits: a shorter Retry-After on one response does not
    // lift a longer limit announced earlier. Out-of-range model indexes are ignored.
    if (model_index < 0) {
        if (until_ms > h->rate_limited_until_ms) h->rate_limited_until_ms = until_ms;
        if (h->state != HealthState::down && now_ms < h->rate_limited_until_ms) {
            h->state = HealthState::rate_limited;
        }
    } else if (model_index < EW_CAP_MODELS_PER_ENDPOINT) {
        uint64_t* m = &h->model_limited_until_ms[model_index];
        if (until_ms > *m) *m = until_ms;
    }
}

void health_key_bad(Health* h, uint16_t status, uint64_t now_ms) {
    (void)now_ms;
    h->key_bad = true;
    h->last_kind = ResultKind::http_status;
    h->last_http_status = status;
    format_status(h->last_error, sizeof h->last_error, "HTTP ", status, ": API key rejected");
}

void health_tick(Health* h, const HealthParams& p, uint64_t now_ms) {
    for (uint64_t& m : h->model_limited_until_ms) {
        if (m && now_ms >= m) m = 0;
    }
    if (h->rate_limited_until_ms && now_ms >= h->rate_limited_until_ms) h->rate_limited_until_ms = 0;
    update_state(h, p, now_ms);
}

bool health_can_serve(const Health& h, int model_index, uint64_t now_ms) {
    if (h.key_bad || h.state == HealthState::down) return false;
    if (now_ms < h.rate_limited_until_ms) return false;
    if (model_index >= 0 && model_index < EW_CAP_MODELS_PER_ENDPOINT &&
        now_ms < h.model_limited_until_ms[model_index]) {
        return false;
    }
    return true;
}

uint64_t health_serve_after_ms(const Health& h, int model_index, uint64_t now_ms) {
    if (h.key_bad) return UINT64_MAX;
    if (h.state == HealthState::down) {
        if (h.down_until_ms > now_ms) return h.down_until_ms;
        return now_ms + (h.down_probe_ms ? h.down_probe_ms : 1000);
    }
    uint64_t t = now_ms;
    if (h.rate_limited_until_ms > t) t = h.rate_limited_until_ms;
    if (model_index >= 0 && model_index < EW_CAP_MODELS_PER_ENDPOINT &&
        h.model_limited_until_ms[model_index] > t) {
        t = h.model_limited_until_ms[model_index];
    }
    return t;
}

const char* health_status_class(const Health& h, const HealthParams& p) {
    if (h.state == HealthState::down || h.key_bad) return "unhealthy";
    if (h.score > p.healthy_above) return "healthy";
    if (h.score > p.degraded_above) return "degraded";
    return "unhealthy";
}

const char* to_string(HealthState s) {
    switch (s) {
        case HealthState::healthy: return "HEALTHY";
        case HealthState::degraded: return "DEGRADED";
        case HealthState::down: return "DOWN";
        case HealthState::rate_limited: return "RATE_LIMITED";
    }
    return "?";
}

const char* to_string(ResultKind k) {
    switch (k) {
        case ResultKind::ok: return "ok";
        case ResultKind::timeout: return "timeout";
        case ResultKind::connect: return "connect";
        case ResultKind::tls: return "tls";
        case ResultKind::http_status: return "http_status";
        case ResultKind::bad_response: return "bad_response";
    }
    return "?";
}

}  // namespace ew
