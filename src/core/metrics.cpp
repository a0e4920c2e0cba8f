#include "core/metrics.h"

#include "core/health_recovery.h"

#include <string.h>

namespace ew {
namespace {

// Upper bounds in milliseconds; the last bucket is +Inf. Long streams reach minutes.
const uint32_t kBucketMs[kHistogramBuckets - 1] = {50,    100,   250,   500,   1000,   2500,  5000,
                                                   10000, 20000, 30000, 60000, 120000, 300000};

const char* const kStates[] = {"HEALTHY", "DEGRADED", "DOWN", "RATE_LIMITED"};

typedef unsigned long long ull;

void render_histogram(StrBuf* out, const char* name, const char* labels, const Histogram& h) {
    uint64_t cumulative = 0;
    for (size_t i = 0; i + 1 < kHistogramBuckets; i++) {
        cumulative += h.buckets[i];
        out->appendf("%s_bucket{%s,le=\"%g\"} %llu\n", name, labels, kBucketMs[i] / 1000.0, static_cast<ull>(cumulative));
    }
    out->appendf("%s_bucket{%s,le=\"+Inf\"} %llu\n%s_sum{%s} %.6f\n%s_count{%s} %llu\n", name, labels,
                 static_cast<ull>(h.count), name, labels, h.sum_s, name, labels, static_cast<ull>(h.count));
}

// One series per pair in use, in order of first use; the labels come from the configuration.
void render_histograms(StrBuf* out, const Config& cfg, const char* name, const char* help, const Metrics& m,
                       bool first_token) {
    out->appendf("# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    char labels[EW_CAP_NAME + EW_CAP_MODEL_NAME + 64];
    for (size_t i = 0; i < m.pair_count; i++) {
        const HistogramPair& p = m.pairs[i];
        const Histogram& h = first_token ? p.first_token : p.duration;
        if (h.count == 0 || p.endpoint >= cfg.endpoint_count || p.model_slot >= cfg.endpoints[p.endpoint].model_count)
            continue;
        StrBuf l(labels, sizeof labels);
        l.appendf("endpoint=\"%s\",model=\"%s\"", cfg.endpoints[p.endpoint].name,
                  cfg.endpoints[p.endpoint].models[p.model_slot]);
        render_histogram(out, name, labels, h);
    }
    if (!first_token && m.edgeway_duration.count)
        render_histogram(out, name, "endpoint=\"none\",model=\"none\"", m.edgeway_duration);
}

// A Prometheus label value: backslash, quote and newline escaped.
void append_label(StrBuf* out, const char* s) {
    for (; *s; s++) {
        if (*s == '\\' || *s == '"') {
            char esc[2] = {'\\', *s};
            out->append(esc, 2);
        } else if (*s == '\n') {
            out->append("\\n");
        } else {
            out->append(s, 1);
        }
    }
}

bool unresolved(const MetricsView& v, uint32_t e) { return v.health[e].name_unresolved; }

void render_names_prometheus(const MetricsView& v, StrBuf* out) {
    const Config& cfg = *v.cfg;
    out->append("# HELP edgeway_endpoint_dns_resolved 1 when the endpoint's host has an address (numeric hosts "
                "always).\n# TYPE edgeway_endpoint_dns_resolved gauge\n");
    for (uint32_t e = 0; e < cfg.endpoint_count; e++)
        out->appendf("edgeway_endpoint_dns_resolved{endpoint=\"%s\"} %d\n", cfg.endpoints[e].name,
                     unresolved(v, e) ? 0 : 1);
    out->append("# HELP edgeway_endpoint_dns_unresolved 1 while the endpoint's host name does not resolve, with "
                "the reason.\n# TYPE edgeway_endpoint_dns_unresolved gauge\n");
    for (uint32_t e = 0; e < cfg.endpoint_count; e++) {
        if (!unresolved(v, e)) continue;
        out->appendf("edgeway_endpoint_dns_unresolved{endpoint=\"%s\",reason=\"", cfg.endpoints[e].name);
        append_label(out, v.names[e].error);
        out->append("\"} 1\n");
    }
    struct Counter {
        const char* name;
        const char* help;
        uint64_t NameView::*field;
    };
    const Counter counters[] = {
        {"edgeway_dns_lookups_total", "DNS answers received per endpoint host, good or bad.", &NameView::lookups},
        {"edgeway_dns_failures_total", "DNS lookups that failed (NXDOMAIN, SERVFAIL, timeout...).", &NameView::failures},
        {"edgeway_dns_address_changes_total", "DNS answers that changed an endpoint's addresses.", &NameView::changes},
    };
    for (const Counter& c : counters) {
        out->appendf("# HELP %s %s\n# TYPE %s counter\n", c.name, c.help, c.name);
        for (uint32_t e = 0; e < cfg.endpoint_count; e++)
            out->appendf("%s{endpoint=\"%s\"} %llu\n", c.name, cfg.endpoints[e].name,
                         static_cast<unsigned long long>(v.names[e].*c.field));
    }
    out->appendf("# HELP edgeway_dns_heap_bytes Memory the resolver holds (bounded allocator).\n"
                 "# TYPE edgeway_dns_heap_bytes gauge\nedgeway_dns_heap_bytes %llu\n"
                 "# HELP edgeway_dns_heap_peak_bytes Most memory the resolver ever held.\n"
                 "# TYPE edgeway_dns_heap_peak_bytes gauge\nedgeway_dns_heap_peak_bytes %llu\n",
                 static_cast<unsigned long long>(v.dns_heap_bytes), static_cast<unsigned long long>(v.dns_heap_peak_bytes));
}

void render_name_status(const NameView& n, StrBuf* out) {
    out->appendf(",\"dns\":{\"state\":\"%s\",\"address\":", n.state);
    if (n.address[0]) {
        out->append("\"");
        out->append_json_escaped(n.address);
        out->append("\"");
    } else {
        out->append("null");
    }
    out->appendf(",\"addresses\":%u,\"ttl_ms\":%u,\"lookups\":%llu,\"failures\":%llu,\"changes\":%llu,\"error\":\"",
                 static_cast<unsigned>(n.addresses), static_cast<unsigned>(n.ttl_ms),
                 static_cast<unsigned long long>(n.lookups), static_cast<unsigned long long>(n.failures),
                 static_cast<unsigned long long>(n.changes));
    out->append_json_escaped(n.error);
    out->append("\"}");
}

void json_opt_age(StrBuf* out, const char* key, uint64_t at, uint64_t now) {
    if (at == 0)
        out->appendf(",\"%s\":null", key);
    else
        out->appendf(",\"%s\":%llu", key, static_cast<ull>(now >= at ? now - at : 0));
}

void gauge_head(StrBuf* out, const char* name, const char* help, const char* type = "gauge") {
    out->appendf("# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

// Monotonic `at` as Unix seconds (the wall clock now minus the distance), 0 when past or no clock.
double wall_seconds(const MetricsView& v, uint64_t at) {
    if (at <= v.now_ms || v.process.wall_ms == 0) return 0;
    return static_cast<double>(v.process.wall_ms + (at - v.now_ms)) / 1000.0;
}

}  // namespace

void Histogram::observe_ms(uint64_t ms) {
    size_t i = 0;
    while (i + 1 < kHistogramBuckets && ms > kBucketMs[i]) i++;
    buckets[i]++;
    count++;
    sum_s += static_cast<double>(ms) / 1000.0;
}

uint16_t model_ref(const Config& cfg, const char* name) {
    if (!name || !name[0]) return kNoModelRef;
    for (uint32_t e = 0; e < cfg.endpoint_count; e++)
        for (uint32_t s = 0; s < cfg.endpoints[e].model_count; s++)
            if (strcmp(cfg.endpoints[e].models[s], name) == 0)
                return static_cast<uint16_t>(e * EW_CAP_MODELS_PER_ENDPOINT + s);
    for (uint32_t r = 0; r < cfg.fallback_count; r++)
        if (strcmp(cfg.fallback[r].model, name) == 0) return static_cast<uint16_t>(kFallbackRef + r);
    return kNoModelRef;
}

const char* model_ref_name(const Config& cfg, uint16_t ref) {
    if (ref == kNoModelRef) return "none";
    if (ref >= kFallbackRef) {
        uint32_t r = ref - kFallbackRef;
        return r < cfg.fallback_count ? cfg.fallback[r].model : "none";
    }
    uint32_t e = ref / EW_CAP_MODELS_PER_ENDPOINT, s = ref % EW_CAP_MODELS_PER_ENDPOINT;
    return e < cfg.endpoint_count && s < cfg.endpoints[e].model_count ? cfg.endpoints[e].models[s] : "none";
}

void Metrics::count_probe(size_t endpoint, ResultKind k) {
    if (endpoint < EW_CAP_ENDPOINTS) probes[endpoint][static_cast<size_t>(k)]++;
}

void Metrics::advance_minutes(uint64_t now_ms) {
    uint64_t minute = now_ms / 60000;
    if (minute <= minute_last) return;
    uint64_t steps = minute - minute_last;
    if (steps > kMinuteRing) steps = kMinuteRing;
    for (uint64_t i = 1; i <= steps; i++) {
        size_t cell = static_cast<size_t>((minute_last + i) % kMinuteRing);
        minute_requests[cell] = minute_failovers[cell] = minute_errors[cell] = 0;
    }
    minute_last = minute;
}

void Metrics::count_request(const RequestRecord& r) {
    bool upstream = r.endpoint < EW_CAP_ENDPOINTS && r.model_slot < EW_CAP_MODELS_PER_ENDPOINT;
    if (upstream) {
        if (HistogramPair* p = pair(r.endpoint, r.model_slot)) p->duration.observe_ms(r.duration_ms);
    } else {
        edgeway_duration.observe_ms(r.duration_ms);
    }
    if (r.broken && r.endpoint < EW_CAP_ENDPOINTS) streams_broken[r.endpoint]++;
    advance_minutes(r.now_ms);
    size_t cell = static_cast<size_t>(minute_last % kMinuteRing);
    minute_requests[cell]++;
    if (r.failed_over) minute_failovers[cell]++;
    if (r.status >= 500 || r.broken) minute_errors[cell]++;
    uint8_t ep = upstream ? r.endpoint : kNoEndpoint;
    uint8_t slot = upstream ? r.model_slot : kNoSlot;
    for (size_t i = 0; i < series_count; i++) {
        RequestSeries& s = series[i];
        if (s.endpoint == ep && s.model_slot == slot && s.requested == r.requested && s.status == r.status) {
            s.count++;
            return;
        }
    }
    if (series_count == EW_CAP_REQUEST_SERIES) {
        series_dropped++;
        return;
    }
    series[series_count++] = RequestSeries{ep, slot, r.requested, r.status, 1};
}

void Metrics::observe_first_token(uint8_t endpoint, uint8_t model_slot, uint64_t ms) {
    if (endpoint < EW_CAP_ENDPOINTS && model_slot < EW_CAP_MODELS_PER_ENDPOINT)
        if (HistogramPair* p = pair(endpoint, model_slot)) p->first_token.observe_ms(ms);
}

HistogramPair* Metrics::pair(uint8_t endpoint, uint8_t model_slot) {
    for (size_t i = 0; i < pair_count; i++)
        if (pairs[i].endpoint == endpoint && pairs[i].model_slot == model_slot) return &pairs[i];
    if (pair_count == EW_CAP_HISTOGRAM_PAIRS) {
        pairs_dropped++;
        return nullptr;
    }
    HistogramPair& p = pairs[pair_count++];
    p.endpoint = endpoint;
    p.model_slot = model_slot;
    return &p;
}

const char* to_string(AttemptOutcome o) {
    switch (o) {
        case AttemptOutcome::ok: return "ok";
        case AttemptOutcome::connect: return "connect";
        case AttemptOutcome::tls: return "tls";
        case AttemptOutcome::timeout: return "timeout";
        case AttemptOutcome::http_4xx: return "http_4xx";
        case AttemptOutcome::http_429: return "http_429";
        case AttemptOutcome::http_5xx: return "http_5xx";
        case AttemptOutcome::bad_response: return "bad_response";
        default: return "unknown";
    }
}

const char* to_string(FailoverReason r) {
    switch (r) {
        case FailoverReason::connect: return "connect";
        case FailoverReason::tls: return "tls";
        case FailoverReason::timeout: return "timeout";
        case FailoverReason::rate_limited: return "rate_limited";
        case FailoverReason::server_error: return "server_error";
        case FailoverReason::auth: return "auth";
        case FailoverReason::bad_response: return "bad_response";
        case FailoverReason::first_token: return "first_token_timeout";
        case FailoverReason::quota: return "insufficient_quota";
        case FailoverReason::context_length: return "context_length_exceeded";
        case FailoverReason::model_not_found: return "model_not_found";
        default: return "unknown";
    }
}

void metrics_render_prometheus(const MetricsView& v, StrBuf* out) {
    const Config& cfg = *v.cfg;
    const Metrics& m = *v.m;
    const uint32_t n = cfg.endpoint_count;
    gauge_head(out, "edgeway_build_info", "Version of this edgeway agent (always 1).");
    out->appendf("edgeway_build_info{version=\"%s\"} 1\n", EW_VERSION);

    gauge_head(out, "edgeway_probes_total", "Health probes by endpoint and result.", "counter");
    for (uint32_t e = 0; e < n; e++)
        for (size_t k = 0; k < kResultKinds; k++)
            out->appendf("edgeway_probes_total{endpoint=\"%s\",result=\"%s\"} %llu\n", cfg.endpoints[e].name,
                         to_string(static_cast<ResultKind>(k)), static_cast<ull>(m.probes[e][k]));

    gauge_head(out, "edgeway_endpoint_up", "1 when the endpoint may serve requests now.");
    for (uint32_t e = 0; e < n; e++)
        out->appendf("edgeway_endpoint_up{endpoint=\"%s\"} %d\n", cfg.endpoints[e].name,
                     health_can_serve(v.health[e], -1, v.now_ms) ? 1 : 0);
    gauge_head(out, "edgeway_endpoint_health_ratio", "Health score, 0 (failing) to 1 (perfect).");
    for (uint32_t e = 0; e < n; e++)
        out->appendf("edgeway_endpoint_health_ratio{endpoint=\"%s\"} %.3f\n", cfg.endpoints[e].name,
                     v.health[e].score / 100.0);
    gauge_head(out, "edgeway_endpoint_latency_ewma_seconds",
               "Latency EWMA to the response head (no sample before the first answer).");
    for (uint32_t e = 0; e < n; e++)
        if (v.health[e].has_latency)
            out->appendf("edgeway_endpoint_latency_ewma_seconds{endpoint=\"%s\"} %.4f\n", cfg.endpoints[e].name,
                         v.health[e].latency_ewma_ms / 1000.0);
    gauge_head(out, "edgeway_endpoint_state", "1 for the endpoint's current state, 0 for the others.");
    for (uint32_t e = 0; e < n; e++)
        for (size_t s = 0; s < 5; s++)  // the four health states, then UNRESOLVED (no address yet)
            out->appendf("edgeway_endpoint_state{endpoint=\"%s\",state=\"%s\"} %d\n", cfg.endpoints[e].name,
                         s < 4 ? kStates[s] : "UNRESOLVED",
                         s == 4 ? (unresolved(v, e) ? 1 : 0)
                                : (!unresolved(v, e) && static_cast<size_t>(v.health[e].state) == s ? 1 : 0));
    if (v.names) render_names_prometheus(v, out);
    gauge_head(out, "edgeway_endpoint_rate_limited_until_timestamp_seconds",
               "Unix time the endpoint's rate limit ends; 0 when not limited.");
    for (uint32_t e = 0; e < n; e++)
        out->appendf("edgeway_endpoint_rate_limited_until_timestamp_seconds{endpoint=\"%s\"} %.3f\n",
                     cfg.endpoints[e].name, wall_seconds(v, v.health[e].rate_limited_until_ms));
    gauge_head(out, "edgeway_endpoint_key_bad", "1 when the endpoint rejected its API key (401/403) since the last success.");
    for (uint32_t e = 0; e < n; e++)
        out->appendf("edgeway_endpoint_key_bad{endpoint=\"%s\"} %d\n", cfg.endpoints[e].name, v.health[e].key_bad ? 1 : 0);
    gauge_head(out, "edgeway_endpoint_key_exhausted",
               "1 while the endpoint's API key is out of quota (a 429 insufficient_quota; a long cooldown).");
    for (uint32_t e = 0; e < n; e++)
        out->appendf("edgeway_endpoint_key_exhausted{endpoint=\"%s\"} %d\n", cfg.endpoints[e].name,
                     health_key_exhausted_now(v.health[e], v.now_ms) ? 1 : 0);
    gauge_head(out, "edgeway_endpoint_key_exhausted_until_timestamp_seconds",
               "Unix time the endpoint's key is tried again after insufficient_quota; 0 when not exhausted.");
    for (uint32_t e = 0; e < n; e++)
        out->appendf("edgeway_endpoint_key_exhausted_until_timestamp_seconds{endpoint=\"%s\"} %.3f\n",
                     cfg.endpoints[e].name,
                     wall_seconds(v, health_key_exhausted_now(v.health[e], v.now_ms) ? v.health[e].key_exhausted_until_ms : 0));
    gauge_head(out, "edgeway_endpoint_ejections_total", "Times the endpoint went DOWN.", "counter");
    for (uint32_t e = 0; e < n; e++)
        out->appendf("edgeway_endpoint_ejections_total{endpoint=\"%s\"} %u\n", cfg.endpoints[e].name,
                     static_cast<unsigned>(v.health[e].ejections));
    metrics_render_recovery_prometheus(v, out);
    gauge_head(out, "edgeway_endpoint_transitions_total", "State changes of the endpoint, both directions.", "counter");
    for (uint32_t e = 0; e < n; e++)
        out->appendf("edgeway_endpoint_transitions_total{endpoint=\"%s\"} %llu\n", cfg.endpoints[e].name,
                     static_cast<ull>(m.transitions[e]));

    gauge_head(out, "edgeway_requests_total",
               "Client requests by the endpoint and model that served them (source=edgeway: answered by edgeway), "
               "the model requested, and the status the client saw.",
               "counter");
    for (size_t i = 0; i < m.series_count; i++) {
        const RequestSeries& s = m.series[i];
        bool up = s.endpoint < n && s.model_slot < cfg.endpoints[s.endpoint].model_count;
        out->appendf("edgeway_requests_total{endpoint=\"%s\",model=\"%s\",requested_model=\"%s\",source=\"%s\","
                     "status=\"%u\"} %llu\n",
                     up ? cfg.endpoints[s.endpoint].name : "none", up ? cfg.endpoints[s.endpoint].models[s.model_slot] : "none",
                     model_ref_name(cfg, s.requested), up ? "upstream" : "edgeway", s.status, static_cast<ull>(s.count));
    }
    gauge_head(out, "edgeway_requests_in_flight", "Client requests being answered now.");
    out->appendf("edgeway_requests_in_flight %llu\n", static_cast<ull>(m.in_flight));
    gauge_head(out, "edgeway_request_series_dropped_total", "Requests not counted: the series table was full.",
               "counter");
    out->appendf("edgeway_request_series_dropped_total %llu\n", static_cast<ull>(m.series_dropped));
    gauge_head(out, "edgeway_streams_broken_total",
               "Answers cut after their head was relayed (the client saw the status, then an error event).", "counter");
    for (uint32_t e = 0; e < n; e++)
        out->appendf("edgeway_streams_broken_total{endpoint=\"%s\"} %llu\n", cfg.endpoints[e].name,
                     static_cast<ull>(m.streams_broken[e]));
    gauge_head(out, "edgeway_attempts_total", "Upstream attempts by endpoint and outcome.", "counter");
    for (uint32_t e = 0; e < n; e++)
        for (size_t o = 0; o < static_cast<size_t>(AttemptOutcome::count); o++)
            if (m.attempts[e][o])
                out->appendf("edgeway_attempts_total{endpoint=\"%s\",outcome=\"%s\"} %llu\n", cfg.endpoints[e].name,
                             to_string(static_cast<AttemptOutcome>(o)), static_cast<ull>(m.attempts[e][o]));
    gauge_head(out, "edgeway_failovers_total", "Failovers away from the endpoint whose attempt failed, by reason.",
               "counter");
    for (uint32_t e = 0; e < n; e++)
        for (size_t r = 0; r < static_cast<size_t>(FailoverReason::count); r++)
            if (m.failovers_from[e][r])
                out->appendf("edgeway_failovers_total{endpoint=\"%s\",reason=\"%s\"} %llu\n", cfg.endpoints[e].name,
                             to_string(static_cast<FailoverReason>(r)), static_cast<ull>(m.failovers_from[e][r]));
    gauge_head(out, "edgeway_cors_rejected_total", "Requests refused: their Origin is not in cors_origins.", "counter");
    out->appendf("edgeway_cors_rejected_total %llu\n", static_cast<ull>(m.cors_rejected));
    gauge_head(out, "edgeway_tokens_total", "Tokens reported by upstream usage.", "counter");
    for (uint32_t e = 0; e < n; e++)
        for (uint32_t s = 0; s < cfg.endpoints[e].model_count; s++) {
            if (!m.prompt_tokens[e][s] && !m.completion_tokens[e][s]) continue;
            out->appendf("edgeway_tokens_total{endpoint=\"%s\",model=\"%s\",kind=\"prompt\"} %llu\n",
                         cfg.endpoints[e].name, cfg.endpoints[e].models[s], static_cast<ull>(m.prompt_tokens[e][s]));
            out->appendf("edgeway_tokens_total{endpoint=\"%s\",model=\"%s\",kind=\"completion\"} %llu\n",
                         cfg.endpoints[e].name, cfg.endpoints[e].models[s],
                         static_cast<ull>(m.completion_tokens[e][s]));
        }
    render_histograms(out, cfg, "edgeway_request_duration_seconds",
                      "Client request duration, all attempts included, by serving endpoint and model.", m, false);
    render_histograms(out, cfg, "edgeway_time_to_first_token_seconds",
                      "Streaming: request start to the first SSE data event relayed.", m, true);
    gauge_head(out, "edgeway_latency_pairs_dropped_total",
               "Observations not kept: every (endpoint, model) histogram slot was in use (EW_CAP_HISTOGRAM_PAIRS).",
               "counter");
    out->appendf("edgeway_latency_pairs_dropped_total %llu\n", static_cast<ull>(m.pairs_dropped));
    gauge_head(out, "edgeway_clients_rejected_total", "Connections refused: client table full.", "counter");
    out->appendf("edgeway_clients_rejected_total %llu\n", static_cast<ull>(m.rejected_full));
    gauge_head(out, "edgeway_clients_evicted_total", "Idle or incomplete connections closed to admit a new client.",
               "counter");
    out->appendf("edgeway_clients_evicted_total %llu\n", static_cast<ull>(m.clients_evicted));
    gauge_head(out, "edgeway_clients_active", "Client connections open now.");
    out->appendf("edgeway_clients_active %llu\n", static_cast<ull>(m.clients_active));
    gauge_head(out, "edgeway_uptime_seconds", "Seconds since start.");
    out->appendf("edgeway_uptime_seconds %.3f\n", static_cast<double>(v.now_ms - v.started_ms) / 1000.0);
    const ProcessView& p = v.process;
    if (p.resident_bytes >= 0) {
        gauge_head(out, "process_resident_memory_bytes", "Resident memory size in bytes.");
        out->appendf("process_resident_memory_bytes %lld\n", static_cast<long long>(p.resident_bytes));
    }
    if (p.start_wall_ms >= 0) {
        gauge_head(out, "process_start_time_seconds", "Start time of the process since unix epoch in seconds.");
        out->appendf("process_start_time_seconds %.3f\n", static_cast<double>(p.start_wall_ms) / 1000.0);
    }
    if (p.open_fds >= 0) {
        gauge_head(out, "process_open_fds", "Number of open file descriptors (lwIP: sockets).");
        out->appendf("process_open_fds %lld\n", static_cast<long long>(p.open_fds));
    }
    if (p.max_fds >= 0) {
        gauge_head(out, "process_max_fds", "Maximum number of open file descriptors (lwIP: sockets).");
        out->appendf("process_max_fds %lld\n", static_cast<long long>(p.max_fds));
    }
}

void metrics_render_status(const MetricsView& v, StrBuf* out) {
    const Config& cfg = *v.cfg;
    const Metrics& m = *v.m;
    out->appendf("{\"version\":\"%s\",\"uptime_ms\":%llu,\"strategy\":\"%s\",\"endpoints\":[", EW_VERSION,
                 static_cast<unsigned long long>(v.now_ms - v.started_ms), to_string(cfg.agent.strategy));
    for (uint32_t e = 0; e < cfg.endpoint_count; e++) {
        const EndpointConfig& ec = cfg.endpoints[e];
        const Health& h = v.health[e];
        if (e) out->append(",");
        out->append("{\"name\":\"");
        out->append_json_escaped(ec.name);
        out->append("\",\"url\":\"");
        out->append_json_escaped(ec.url);
        out->appendf("\",\"state\":\"%s\",\"status\":\"%s\",\"score\":%.1f,\"latency_ewma_ms\":%.1f,"
                     "\"consecutive_failures\":%u,\"consecutive_successes\":%u",
                     h.name_unresolved ? "UNRESOLVED" : to_string(h.state), health_status_class(h, *v.params),
                     h.score, h.latency_ewma_ms,
                     static_cast<unsigned>(h.consecutive_failures), static_cast<unsigned>(h.consecutive_successes));
        json_opt_age(out, "last_success_ms_ago", h.last_success_ms, v.now_ms);
        json_opt_age(out, "last_failure_ms_ago", h.last_failure_ms, v.now_ms);
        if (h.last_success_ms == 0 && h.last_failure_ms == 0)
            out->append(",\"last_result\":null");
        else
            out->appendf(",\"last_result\":\"%s\"", to_string(h.last_kind));
        out->append(",\"last_error\":\"");
        // While the name does not resolve, that is the error to show.
        out->append_json_escaped(h.name_unresolved && v.names ? v.names[e].error : h.last_error);
        uint64_t limited = h.rate_limited_until_ms > v.now_ms ? h.rate_limited_until_ms - v.now_ms : 0;
        out->appendf("\",\"probes_ok\":%llu,\"probes_failed\":%llu,\"requests\":%llu,\"ejections\":%u,"
                     "\"key_bad\":%s,\"rate_limited_for_ms\":%llu,\"models\":[",
                     static_cast<unsigned long long>(h.probes_ok), static_cast<unsigned long long>(h.probes_failed),
                     static_cast<unsigned long long>(h.requests), static_cast<unsigned>(h.ejections), h.key_bad ? "true" : "false",
                     static_cast<unsigned long long>(limited));
        for (uint32_t s = 0; s < ec.model_count; s++) {
            out->append(s ? ",\"" : "\"");
            out->append_json_escaped(ec.models[s]);
            out->append("\"");
        }
        // Per-model rate limits (a 429 on a request limits that endpoint+model only).
        out->append("],\"rate_limited_models\":{");
        bool first = true;
        for (uint32_t s = 0; s < ec.model_count && s < EW_CAP_MODELS_PER_ENDPOINT; s++) {
            uint64_t until = h.model_limited_until_ms[s];
            if (until <= v.now_ms) continue;
            out->append(first ? "\"" : ",\"");
            first = false;
            out->append_json_escaped(ec.models[s]);
            out->appendf("\":%llu", static_cast<unsigned long long>(until - v.now_ms));
        }
        // What error bodies said: the key out of quota, models this endpoint says it lacks.
        uint64_t exhausted = h.key_exhausted_until_ms > v.now_ms ? h.key_exhausted_until_ms - v.now_ms : 0;
        out->appendf("},\"key_exhausted\":%s,\"key_exhausted_for_ms\":%llu,\"unavailable_models\":{",
                     exhausted ? "true" : "false", static_cast<unsigned long long>(exhausted));
        first = true;
        for (uint32_t s = 0; s < ec.model_count && s < EW_CAP_MODELS_PER_ENDPOINT; s++) {
            uint64_t until = h.model_unavailable_until_ms[s];
            if (until <= v.now_ms) continue;
            out->append(first ? "\"" : ",\"");
            first = false;
            out->append_json_escaped(ec.models[s]);
            out->appendf("\":%llu", static_cast<unsigned long long>(until - v.now_ms));
        }
        out->append("}");
        if (v.params) health_recovery_json(h, *v.params, v.now_ms, out);
        if (v.names) render_name_status(v.names[e], out);
        out->append("}");
    }
    double avg = m.success ? static_cast<double>(m.latency_sum_ms) / static_cast<double>(m.success) : 0.0;
    double rate = m.total ? static_cast<double>(m.success) / static_cast<double>(m.total) : 0.0;
    out->appendf("],\"metrics\":{\"total\":%llu,\"success\":%llu,\"failed\":%llu,\"fallback_triggered\":%llu,"
                 "\"avg_latency_ms\":%.1f,\"success_rate\":%.4f,\"clients_active\":%llu,\"clients_rejected\":%llu}}",
                 static_cast<unsigned long long>(m.total), static_cast<unsigned long long>(m.success),
                 static_cast<unsigned long long>(m.failed), static_cast<unsigned long long>(m.fallback_triggered),
                 avg, rate, static_cast<unsigned long long>(m.clients_active),
                 static_cast<unsigned long long>(m.rejected_full));
}

}  // namespace ew
