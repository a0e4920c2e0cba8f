#include "core/metrics.h"

namespace ew {
namespace {

// Upper bounds in milliseconds; the last bucket is +Inf.
const uint32_t kBucketMs[kHistogramBuckets - 1] = {5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 15000};

const char* const kStates[] = {"HEALTHY", "DEGRADED", "DOWN", "RATE_LIMITED"};

void render_histogram(StrBuf* out, const char* name, const char* help, const Histogram& h) {
    out->appendf("# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    uint64_t cumulative = 0;
    for (size_t i = 0; i + 1 < kHistogramBuckets; i++) {
        cumulative += h.buckets[i];
        out->appendf("%s_bucket{le=\"%g\"} %llu\n", name, kBucketMs[i] / 1000.0,
                     static_cast<unsigned long long>(cumulative));
    }
    out->appendf("%s_bucket{le=\"+Inf\"} %llu\n", name, static_cast<unsigned long long>(h.count));
    out->appendf("%s_sum %.6f\n%s_count %llu\n", name, h.sum_s, name, static_cast<unsigned long long>(h.count));
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
        out->appendf(",\"%s\":%llu", key, static_cast<unsigned long long>(now >= at ? now - at : 0));
}

}  // namespace

void Histogram::observe_ms(uint64_t ms) {
    size_t i = 0;
    while (i + 1 < kHistogramBuckets && ms > kBucketMs[i]) i++;
    buckets[i]++;
    count++;
    sum_s += static_cast<double>(ms) / 1000.0;
}

void Metrics::count_probe(size_t endpoint, ResultKind k) {
    if (endpoint < EW_CAP_ENDPOINTS) probes[endpoint][static_cast<size_t>(k)]++;
}

void Metrics::count_request(uint8_t endpoint, uint8_t model_slot, uint16_t status) {
    for (size_t i = 0; i < series_count; i++) {
        RequestSeries& s = series[i];
        if (s.endpoint == endpoint && s.model_slot == model_slot && s.status == status) {
            s.count++;
            return;
        }
    }
    if (series_count == EW_CAP_REQUEST_SERIES) {
        series_dropped++;
        return;
    }
    series[series_count++] = RequestSeries{endpoint, model_slot, status, 1};
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
        default: return "unknown";
    }
}

void metrics_render_prometheus(const MetricsView& v, StrBuf* out) {
    const Config& cfg = *v.cfg;
    const Metrics& m = *v.m;
    out->append("# HELP edgeway_probes_total Health probes by endpoint and result.\n"
                "# TYPE edgeway_probes_total counter\n");
    for (uint32_t e = 0; e < cfg.endpoint_count; e++)
        for (size_t k = 0; k < kResultKinds; k++)
            out->appendf("edgeway_probes_total{endpoint=\"%s\",result=\"%s\"} %llu\n", cfg.endpoints[e].name,
                         to_string(static_cast<ResultKind>(k)), static_cast<unsigned long long>(m.probes[e][k]));

    out->append("# HELP edgeway_endpoint_up 1 when the endpoint may serve requests now.\n"
                "# TYPE edgeway_endpoint_up gauge\n");
    for (uint32_t e = 0; e < cfg.endpoint_count; e++)
        out->appendf("edgeway_endpoint_up{endpoint=\"%s\"} %d\n", cfg.endpoints[e].name,
                     health_can_serve(v.health[e], -1, v.now_ms) ? 1 : 0);
    out->append("# HELP edgeway_endpoint_score Health score 0-100.\n# TYPE edgeway_endpoint_score gauge\n");
    for (uint32_t e = 0; e < cfg.endpoint_count; e++)
        out->appendf("edgeway_endpoint_score{endpoint=\"%s\"} %.1f\n", cfg.endpoints[e].name, v.health[e].score);
    out->append("# HELP edgeway_endpoint_latency_ewma_ms Latency EWMA in milliseconds.\n"
                "# TYPE edgeway_endpoint_latency_ewma_ms gauge\n");
    for (uint32_t e = 0; e < cfg.endpoint_count; e++)
        out->appendf("edgeway_endpoint_latency_ewma_ms{endpoint=\"%s\"} %.1f\n", cfg.endpoints[e].name,
                     v.health[e].latency_ewma_ms);
    out->append("# HELP edgeway_endpoint_state 1 for the endpoint's current state.\n"
                "# TYPE edgeway_endpoint_state gauge\n");
    for (uint32_t e = 0; e < cfg.endpoint_count; e++)
        for (size_t s = 0; s < 5; s++)  // the four health states, then UNRESOLVED (no address yet)
            out->appendf("edgeway_endpoint_state{endpoint=\"%s\",state=\"%s\"} %d\n", cfg.endpoints[e].name,
                         s < 4 ? kStates[s] : "UNRESOLVED",
                         s == 4 ? (unresolved(v, e) ? 1 : 0)
                                : (!unresolved(v, e) && static_cast<size_t>(v.health[e].state) == s ? 1 : 0));
    if (v.names) render_names_prometheus(v, out);

    out->append("# HELP edgeway_requests_total Client requests by endpoint, model and status.\n"
                "# TYPE edgeway_requests_total counter\n");
    for (size_t i = 0; i < m.series_count; i++) {
        const RequestSeries& s = m.series[i];
        const char* ep = s.endpoint < cfg.endpoint_count ? cfg.endpoints[s.endpoint].name : "none";
        const char* model = (s.endpoint < cfg.endpoint_count && s.model_slot < cfg.endpoints[s.endpoint].model_count)
                                ? cfg.endpoints[s.endpoint].models[s.model_slot]
                                : "none";
        out->appendf("edgeway_requests_total{endpoint=\"%s\",model=\"%s\",status=\"%u\"} %llu\n", ep, model,
                     s.status, static_cast<unsigned long long>(s.count));
    }
    out->append("# HELP edgeway_attempts_total Upstream attempts by endpoint and outcome.\n"
                "# TYPE edgeway_attempts_total counter\n");
    for (uint32_t e = 0; e < cfg.endpoint_count; e++)
        for (size_t o = 0; o < static_cast<size_t>(AttemptOutcome::count); o++)
            if (m.attempts[e][o])
                out->appendf("edgeway_attempts_total{endpoint=\"%s\",outcome=\"%s\"} %llu\n", cfg.endpoints[e].name,
                             to_string(static_cast<AttemptOutcome>(o)),
                             static_cast<unsigned long long>(m.attempts[e][o]));
    out->append("# HELP edgeway_failovers_total Failovers to another candidate, by reason.\n"
                "# TYPE edgeway_failovers_total counter\n");
    for (size_t r = 0; r < static_cast<size_t>(FailoverReason::count); r++)
        out->appendf("edgeway_failovers_total{reason=\"%s\"} %llu\n", to_string(static_cast<FailoverReason>(r)),
                     static_cast<unsigned long long>(m.failovers[r]));
    out->appendf("# HELP edgeway_cors_rejected_total Requests refused: their Origin is not in cors_origins.\n"
                 "# TYPE edgeway_cors_rejected_total counter\nedgeway_cors_rejected_total %llu\n",
                 static_cast<unsigned long long>(m.cors_rejected));
    out->append("# HELP edgeway_tokens_total Tokens reported by upstream usage.\n"
                "# TYPE edgeway_tokens_total counter\n");
    for (uint32_t e = 0; e < cfg.endpoint_count; e++)
        for (uint32_t s = 0; s < cfg.endpoints[e].model_count; s++) {
            if (!m.prompt_tokens[e][s] && !m.completion_tokens[e][s]) continue;
            out->appendf("edgeway_tokens_total{endpoint=\"%s\",model=\"%s\",kind=\"prompt\"} %llu\n",
                         cfg.endpoints[e].name, cfg.endpoints[e].models[s],
                         static_cast<unsigned long long>(m.prompt_tokens[e][s]));
            out->appendf("edgeway_tokens_total{endpoint=\"%s\",model=\"%s\",kind=\"completion\"} %llu\n",
                         cfg.endpoints[e].name, cfg.endpoints[e].models[s],
                         static_cast<unsigned long long>(m.completion_tokens[e][s]));
        }
    render_histogram(out, "edgeway_request_duration_seconds", "Client request duration, all attempts included.",
                     m.request_duration);
    render_histogram(out, "edgeway_time_to_first_token_seconds", "Streaming: time to the first SSE data event.",
                     m.first_token);
    out->appendf("# HELP edgeway_clients_rejected_total Connections refused: client table full.\n"
                 "# TYPE edgeway_clients_rejected_total counter\nedgeway_clients_rejected_total %llu\n",
                 static_cast<unsigned long long>(m.rejected_full));
    out->appendf("# HELP edgeway_uptime_seconds Seconds since start.\n# TYPE edgeway_uptime_seconds gauge\n"
                 "edgeway_uptime_seconds %llu\n",
                 static_cast<unsigned long long>((v.now_ms - v.started_ms) / 1000));
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
        out->append("}");
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
