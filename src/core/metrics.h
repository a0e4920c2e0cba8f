// Counters and histograms behind /metrics (Prometheus text 0.0.4) and /status.
// Fixed tables only; labels come from the configuration, so cardinality is bounded.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "core/caps.h"
#include "core/config.h"
#include "core/health.h"
#include "core/hedge.h"
#include "core/strbuf.h"

namespace ew {
constexpr size_t kResultKinds = 6;      // ResultKind values
constexpr size_t kHistogramBuckets = 14;  // 50 ms .. 300 s, then +Inf
// Per-minute request counts for the status page's chart; one cell without the full page.
constexpr size_t kMinuteRing = EW_STATUS_PAGE ? EW_CAP_STATUS_MINUTES : 1;
constexpr uint8_t kNoEndpoint = 255;    // an answer edgeway made itself
constexpr uint8_t kNoSlot = 255;
constexpr uint16_t kNoModelRef = 0xFFFF;  // a model the configuration does not know

enum class AttemptOutcome : uint8_t { ok, connect, tls, timeout, http_4xx, http_429, http_5xx, bad_response, count };
enum class FailoverReason : uint8_t { connect, tls, timeout, rate_limited, server_error, auth, bad_response, first_token,
                                      quota, context_length, model_not_found, count };

#if EW_HISTOGRAM_BUCKET_BITS == 32
typedef uint32_t HistogramBucket;  // a device profile (caps.h): half the RAM of the pairs' histograms
#else
typedef uint64_t HistogramBucket;
#endif

struct Histogram {
    HistogramBucket buckets[kHistogramBuckets] = {};  // cumulative at render time, per-bucket here
    uint64_t count = 0;
    double sum_s = 0;
    void observe_ms(uint64_t ms);
};

// The histograms of one (endpoint, served model) pair, made on its first answer: the
// table holds EW_CAP_HISTOGRAM_PAIRS of the configuration's pairs (the ones in use).
struct HistogramPair {
    uint8_t endpoint = kNoEndpoint;
    uint8_t model_slot = kNoSlot;
    Histogram duration;
    Histogram first_token;
};

// A model name as a small number the configuration resolves: endpoint * EW_CAP_MODELS_PER_ENDPOINT
// + slot (the first endpoint listing it), kFallbackRef + rule for a name only [fallback] knows,
// kNoModelRef otherwise. Keeps the requested-model label bounded by the configuration.
constexpr uint16_t kFallbackRef = 0x4000;
uint16_t model_ref(const Config& cfg, const char* name);
const char* model_ref_name(const Config& cfg, uint16_t ref);  // "none" for kNoModelRef

struct RequestSeries {
    uint8_t endpoint;    // kNoEndpoint: answered by edgeway itself
    uint8_t model_slot;  // served model: index into the endpoint's models; kNoSlot = none
    uint16_t requested;  // model_ref of the requested model
    uint16_t status;     // what the client saw (a stream broken after 200 counts as 200)
    uint64_t count;
};

// One finished client request, as the metrics see it.
struct RequestRecord {
    uint8_t endpoint = kNoEndpoint;  // the endpoint whose answer was relayed
    uint8_t model_slot = kNoSlot;
    uint16_t requested = kNoModelRef;
    uint16_t status = 0;
    uint64_t duration_ms = 0;
    bool broken = false;     // committed, then cut (the client saw `status`, then an error event)
    bool failed_over = false;
    uint64_t now_ms = 0;
};

// Fleet telemetry (net/telemetry.h), for /metrics; kept across a reload's metrics reset.
struct TelemetryStats {
    bool on = false;            // [telemetry] is configured
    bool connected = false;     // a broker accepted the session (CONNACK 0)
    uint64_t published = 0;     // QoS 1 documents the broker acknowledged
    uint64_t dropped = 0;       // documents dropped from a full queue (oldest first)
    uint64_t connects = 0;      // sessions accepted by the broker
    uint64_t connect_failures = 0;  // attempts that ended before a session (DNS, TCP, TLS, CONNACK, timeout)
    uint32_t queued = 0;        // documents waiting or unacknowledged now
};

struct Metrics {
    uint64_t probes[EW_CAP_ENDPOINTS][kResultKinds] = {};
    uint64_t attempts[EW_CAP_ENDPOINTS][static_cast<size_t>(AttemptOutcome::count)] = {};
    uint64_t failovers[static_cast<size_t>(FailoverReason::count)] = {};
    // By the endpoint whose attempt failed before another was tried.
    uint64_t failovers_from[EW_CAP_ENDPOINTS][static_cast<size_t>(FailoverReason::count)] = {};
    uint64_t streams_broken[EW_CAP_ENDPOINTS] = {};
    uint64_t prompt_tokens[EW_CAP_ENDPOINTS][EW_CAP_MODELS_PER_ENDPOINT] = {};
    uint64_t completion_tokens[EW_CAP_ENDPOINTS][EW_CAP_MODELS_PER_ENDPOINT] = {};
    RequestSeries series[EW_CAP_REQUEST_SERIES] = {};
    size_t series_count = 0;
    uint64_t series_dropped = 0;
    HistogramPair pairs[EW_CAP_HISTOGRAM_PAIRS];
    size_t pair_count = 0;
    uint64_t pairs_dropped = 0;  // observations of a pair that found the table full
    Histogram edgeway_duration;  // answers edgeway made itself
    // State changes as logged (src/net/state_log): what was last seen, since when, how often.
    uint8_t seen_state[EW_CAP_ENDPOINTS] = {};  // HealthState
    uint64_t state_since_ms[EW_CAP_ENDPOINTS] = {};  // 0: since start
    uint64_t transitions[EW_CAP_ENDPOINTS] = {};
    // Requests, failovers and edgeway-made errors per minute, the last kMinuteRing minutes.
    uint32_t minute_requests[kMinuteRing] = {};
    uint32_t minute_failovers[kMinuteRing] = {};
    uint32_t minute_errors[kMinuteRing] = {};
    uint64_t minute_last = 0;  // now_ms / 60000 of the newest cell
    uint64_t in_flight = 0;
    // The seed's totals.
    uint64_t total = 0;
    uint64_t success = 0;
    uint64_t failed = 0;
    uint64_t fallback_triggered = 0;
    uint64_t latency_sum_ms = 0;  // of successful requests, time to answer (no retries' sleeps)
    uint64_t rejected_full = 0;   // clients refused: connection table full
    uint64_t clients_evicted = 0; // idle or incomplete connections closed to admit a new client
    uint64_t clients_active = 0;
    uint64_t cors_rejected = 0;   // requests from a browser origin cors_origins does not allow
    // Active probes (half-open recovery, metrics_recovery.cpp): skipped because live traffic
    // succeeded within the interval, chat probes run as models probes for want of token
    // budget, and the tokens chat probes spent.
    uint64_t probes_skipped_fresh[EW_CAP_ENDPOINTS] = {};
    uint64_t probes_as_models[EW_CAP_ENDPOINTS] = {};
    uint64_t probe_tokens[EW_CAP_ENDPOINTS] = {};
    uint64_t probe_budget_limit = 0;        // [agent] probe_budget_tokens_per_day (0 = no cap)
    uint64_t probe_budget_spent = 0;        // in the current 24 h
    TelemetryStats telemetry;
    HedgeStats hedge;             // hedged first tokens: budget, recent delivery times, counters

    void count_probe(size_t endpoint, ResultKind k);
    void count_request(const RequestRecord& r);
    void observe_first_token(uint8_t endpoint, uint8_t model_slot, uint64_t ms);
    // The pair's histograms, made on first use; nullptr when the table is full.
    HistogramPair* pair(uint8_t endpoint, uint8_t model_slot);
    // Moves the minute ring to now (cells of minutes without traffic become 0).
    void advance_minutes(uint64_t now_ms);
};

// What the process and the network layer know, for /metrics.
struct ProcessView {
    int64_t resident_bytes = -1;
    int64_t start_wall_ms = -1;
    int64_t open_fds = -1;
    int64_t max_fds = -1;
    uint64_t wall_ms = 0;  // 0: no clock
};

// One endpoint's name resolution, for /status and /metrics (the agent fills it from its
// resolver; the core knows nothing of DNS).
struct NameView {
    const char* state = "numeric";  // numeric | resolved | refreshing | unresolved
    const char* error = "";         // unresolved: why ("dns: NXDOMAIN for HOST"); else the last refresh failure
    char address[48] = "";          // the address new connections use; "" while unresolved
    uint32_t addresses = 0;         // A/AAAA addresses held
    uint32_t ttl_ms = 0;            // refresh interval of the last answer (clamped)
    uint64_t lookups = 0;
    uint64_t failures = 0;
    uint64_t changes = 0;           // answers that changed the address set
};

struct MetricsView {
    const Config* cfg;
    const Health* health;    // [cfg->endpoint_count]
    const HealthParams* params;
    const Metrics* m;
    uint64_t now_ms;
    uint64_t started_ms;
    const NameView* names = nullptr;  // [cfg->endpoint_count], or nullptr: not shown
    uint64_t dns_heap_bytes = 0;      // the resolver's memory now, and its peak
    uint64_t dns_heap_peak_bytes = 0;
    ProcessView process = {};
};

// Prometheus text format 0.0.4.
void metrics_render_prometheus(const MetricsView& v, StrBuf* out);
// The trial and probe-skip series (metrics_recovery.cpp), part of metrics_render_prometheus.
void metrics_render_recovery_prometheus(const MetricsView& v, StrBuf* out);
// The /status JSON document.
void metrics_render_status(const MetricsView& v, StrBuf* out);
const char* to_string(AttemptOutcome o);
const char* to_string(FailoverReason r);

}  // namespace ew
