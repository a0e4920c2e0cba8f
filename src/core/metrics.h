// Counters and histograms behind /metrics (Prometheus text 0.0.4) and /status.
// Fixed tables only; labels come from the configuration, so cardinality is bounded.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "core/caps.h"
#include "core/config.h"
#include "core/health.h"
#include "core/strbuf.h"

namespace ew {
constexpr size_t kResultKinds = 6;      // ResultKind values
constexpr size_t kHistogramBuckets = 12;

enum class AttemptOutcome : uint8_t { ok, connect, tls, timeout, http_4xx, http_429, http_5xx, bad_response, count };
enum class FailoverReason : uint8_t { connect, tls, timeout, rate_limited, server_error, auth, bad_response, first_token, count };

struct Histogram {
    uint64_t buckets[kHistogramBuckets] = {};  // cumulative at render time, per-bucket here
    uint64_t count = 0;
    double sum_s = 0;
    void observe_ms(uint64_t ms);
};

struct RequestSeries {
    uint8_t endpoint;    // 255 = none (answered by edgeway itself)
    uint8_t model_slot;  // index into the endpoint's models; 255 = none
    uint16_t status;
    uint64_t count;
};

struct Metrics {
    uint64_t probes[EW_CAP_ENDPOINTS][kResultKinds] = {};
    uint64_t attempts[EW_CAP_ENDPOINTS][static_cast<size_t>(AttemptOutcome::count)] = {};
    uint64_t failovers[static_cast<size_t>(FailoverReason::count)] = {};
    uint64_t prompt_tokens[EW_CAP_ENDPOINTS][EW_CAP_MODELS_PER_ENDPOINT] = {};
    uint64_t completion_tokens[EW_CAP_ENDPOINTS][EW_CAP_MODELS_PER_ENDPOINT] = {};
    RequestSeries series[EW_CAP_REQUEST_SERIES] = {};
    size_t series_count = 0;
    uint64_t series_dropped = 0;
    Histogram request_duration;
    Histogram first_token;
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

    void count_probe(size_t endpoint, ResultKind k);
    void count_request(uint8_t endpoint, uint8_t model_slot, uint16_t status);
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
};

// Prometheus text format 0.0.4.
void metrics_render_prometheus(const MetricsView& v, StrBuf* out);
// The /status JSON document.
void metrics_render_status(const MetricsView& v, StrBuf* out);
const char* to_string(AttemptOutcome o);
const char* to_string(FailoverReason r);

}  // namespace ew
