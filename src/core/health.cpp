// Per-endpoint health state machine. See health.h for the contract.
//
// States: HEALTHY / DEGRADED are chosen by score while the endpoint serves; `fall`
// consecutive failures eject it (DOWN) for a cooldown; it returns once it has `rise`
// consecutive successes AND the cooldown has ended, or at once when a probe brings the
// rise-th success. RATE_LIMITED is shown while an endpoint-wide limit is active (DOWN takes
// precedence).
//
// Cooldown length: cooldown_base_ms doubled cooldown_level times, capped at cooldown_max_ms.
// The level grows only when an endpoint flaps (ejected within flap_factor x its
// last cooldown after it came back) and falls by one per cooldown_decay_ms of serving
// without an ejection (measured in time, not in successes: under heavy traffic hundreds of
// successes can pass between two failures of a flapping endpoint).
// No allocation, no OS, no libc printf (StrBuf formats on its own).
#include "core/health.h"

#include <string.h>

#include "core/retry.h"
#include "core/strbuf.h"

namespace ew {

namespace {

bool is_success(const Outcome& o) { return o.kind == ResultKind::ok; }

void set_error_text(Health* h, const Outcome& o) {
    StrBuf b(h->last_error, sizeof h->last_error);
    if (o.error && o.error[0]) {
        b.append(o.error);
        return;
    }
    switch (o.kind) {
        case ResultKind::timeout: b.append("timeout"); break;
        case ResultKind::connect: b.append("connect error"); break;
        case ResultKind::tls: b.append("TLS error"); break;
        case ResultKind::bad_response: b.append("bad response"); break;
        case ResultKind::http_status: b.appendf("HTTP %u", static_cast<unsigned>(o.http_status)); break;
        case ResultKind::ok: break;
    }
}

uint32_t cooldown_for_level(const HealthParams& p, uint32_t level) {
    uint64_t c = p.cooldown_base_ms;
    for (uint32_t i = 0; i < level && c < p.cooldown_max_ms; i++) c *= 2;
    if (c > p.cooldown_max_ms) c = p.cooldown_max_ms;
    return static_cast<uint32_t>(c);
}

HealthState state_by_score(const Health& h, const HealthParams& p) {
    return h.score > p.healthy_above ? HealthState::healthy : HealthState::degraded;
}

// One doubling undone per cooldown_decay_ms served since decay_from_ms.
void decay(Health* h, const HealthParams& p, uint64_t now) {
    if (h->cooldown_level == 0 || p.cooldown_decay_ms == 0 || now <= h->decay_from_ms) return;
    uint64_t steps = (now - h->decay_from_ms) / p.cooldown_decay_ms;
    if (steps == 0) return;
    if (steps > h->cooldown_level) steps = h->cooldown_level;
    h->cooldown_level -= static_cast<uint32_t>(steps);
    h->decay_from_ms += steps * p.cooldown_decay_ms;
}

void leave_down(Health* h, uint64_t now) {
    h->returned_ms = now;
    h->decay_from_ms = now;
    h->consecutive_failures = 0;
    h->down_level = CheckLevel::none;
    h->down_by_traffic = false;
    h->down_probe_level = CheckLevel::none;
    h->trials_in_flight = 0;
    h->trial_until_ms = 0;
    h->trials_ok = 0;
}

// Recomputes the state from the stored facts at `now`. The only place that leaves DOWN
// (health_record's trial success calls it with `force`).
void update_state(Health* h, const HealthParams& p, uint64_t now, bool force = false) {
    if (h->state == HealthState::down) {
        if (!force && (h->consecutive_successes < p.rise || now < h->down_until_ms)) return;
        leave_down(h, now);
    } else {
        decay(h, p, now);
    }
    if (now < h->rate_limited_until_ms) {
        h->state = HealthState::rate_limited;
    } else {
        h->state = state_by_score(*h, p);
    }
}

void go_down(Health* h, const HealthParams& p, uint64_t now) {
    decay(h, p, now);  // the clean spell up to this failure counts
    const bool flapping = h->returned_ms != 0 && now - h->returned_ms <
                          static_cast<uint64_t>(p.flap_factor) * h->cooldown_ms;
    if (flapping && cooldown_for_level(p, h->cooldown_level) < p.cooldown_max_ms) h->cooldown_level++;
    h->ejections++;
    h->cooldown_ms = cooldown_for_level(p, h->cooldown_level);
    h->down_probe_ms = p.cooldown_base_ms;
    h->down_until_ms = now + h->cooldown_ms;
    h->state = HealthState::down;
    h->down_level = h->streak_level;
    h->down_by_traffic = h->streak_traffic;
    h->down_probe_level = h->streak_probe_level;
    h->down_failures = h->consecutive_failures;
    h->down_since_ms = now;
    h->trial_at_ms = h->down_until_ms;
    h->trials_in_flight = 0;
    h->trial_until_ms = 0;
    h->trials_ok = 0;
}

// The level a failure is seen at: a connect error at tcp, a handshake error at tls, the rest
// at the level of the check that met it.
CheckLevel failure_level(const Outcome& o) {
    CheckLevel k = o.kind == ResultKind::connect ? CheckLevel::tcp
                   : o.kind == ResultKind::tls   ? CheckLevel::tls
                                                 : CheckLevel::chat;
    return k < o.level ? k : o.level;
}

void count(Health* h, bool from_probe, bool ok) {
    if (!from_probe) h->requests++;
    else if (ok) h->probes_ok++;
    else h->probes_failed++;
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
    if (ok && h->state == HealthState::down && o.level < health_confirm_level(*h)) {
        // Too shallow to have seen what ejected it (a /models 200 after chat 503s): counted,
        // and nothing else. The endpoint waits for a check that looks as deep, or a trial.
        count(h, from_probe, true);
        h->unconfirmed_probes++;
        return;
    }
    count(h, from_probe, ok);

    h->ring[h->ring_pos] = ok ? 1 : 0;
    h->ring_pos = (h->ring_pos + 1) % EW_CAP_HISTORY;
    if (h->ring_count < EW_CAP_HISTORY) h->ring_count++;

    h->last_kind = o.kind;
    h->last_http_status = o.http_status;
    if (ok) {
        h->last_success_ms = now_ms;
        if (!from_probe) h->last_traffic_ok_ms = now_ms;
        h->streak_level = CheckLevel::none;
        h->streak_traffic = false;
        h->streak_probe_level = CheckLevel::none;
        h->consecutive_failures = 0;
        h->consecutive_successes++;
        // An HTTP answer proves the key is accepted again; a tcp/tls probe proves nothing.
        if (o.http_status != 0) h->key_bad = false;
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
        const CheckLevel lvl = failure_level(o);
        if (lvl > h->streak_level || (lvl == h->streak_level && !from_probe)) {
            h->streak_level = lvl;
            h->streak_traffic = !from_probe;
        }
        if (h->state == HealthState::down && lvl > h->down_level) {
            h->down_level = lvl;
            h->down_by_traffic = !from_probe;
        }
        if (from_probe) {
            if (lvl > h->streak_probe_level) h->streak_probe_level = lvl;
            if (h->state == HealthState::down && lvl > h->down_probe_level) h->down_probe_level = lvl;
        }
    }
    h->score = health_compute_score(*h, p);

    // A failure while DOWN restarts nothing (the cooldown keeps its end); it only resets
    // the success streak above.
    uint32_t fall = p.fall ? p.fall : 1;
    if (!ok && h->state != HealthState::down && h->consecutive_failures >= fall) {
        go_down(h, p, now_ms);
        return;
    }
    if (o.trial && h->state == HealthState::down) {
        if (!ok) {
            // One failed trial: DOWN for one more down interval, then the next trial.
            h->trials_failed++;
            h->trials_ok = 0;
            h->trial_at_ms = now_ms + (h->down_probe_ms ? h->down_probe_ms : p.cooldown_base_ms);
            return;
        }
        h->trials_passed++;
        const uint32_t need = p.trial_requests ? p.trial_requests : 1;
        if (++h->trials_ok >= need) {
            if (h->down_until_ms > now_ms) h->down_until_ms = now_ms;
            update_state(h, p, now_ms, true);
            return;
        }
    }
    // A probe that brings the rise-th success ends the cooldown early.
    if (ok && from_probe && h->state == HealthState::down && h->consecutive_successes >= p.rise &&
        h->down_until_ms > now_ms) {
        h->down_until_ms = now_ms;
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
    StrBuf e(h->last_error, sizeof h->last_error);
    e.appendf("HTTP %u: API key rejected", static_cast<unsigned>(status));
}

void health_key_exhausted(Health* h, uint64_t until_ms, uint64_t now_ms) {
    if (until_ms > h->key_exhausted_until_ms) h->key_exhausted_until_ms = until_ms;
    h->last_kind = ResultKind::http_status;
    h->last_http_status = 429;
    StrBuf e(h->last_error, sizeof h->last_error);
    e.appendf("HTTP 429 insufficient_quota: API key exhausted for %llu s",
              static_cast<unsigned long long>((h->key_exhausted_until_ms - now_ms + 999) / 1000));
}

bool health_key_exhausted_now(const Health& h, uint64_t now_ms) { return now_ms < h.key_exhausted_until_ms; }

ObservationEffect health_observe(Health* h, const HealthParams& p, const Observation& o, uint64_t now_ms) {
    if (o.trial && h->trials_in_flight > 0) h->trials_in_flight--;  // its slot is free, whatever it says
    const uint16_t status = o.http_status;
    const bool answered = status != 0 && (o.kind == ResultKind::ok || o.kind == ResultKind::http_status);
    if (answered && o.meaning == ErrorMeaning::insufficient_quota) {
        count(h, o.from_probe, false);
        health_key_exhausted(h, now_ms + p.key_exhausted_ms, now_ms);
        return ObservationEffect::key_exhausted;
    }
    if (answered && o.meaning == ErrorMeaning::model_not_found && o.model_index >= 0 &&
        o.model_index < EW_CAP_MODELS_PER_ENDPOINT) {
        count(h, o.from_probe, false);
        uint64_t* m = &h->model_unavailable_until_ms[o.model_index];
        if (now_ms + p.model_unavailable_ms > *m) *m = now_ms + p.model_unavailable_ms;
        h->last_kind = ResultKind::http_status;
        h->last_http_status = status;
        StrBuf e(h->last_error, sizeof h->last_error);
        e.appendf("HTTP 404 model_not_found: model unavailable here for %u s",
                  static_cast<unsigned>(p.model_unavailable_ms / 1000));
        return ObservationEffect::model_unavailable;
    }
    if (answered && status == 429) {
        const uint64_t delay = o.has_retry_after ? o.retry_after_ms : p.rate_limit_default_ms;
        health_rate_limit(h, o.model_index, now_ms + delay, now_ms);
        count(h, o.from_probe, false);
        h->last_kind = ResultKind::http_status;
        h->last_http_status = status;
        StrBuf e(h->last_error, sizeof h->last_error);
        e.appendf("HTTP 429: rate limited for %llu ms", static_cast<unsigned long long>(delay));
        return ObservationEffect::rate_limited;
    }
    const AttemptVerdict v = classify_attempt(o.kind, status);
    if (v == AttemptVerdict::key_bad_failover) {
        count(h, o.from_probe, false);
        health_key_bad(h, status, now_ms);
        return ObservationEffect::key_bad;
    }
    const bool ok = v == AttemptVerdict::success || (!o.from_probe && v == AttemptVerdict::return_to_client);
    Outcome r;
    r.latency_ms = o.latency_ms;
    r.http_status = status;
    r.error = o.error;
    r.level = !o.from_probe || o.level == CheckLevel::none ? CheckLevel::chat : o.level;
    r.trial = o.trial;
    if (ok) {
        r.kind = ResultKind::ok;
    } else {
        // A probe's 404 arrives as kind ok with a status: as a failure it is an HTTP status;
        // an HTTP status without a status is a bad response (as classify_attempt says).
        r.kind = o.kind == ResultKind::ok ? ResultKind::http_status : o.kind;
        if (r.kind == ResultKind::http_status && status == 0) r.kind = ResultKind::bad_response;
    }
    health_record(h, p, r, now_ms, o.from_probe);
    return ok ? ObservationEffect::success : ObservationEffect::failure;
}

void health_tick(Health* h, const HealthParams& p, uint64_t now_ms) {
    for (uint64_t& m : h->model_limited_until_ms) {
        if (m && now_ms >= m) m = 0;
    }
    if (h->rate_limited_until_ms && now_ms >= h->rate_limited_until_ms) h->rate_limited_until_ms = 0;
    for (uint64_t& m : h->model_unavailable_until_ms) {
        if (m && now_ms >= m) m = 0;
    }
    if (h->key_exhausted_until_ms && now_ms >= h->key_exhausted_until_ms) h->key_exhausted_until_ms = 0;
    update_state(h, p, now_ms);
}

CheckLevel health_confirm_level(const Health& h) {
    if (h.down_probe_level != CheckLevel::none && h.down_probe_level < h.down_level) return h.down_probe_level;
    return h.down_level;
}

bool health_needs_trial(const Health& h) {
    return h.state == HealthState::down && health_confirm_level(h) > h.probe_level;
}

uint32_t health_trials_in_flight(const Health& h, uint64_t now_ms) {
    return now_ms < h.trial_until_ms ? h.trials_in_flight : 0;
}

bool health_trial_open(const Health& h, uint32_t trial_requests, int model_index, uint64_t now_ms) {
    if (!health_needs_trial(h) || h.key_bad || h.name_unresolved || now_ms < h.trial_at_ms) return false;
    if (now_ms < h.rate_limited_until_ms) return false;
    if (model_index >= 0 && model_index < EW_CAP_MODELS_PER_ENDPOINT &&
        now_ms < h.model_limited_until_ms[model_index]) {
        return false;
    }
    const uint32_t cap = trial_requests ? trial_requests : 1;
    return health_trials_in_flight(h, now_ms) < cap;
}

void health_trial_begin(Health* h, uint64_t until_ms, uint64_t now_ms) {
    if (now_ms >= h->trial_until_ms) h->trials_in_flight = 0;  // expired slots are free
    h->trials_in_flight++;
    if (until_ms > h->trial_until_ms) h->trial_until_ms = until_ms;
    h->trials_started++;
}

void health_trial_abandon(Health* h) {
    if (h->trials_in_flight > 0) h->trials_in_flight--;
}

bool health_can_serve(const Health& h, int model_index, uint64_t now_ms) {
    if (h.key_bad || h.state == HealthState::down || h.name_unresolved) return false;
    if (now_ms < h.rate_limited_until_ms || now_ms < h.key_exhausted_until_ms) return false;
    if (model_index >= 0 && model_index < EW_CAP_MODELS_PER_ENDPOINT &&
        (now_ms < h.model_limited_until_ms[model_index] || now_ms < h.model_unavailable_until_ms[model_index])) {
        return false;
    }
    return true;
}

uint64_t health_serve_after_ms(const Health& h, int model_index, uint64_t now_ms) {
    if (h.key_bad) return UINT64_MAX;
    if (h.name_unresolved) return now_ms + 1000;  // the resolver retries within seconds at first
    if (h.state == HealthState::down) {
        // The next probe may bring the rise-th success and end the cooldown early.
        const uint64_t next_probe = now_ms + (h.down_probe_ms ? h.down_probe_ms : 1000);
        if (health_needs_trial(h)) {
            // Its probe cannot bring it back: the next trial can.
            return h.trial_at_ms > now_ms ? h.trial_at_ms : next_probe;
        }
        return h.down_until_ms > now_ms && h.down_until_ms < next_probe ? h.down_until_ms : next_probe;
    }
    uint64_t t = now_ms;
    if (h.rate_limited_until_ms > t) t = h.rate_limited_until_ms;
    if (h.key_exhausted_until_ms > t) t = h.key_exhausted_until_ms;
    if (model_index >= 0 && model_index < EW_CAP_MODELS_PER_ENDPOINT) {
        if (h.model_limited_until_ms[model_index] > t) t = h.model_limited_until_ms[model_index];
        if (h.model_unavailable_until_ms[model_index] > t) t = h.model_unavailable_until_ms[model_index];
    }
    return t;
}

const char* health_status_class(const Health& h, const HealthParams& p) {
    if (h.state == HealthState::down || h.key_bad || h.key_exhausted_until_ms || h.name_unresolved) return "unhealthy";
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

const char* to_string(ObservationEffect e) {
    switch (e) {
        case ObservationEffect::success: return "success";
        case ObservationEffect::failure: return "failure";
        case ObservationEffect::rate_limited: return "rate_limited";
        case ObservationEffect::key_bad: return "key_bad";
        case ObservationEffect::key_exhausted: return "key_exhausted";
        case ObservationEffect::model_unavailable: return "model_unavailable";
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
