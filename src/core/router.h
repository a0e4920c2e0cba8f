// Candidate order for one request: fallback chain x endpoints x strategy x health state.
// Pure: reads the Config and the Health table, writes into caller-owned arrays.
#pragma once
#include <stddef.h>
#include <stdint.h>
#include "core/caps.h"
#include "core/config.h"
#include "core/health.h"

namespace ew {

// One upstream attempt: which endpoint, which of its models (index into
// EndpointConfig::models, also the model index for health_*), and the model name.
// `panic`: the endpoint was DOWN when the list was made and is tried only because nothing
// of the chain could serve (router_candidates' panic routing).
struct Candidate {
    uint8_t endpoint;
    uint8_t model_slot;
    const char* model;  // the endpoint's model name, inside the Config; not owned
    bool panic;
    // The endpoint was DOWN with a trial open (health_trial_open) when the list was made:
    // the attempt is a trial if it is still DOWN then (router_candidate_is_trial).
    bool trial = false;
};

// Most models a chain can hold: the requested one plus every right-hand side of [fallback].
#define EW_ROUTER_CHAIN_CAP (1 + EW_CAP_FALLBACK_RULES * EW_CAP_FALLBACK_CHAIN)
// Most candidates one request can have (each chain model on each endpoint).
#define EW_ROUTER_CANDIDATES_CAP (EW_CAP_ENDPOINTS * EW_CAP_MODELS_PER_ENDPOINT)

// The fallback chain of `model`, breadth first: the model itself, then its [fallback]
// rule's models in order, then each of those models' own rules, and so on. Every model
// appears once, so a cyclic configuration (a = b; b = a) terminates. Returns the count
// (at most cap); out[0] == model when cap > 0.
size_t router_model_chain(const Config& cfg, const char* model, const char** out, size_t cap);

// Ordered candidates for a request of `requested_model` at `now_ms`: chain models in chain
// order; for each, the endpoints that list it and can serve it now (health_can_serve with
// that model's index: DOWN, key_bad, endpoint- or model-level RATE_LIMITED are skipped),
// ordered by cfg.agent.strategy:
//   priority  higher priority first; then HEALTHY before others; then lower latency EWMA
//   latency   lower latency EWMA first; then higher priority
//   weighted  higher score*0.6 + priority*40 first (the seed's formula)
// An endpoint with no latency measured yet ranks after every measured one (its first probe
// measures it soon; until then the known quantity wins). Remaining ties keep config order,
// so the order is deterministic. `health` is an array of cfg.endpoint_count entries, or
// nullptr to treat every endpoint as HEALTHY with no latency.
//
// A DOWN endpoint its probe cannot confirm, with a trial slot open (health_trial_open with
// cfg.agent.trial_requests), is a candidate like a serving one, ranked by the same rules,
// with trial = true: the request that reaches it first takes the slot, the rest find it
// unusable and go on to the next candidate.
//
// Panic routing (as Envoy's): when no candidate of the whole chain can serve but some are
// only DOWN (not key_bad, not rate limited for that model), those DOWN ones are returned
// instead, in the same order, each with panic = true: a request is tried on an ejected
// endpoint rather than answered 503 without an attempt. Returns the number written (at
// most cap).
size_t router_candidates(const Config& cfg, const Health* health, const char* requested_model, uint64_t now_ms,
                         Candidate* out, size_t cap);

// The same for an explicit list of models, in that order, without their [fallback] chains
// (the [context_fallback] models a request moves to after a context_length_exceeded).
size_t router_candidates_among(const Config& cfg, const Health* health, const char* const* models, size_t count,
                               uint64_t now_ms, Candidate* out, size_t cap);

// The [context_fallback] rule for `model`, or nullptr.
const FallbackRule* router_context_rule(const Config& cfg, const char* model);

// Whether candidate `c` (from router_candidates) may still be tried at `now_ms`, as health
// may have changed since the list was made: health_can_serve for its model, or, for a
// panic candidate, DOWN and neither key_bad nor rate limited for its model.
bool router_candidate_usable(const Health& h, const Candidate& c, uint64_t now_ms, uint32_t trial_requests = 1);

// A usable candidate is tried as a trial (health_trial_begin before, Observation::trial after)
// when it was listed as one and still cannot serve otherwise.
bool router_candidate_is_trial(const Health& h, const Candidate& c, uint64_t now_ms);

// Soonest monotonic time at which some endpoint listing some model of the chain may serve
// it (health_serve_after_ms), for Retry-After on a 503. now_ms if one can serve now;
// UINT64_MAX if no endpoint lists any chain model or all of them have bad keys.
uint64_t router_soonest_serve_ms(const Config& cfg, const Health* health, const char* requested_model,
                                 uint64_t now_ms);

// True when some endpoint lists `model` or [fallback] has a rule for it; false means the
// request gets 404 model_not_found.
bool router_model_known(const Config& cfg, const char* model);

}  // namespace ew
