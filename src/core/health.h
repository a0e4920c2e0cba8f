// Per-endpoint health: latency EWMA, ring of recent results, score, state machine.
// Pure: no I/O, time is passed in as monotonic milliseconds. Probes and forwarded
// requests (passive health) report what they saw through the same health_observe(),
// which holds the one rule for what a 429, a 401/403, a 4xx or a failure does to health.
#pragma once
#include <stddef.h>
#include <stdint.h>
#include "core/caps.h"
#include "core/upstream_error.h"

// How long an upstream's error body keeps a key or a model out of use (upstream_error.h):
// a 429 insufficient_quota (the account's quota or credit is spent: it does not come back
// in seconds, so not a rate limit), and a 404 model_not_found for one (endpoint, model).
#ifndef EW_KEY_EXHAUSTED_MS
#define EW_KEY_EXHAUSTED_MS 3600000u     // one hour
#endif
#ifndef EW_MODEL_UNAVAILABLE_MS
#define EW_MODEL_UNAVAILABLE_MS 300000u  // five minutes
#endif

namespace ew {

// How one probe or one forwarded attempt ended.
enum class ResultKind : uint8_t { ok, timeout, connect, tls, http_status, bad_response };

enum class HealthState : uint8_t { healthy, degraded, down, rate_limited };

// What a check looks at, cheapest first: a failure is seen at a level, and only a success at
// that level or deeper proves it is over (a /models 200 says nothing about chat 503s). A
// connect error is seen at tcp, a handshake error at tls, anything else at the level of the
// check that met it: models for a /models probe, chat for a chat probe or live traffic.
// `none` on an Observation from a probe means "this check sees everything" (chat).
enum class CheckLevel : uint8_t { none, tcp, tls, models, chat };

struct Outcome {
    ResultKind kind = ResultKind::ok;
    uint32_t latency_ms = 0;   // time to response head (or connect, for tcp/tls probes)
    uint16_t http_status = 0;  // when kind == http_status (or ok with a status)
    const char* error = "";    // short human text, e.g. "certificate: unknown CA"; may be ""
    CheckLevel level = CheckLevel::chat;  // what the check that saw it looks at (see CheckLevel)
    bool trial = false;        // a live request let through to a DOWN endpoint as a trial
};

struct HealthParams {
    uint32_t fall = 3;                   // consecutive failures to go DOWN
    uint32_t rise = 2;                   // consecutive successes to come back
    uint32_t cooldown_base_ms = 5000;    // shortest ejection ([probe] down_interval_ms)
    uint32_t cooldown_max_ms = 60000;    // longest ejection ([probe] cooldown_max_ms)
    // The cooldown doubles only for an endpoint that flaps: ejected again less than
    // flap_factor x its last cooldown after it came back (defaults: back from 5 s and DOWN
    // again within 20 s gives 10 s, then 20 s, 40 s, 60 s). One doubling is undone per
    // cooldown_decay_ms of serving without an ejection.
    uint32_t flap_factor = 4;
    uint32_t cooldown_decay_ms = 120000;
    uint32_t rate_limit_default_ms = 1000;  // a 429 without Retry-After limits for this long
    uint32_t key_exhausted_ms = EW_KEY_EXHAUSTED_MS;        // a 429 insufficient_quota
    uint32_t model_unavailable_ms = EW_MODEL_UNAVAILABLE_MS;  // a 404 model_not_found
    float ewma_alpha = 0.2f;
    uint32_t latency_good_ms = 1000;     // latency score 100 at or below this
    uint32_t latency_bad_ms = 10000;     // latency score 0 at or above this
    float healthy_above = 70.0f;         // status classes (seed thresholds)
    float degraded_above = 50.0f;
    // A DOWN endpoint that its own probe cannot confirm (taken down by failures deeper than
    // the probe looks: chat 503s under a /models probe) gets this many live requests at a
    // time as a trial once its cooldown is over ([agent] trial_requests); that many trial
    // successes bring it back, one failed trial keeps it DOWN for one more down interval.
    uint32_t trial_requests = 1;
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
    // The key's quota is spent (a 429 insufficient_quota) until then: not served, and not
    // cleared by a probe (listing models needs no quota), only by time.
    uint64_t key_exhausted_until_ms = 0;
    // The endpoint said it has no such model (a 404 model_not_found) until then, by model index.
    uint64_t model_unavailable_until_ms[EW_CAP_MODELS_PER_ENDPOINT] = {};
    // The host name has no address yet (DNS): not served, and not a failure of the upstream.
    // Set by the agent from its resolver; the state machine above is left as it was.
    bool name_unresolved = false;
    ResultKind last_kind = ResultKind::ok;
    uint16_t last_http_status = 0;
    char last_error[EW_CAP_ERROR_TEXT] = "";
    // ring of the last EW_CAP_HISTORY results: 1 = success
    uint8_t ring[EW_CAP_HISTORY] = {};
    uint32_t ring_pos = 0;
    uint32_t ring_count = 0;
    // Cooldown growth: the next ejection lasts cooldown_base_ms doubled cooldown_level times
    // (capped at cooldown_max_ms). `ejections` above is the lifetime total, for metrics.
    uint32_t cooldown_level = 0;
    uint32_t cooldown_ms = 0;       // length of the current/last cooldown
    uint32_t down_probe_ms = 0;     // probe interval while DOWN (cooldown_base_ms), for estimates
    uint64_t returned_ms = 0;       // when it last left DOWN; 0 = never was DOWN
    uint64_t decay_from_ms = 0;     // serving without an ejection since (decay steps move it)
    // Recovery confirmed by what failed (health_recovery.cpp explains it for /status).
    CheckLevel probe_level = CheckLevel::chat;  // what this endpoint's active probe checks now (set by the probe)
    CheckLevel streak_level = CheckLevel::none; // deepest failure since the last success
    bool streak_traffic = false;    // ... and it was seen by live traffic
    CheckLevel down_level = CheckLevel::none;   // while DOWN: the deepest failure since it was ejected
    bool down_by_traffic = false;   // ... seen by live traffic (else by a probe)
    // The deepest failure a probe itself met in the streak / while DOWN (none: the probes
    // never failed). A probe that failed in this outage saw it: its success confirms it,
    // even when live traffic failed deeper (everything answering 500, then everything 200).
    CheckLevel streak_probe_level = CheckLevel::none;
    CheckLevel down_probe_level = CheckLevel::none;
    uint32_t down_failures = 0;     // the failure streak that ejected it
    uint64_t down_since_ms = 0;     // when it was ejected
    uint64_t trial_at_ms = 0;       // DOWN: earliest start of a trial (cooldown end; a failed trial adds a down interval)
    uint32_t trials_in_flight = 0;  // trials started and not yet reported ...
    uint64_t trial_until_ms = 0;    // ... counted until this deadline (a trial whose client left frees its slot here)
    uint32_t trials_ok = 0;         // trial successes towards trial_requests
    uint64_t trials_started = 0;    // lifetime, for metrics
    uint64_t trials_passed = 0;
    uint64_t trials_failed = 0;
    uint64_t unconfirmed_probes = 0;  // probe successes that could not confirm a deeper failure (lifetime)
    uint64_t last_traffic_ok_ms = 0;  // last successful live request (0 = none): fresher than a probe
};

// What one probe or one forwarded attempt saw, for health_observe().
struct Observation {
    ResultKind kind = ResultKind::ok;
    uint16_t http_status = 0;        // the response status, when one arrived (0 = none)
    uint32_t latency_ms = 0;         // time to the response head (or connect, for tcp/tls probes)
    int model_index = -1;            // -1: the whole endpoint
    bool has_retry_after = false;    // Retry-After / retry-after-ms, already parsed
    uint64_t retry_after_ms = 0;
    const char* error = "";          // short text for last_error (may be "")
    bool from_probe = false;
    ErrorMeaning meaning = ErrorMeaning::none;  // what the error body said (upstream_error.h)
    CheckLevel level = CheckLevel::none;  // a probe: what it checks (none = sees everything); traffic: chat
    bool trial = false;              // a trial request (health_trial_begin) reporting its end
};

enum class ObservationEffect : uint8_t { success, failure, rate_limited, key_bad, key_exhausted, model_unavailable };

// The one rule for what an outcome does to health, whoever saw it:
//   meaning      (an error body read for its meaning, upstream_error.h)
//                insufficient_quota: the key is exhausted for key_exhausted_ms
//                (health_key_exhausted); model_not_found: that model (model_index) is
//                unavailable on the endpoint for model_unavailable_ms. Neither is a health
//                failure (the service answered); context_length_exceeded is a 400 as below.
//   429          RATE_LIMITED (the model, or the whole endpoint for model_index -1) until
//                now + retry_after_ms, or now + rate_limit_default_ms without one; not a
//                health failure; last_error "HTTP 429: rate limited for N ms".
//   401, 403     the key is bad (health_key_bad); not a health failure.
//   traffic      (from_probe false) a 2xx, or a status the client is shown as it is
//                (400, 404, 422, other 4xx, 1xx/3xx: classify_attempt's return_to_client)
//                is a success of the service.
//   probe        only a 2xx (or ok without a status: tcp/tls probes) is a success.
//   otherwise    connect, tls, timeout, bad_response, 408, 5xx, a probe's other statuses:
//                a failure (health_record).
// Every observation counts once: in `requests` (traffic) or in probes_ok / probes_failed
// (a probe's 429 or 401/403 counts as failed, though not as a health failure), and sets
// last_kind / last_http_status.
ObservationEffect health_observe(Health* h, const HealthParams& p, const Observation& o, uint64_t now_ms);
const char* to_string(ObservationEffect e);  // "success", "failure", "rate_limited", "key_bad", ...

void health_init(Health* h);

// The steps health_observe() is made of; callers outside the core use health_observe().
//
// Feeds one result: success when o.kind is ok, whatever the status. `from_probe` counts it
// as a probe, else as a forwarded request. `fall` consecutive failures eject the endpoint
// (DOWN) for its cooldown. It comes back with `rise` consecutive successes once the cooldown
// is over, or at once when the rise-th success is a probe's (a good probe ends it early).
// A success with an HTTP status clears key_bad (one without, a tcp/tls probe's, cannot).
void health_record(Health* h, const HealthParams& p, const Outcome& o, uint64_t now_ms, bool from_probe);

// Marks the endpoint (model_index < 0) or one of its models RATE_LIMITED until `until_ms`.
void health_rate_limit(Health* h, int model_index, uint64_t until_ms, uint64_t now_ms);

// Marks the API key bad after a 401/403 (not a health failure of the service).
void health_key_bad(Health* h, uint16_t status, uint64_t now_ms);

// Marks the key's quota spent (429 insufficient_quota) until `until_ms` (the later of two).
void health_key_exhausted(Health* h, uint64_t until_ms, uint64_t now_ms);

// True while the key is exhausted (key_exhausted_until_ms in the future).
bool health_key_exhausted_now(const Health& h, uint64_t now_ms);

// Advances time-driven transitions (rate limit expiry, cooldown end). Call before reading state.
void health_tick(Health* h, const HealthParams& p, uint64_t now_ms);

// Half-open recovery. An endpoint DOWN by a failure deeper than its probe checks (down_level
// above probe_level) comes back only by a probe at that level (rise successes, as always) or
// by trials: once now >= trial_at_ms, up to p.trial_requests live requests at a time may be
// sent to it (health_trial_open, with p.trial_requests), each announced with health_trial_begin and reported with
// Observation::trial; trial_requests successes make it serve again at once, one failure
// keeps it DOWN and moves trial_at_ms one down interval on. A probe success below
// health_confirm_level changes nothing but the probe count (unconfirmed_probes).
bool health_needs_trial(const Health& h);
// The level a success must reach to count towards leaving DOWN: down_level, or the level a
// failed probe saw in this outage when that is lower.
CheckLevel health_confirm_level(const Health& h);
bool health_trial_open(const Health& h, uint32_t trial_requests, int model_index, uint64_t now_ms);
// A trial attempt starts; it holds its slot until reported or until `until_ms` (its deadline).
void health_trial_begin(Health* h, uint64_t until_ms, uint64_t now_ms);
// Trials started and not reported at `now_ms` (expired slots do not count).
uint32_t health_trials_in_flight(const Health& h, uint64_t now_ms);
// A trial ended without an outcome for the endpoint (the client left, the deadline passed
// in back-off): its slot is free again, nothing else changes.
void health_trial_abandon(Health* h);

// True when a request for the model (index, or -1 for any) may be sent now: not DOWN, no
// bad or exhausted key, no rate limit, and (index >= 0) the model neither rate limited nor
// unavailable (model_not_found).
bool health_can_serve(const Health& h, int model_index, uint64_t now_ms);

// Earliest time >= now at which health_can_serve may become true, as an estimate for a
// Retry-After header: `now` when it can serve; the end of the endpoint's (and, for
// model_index >= 0, the model's) rate limit; for DOWN the earlier of the cooldown end and
// now + one DOWN probe interval (a good probe may end the cooldown early).
// UINT64_MAX when the key is bad (needs an operator, not time). An exhausted key or an
// unavailable model (index >= 0) holds it off until its time ends.
uint64_t health_serve_after_ms(const Health& h, int model_index, uint64_t now_ms);

// Fraction of successes in the ring, 0..1 (1 when empty).
float health_success_ratio(const Health& h);

// Score = 0.7 * (ring success ratio * 100) + 0.3 * latency score, where the latency score is
// 100 at EWMA <= latency_good_ms falling linearly to 0 at latency_bad_ms (slower = lower;
// 100 while no latency is known). health_record() stores it in Health::score.
float health_compute_score(const Health& h, const HealthParams& p);

// "healthy" | "degraded" | "unhealthy" from the score (seed thresholds: > healthy_above,
// > degraded_above); always "unhealthy" while DOWN, with a bad key or an unresolved name.
const char* health_status_class(const Health& h, const HealthParams& p);

const char* to_string(HealthState s);  // "HEALTHY", "DEGRADED", "DOWN", "RATE_LIMITED"
const char* to_string(ResultKind k);   // "ok", "timeout", "connect", "tls", "http_status", "bad_response"

}  // namespace ew
