// Candidate ordering. Small fixed arrays on the stack, insertion sort (stable, at most
// EW_CAP_ENDPOINTS entries per model), no allocation.
#include "core/router.h"

#include <string.h>

namespace ew {

namespace {

// Own loops rather than Config::fallback_for / EndpointConfig::serves, so the router
// depends on the Config's data only.
const FallbackRule* find_rule(const Config& cfg, const char* model) {
    uint32_t n = cfg.fallback_count < EW_CAP_FALLBACK_RULES ? cfg.fallback_count : EW_CAP_FALLBACK_RULES;
    for (uint32_t i = 0; i < n; i++) {
        if (strcmp(cfg.fallback[i].model, model) == 0) return &cfg.fallback[i];
    }
    return nullptr;
}

// Index of `model` in the endpoint's list, or -1.
int model_slot(const EndpointConfig& ep, const char* model) {
    uint32_t n = ep.model_count < EW_CAP_MODELS_PER_ENDPOINT ? ep.model_count : EW_CAP_MODELS_PER_ENDPOINT;
    for (uint32_t i = 0; i < n; i++) {
        if (strcmp(ep.models[i], model) == 0) return static_cast<int>(i);
    }
    return -1;
}

uint32_t endpoint_count(const Config& cfg) {
    return cfg.endpoint_count < EW_CAP_ENDPOINTS ? cfg.endpoint_count : EW_CAP_ENDPOINTS;
}

bool in_list(const char* const* list, size_t n, const char* model) {
    for (size_t i = 0; i < n; i++) {
        if (strcmp(list[i], model) == 0) return true;
    }
    return false;
}

const Health kFresh{};  // stands in when the caller passes no health table

// Rate limited, or held off by what an error body said (an exhausted key, a missing model).
bool model_limited(const Health& h, int slot, uint64_t now) {
    if (now < h.rate_limited_until_ms || now < h.key_exhausted_until_ms) return true;
    return slot >= 0 && slot < EW_CAP_MODELS_PER_ENDPOINT &&
           (now < h.model_limited_until_ms[slot] || now < h.model_unavailable_until_ms[slot]);
}

// DOWN, but tried when nothing else of the chain can serve.
bool panic_usable(const Health& h, int slot, uint64_t now) {
    return h.state == HealthState::down && !h.key_bad && !model_limited(h, slot, now);
}

const Health& health_of(const Health* health, uint32_t i) { return health ? health[i] : kFresh; }

// Negative when a should come before b.
int compare(const Config& cfg, const Health* health, uint32_t a, uint32_t b) {
    const Health& ha = health_of(health, a);
    const Health& hb = health_of(health, b);
    const int32_t pa = cfg.endpoints[a].priority;
    const int32_t pb = cfg.endpoints[b].priority;
    // Known latency first, then lower EWMA.
    auto latency_cmp = [&]() -> int {
        if (ha.has_latency != hb.has_latency) return ha.has_latency ? -1 : 1;
        if (!ha.has_latency) return 0;
        if (ha.latency_ewma_ms < hb.latency_ewma_ms) return -1;
        if (ha.latency_ewma_ms > hb.latency_ewma_ms) return 1;
        return 0;
    };
    switch (cfg.agent.strategy) {
        case Strategy::priority: {
            if (pa != pb) return pa > pb ? -1 : 1;
            bool ga = ha.state == HealthState::healthy;
            bool gb = hb.state == HealthState::healthy;
            if (ga != gb) return ga ? -1 : 1;
            return latency_cmp();
        }
        case Strategy::latency: {
            int c = latency_cmp();
            if (c) return c;
            if (pa != pb) return pa > pb ? -1 : 1;
            return 0;
        }
        case Strategy::weighted: {
            float wa = ha.score * 0.6f + static_cast<float>(pa) * 40.0f;
            float wb = hb.score * 0.6f + static_cast<float>(pb) * 40.0f;
            if (wa != wb) return wa > wb ? -1 : 1;
            return 0;
        }
    }
    return 0;
}

// Appends the chain's candidates that can serve (health_can_serve), or with `panic` those
// that are only DOWN (panic_usable), ranked by compare() within each chain model.
size_t collect(const Config& cfg, const Health* health, const char* const* chain, size_t chain_n, uint64_t now_ms,
               bool panic, Candidate* out, size_t cap) {
    const uint32_t ep_n = endpoint_count(cfg);
    size_t n = 0;
    for (size_t c = 0; c < chain_n && n < cap; c++) {
        uint32_t idx[EW_CAP_ENDPOINTS];
        int slot[EW_CAP_ENDPOINTS];
        bool trial_of[EW_CAP_ENDPOINTS] = {};
        uint32_t k = 0;
        for (uint32_t e = 0; e < ep_n; e++) {
            int s = model_slot(cfg.endpoints[e], chain[c]);
            if (s < 0) continue;
            const Health& h = health_of(health, e);
            const bool trial = !panic && !health_can_serve(h, s, now_ms) &&
                               health_trial_open(h, cfg.agent.trial_requests, s, now_ms);
            if (!(panic ? panic_usable(h, s, now_ms) : trial || health_can_serve(h, s, now_ms))) continue;
            // Insertion sort: shift later-ranked entries right; equal ones stay in front.
            uint32_t pos = k;
            while (pos > 0 && compare(cfg, health, e, idx[pos - 1]) < 0) {
                idx[pos] = idx[pos - 1];
                slot[pos] = slot[pos - 1];
                trial_of[pos] = trial_of[pos - 1];
                pos--;
            }
            idx[pos] = e;
            slot[pos] = s;
            trial_of[pos] = trial;
            k++;
        }
        for (uint32_t i = 0; i < k && n < cap; i++) {
            out[n].endpoint = static_cast<uint8_t>(idx[i]);
            out[n].model_slot = static_cast<uint8_t>(slot[i]);
            out[n].model = cfg.endpoints[idx[i]].models[slot[i]];
            out[n].panic = panic;
            out[n].trial = trial_of[i];
            n++;
        }
    }
    return n;
}

}  // namespace

size_t router_model_chain(const Config& cfg, const char* model, const char** out, size_t cap) {
    if (!model || cap == 0) return 0;
    size_t n = 0;
    out[n++] = model;
    for (size_t i = 0; i < n; i++) {  // breadth first; n grows as rules are expanded
        const FallbackRule* r = find_rule(cfg, out[i]);
        if (!r) continue;
        uint32_t k = r->next_count < EW_CAP_FALLBACK_CHAIN ? r->next_count : EW_CAP_FALLBACK_CHAIN;
        for (uint32_t j = 0; j < k; j++) {
            const char* m = r->next[j];
            if (!m[0] || in_list(out, n, m)) continue;
            if (n == cap) return n;
            out[n++] = m;
        }
    }
    return n;
}

size_t router_candidates(const Config& cfg, const Health* health, const char* requested_model, uint64_t now_ms,
                         Candidate* out, size_t cap) {
    const char* chain[EW_ROUTER_CHAIN_CAP];
    size_t chain_n = router_model_chain(cfg, requested_model, chain, EW_ROUTER_CHAIN_CAP);
    size_t n = collect(cfg, health, chain, chain_n, now_ms, false, out, cap);
    if (n == 0) n = collect(cfg, health, chain, chain_n, now_ms, true, out, cap);
    return n;
}

size_t router_candidates_among(const Config& cfg, const Health* health, const char* const* models, size_t count,
                               uint64_t now_ms, Candidate* out, size_t cap) {
    size_t n = collect(cfg, health, models, count, now_ms, false, out, cap);
    if (n == 0) n = collect(cfg, health, models, count, now_ms, true, out, cap);
    return n;
}

const FallbackRule* router_context_rule(const Config& cfg, const char* model) {
    uint32_t n = cfg.context_fallback_count < EW_CAP_CONTEXT_FALLBACK_RULES ? cfg.context_fallback_count
                                                                             : EW_CAP_CONTEXT_FALLBACK_RULES;
    for (uint32_t i = 0; model && i < n; i++) {
        if (strcmp(cfg.context_fallback[i].model, model) == 0) return &cfg.context_fallback[i];
    }
    return nullptr;
}

bool router_candidate_usable(const Health& h, const Candidate& c, uint64_t now_ms, uint32_t trial_requests) {
    if (health_can_serve(h, c.model_slot, now_ms)) return true;
    if (c.trial && health_trial_open(h, trial_requests, c.model_slot, now_ms)) return true;
    return c.panic && panic_usable(h, c.model_slot, now_ms);
}

bool router_candidate_is_trial(const Health& h, const Candidate& c, uint64_t now_ms) {
    return c.trial && !health_can_serve(h, c.model_slot, now_ms);
}

uint64_t router_soonest_serve_ms(const Config& cfg, const Health* health, const char* requested_model,
                                 uint64_t now_ms) {
    const char* chain[EW_ROUTER_CHAIN_CAP];
    size_t chain_n = router_model_chain(cfg, requested_model, chain, EW_ROUTER_CHAIN_CAP);
    const uint32_t ep_n = endpoint_count(cfg);
    uint64_t best = UINT64_MAX;
    for (size_t c = 0; c < chain_n; c++) {
        for (uint32_t e = 0; e < ep_n; e++) {
            int s = model_slot(cfg.endpoints[e], chain[c]);
            if (s < 0) continue;
            uint64_t t = health_serve_after_ms(health_of(health, e), s, now_ms);
            if (t < best) best = t;
        }
    }
    return best;
}

bool router_model_known(const Config& cfg, const char* model) {
    if (!model || !model[0]) return false;
    if (find_rule(cfg, model)) return true;
    const uint32_t ep_n = endpoint_count(cfg);
    for (uint32_t e = 0; e < ep_n; e++) {
        if (model_slot(cfg.endpoints[e], model) >= 0) return true;
    }
    return false;
}

}  // namespace ew
