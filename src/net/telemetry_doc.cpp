#include "net/telemetry_doc.h"

#include "core/status_page.h"

namespace ew {
namespace {

typedef unsigned long long ull;

void str_field(StrBuf* out, const char* key, const char* value) {
    out->appendf(",\"%s\":\"", key);
    out->append_json_escaped(value);
    out->append("\"");
}

void time_field(const MetricsView& v, StrBuf* out) {
    if (v.process.wall_ms) out->appendf(",\"time\":%llu", static_cast<ull>(v.process.wall_ms / 1000));
}

const char* state_name(const Health& h) { return h.name_unresolved ? "UNRESOLVED" : to_string(h.state); }

}  // namespace

void telemetry_status_doc(const MetricsView& v, const char* device, StrBuf* out) {
    const Config& cfg = *v.cfg;
    int ep = -1;
    Verdict verdict = status_verdict(v, &ep);
    static const char* const kVerdict[] = {"serving", "fallback", "not_serving"};
    out->append("{\"device\":\"");
    out->append_json_escaped(device);
    out->appendf("\",\"online\":true,\"verdict\":\"%s\",\"via\":", kVerdict[static_cast<int>(verdict)]);
    if (ep >= 0) {
        out->append("\"");
        out->append_json_escaped(cfg.endpoints[ep].name);
        out->append("\"");
    } else {
        out->append("null");
    }
    str_field(out, "why", verdict == Verdict::not_serving ? status_not_serving_why(v) : "");
    uint32_t healthy = 0, degraded = 0, down = 0, limited = 0, unresolved = 0;
    for (uint32_t e = 0; e < cfg.endpoint_count; e++) {
        const Health& h = v.health[e];
        if (h.name_unresolved) {
            unresolved++;
            continue;
        }
        switch (h.state) {
            case HealthState::healthy: healthy++; break;
            case HealthState::degraded: degraded++; break;
            case HealthState::down: down++; break;
            case HealthState::rate_limited: limited++; break;
        }
    }
    const Metrics& m = *v.m;
    out->appendf(",\"endpoints\":%u,\"healthy\":%u,\"degraded\":%u,\"down\":%u,\"rate_limited\":%u,\"unresolved\":%u,"
                 "\"requests\":%llu,\"failed\":%llu,\"fallbacks\":%llu,\"uptime_s\":%llu,\"version\":\"%s\"",
                 static_cast<unsigned>(cfg.endpoint_count), static_cast<unsigned>(healthy),
                 static_cast<unsigned>(degraded), static_cast<unsigned>(down), static_cast<unsigned>(limited),
                 static_cast<unsigned>(unresolved), static_cast<ull>(m.total), static_cast<ull>(m.failed),
                 static_cast<ull>(m.fallback_triggered), static_cast<ull>((v.now_ms - v.started_ms) / 1000), EW_VERSION);
    time_field(v, out);
    out->append("}");
}

void telemetry_offline_doc(const char* device, StrBuf* out) {
    out->append("{\"device\":\"");
    out->append_json_escaped(device);
    out->append("\",\"online\":false,\"verdict\":\"offline\"}");
}

void telemetry_endpoint_doc(const MetricsView& v, const char* device, uint32_t e, const TelemetryChange& change,
                            StrBuf* out) {
    const EndpointConfig& ec = v.cfg->endpoints[e];
    const Health& h = v.health[e];
    const Metrics& m = *v.m;
    out->append("{\"device\":\"");
    out->append_json_escaped(device);
    out->append("\"");
    str_field(out, "endpoint", ec.name);
    str_field(out, "state", state_name(h));
    // Why it is not HEALTHY: the name's error while unresolved, else the last error.
    const char* why = "";
    if (h.name_unresolved && v.names) why = v.names[e].error;
    else if (h.name_unresolved) why = "host name not resolved";
    else if (h.state != HealthState::healthy || h.key_bad) why = h.last_error;
    str_field(out, "why", why);
    out->appendf(",\"score\":%.1f,\"latency_ewma_ms\":", static_cast<double>(h.score));
    if (h.has_latency) out->appendf("%.1f", static_cast<double>(h.latency_ewma_ms));
    else out->append("null");
    uint64_t last = h.last_success_ms > h.last_failure_ms ? h.last_success_ms : h.last_failure_ms;
    if (last == 0) {
        out->append(",\"last_result\":null,\"last_result_age_ms\":null");
    } else {
        out->appendf(",\"last_result\":\"%s\",\"last_result_age_ms\":%llu", to_string(h.last_kind),
                     static_cast<ull>(v.now_ms > last ? v.now_ms - last : 0));
    }
    uint64_t since = m.state_since_ms[e] ? m.state_since_ms[e] : v.started_ms;
    uint64_t limited = h.rate_limited_until_ms > v.now_ms ? h.rate_limited_until_ms - v.now_ms : 0;
    out->appendf(",\"http_status\":%u,\"in_state_ms\":%llu,\"transitions\":%llu,\"ejections\":%u,\"key_bad\":%s,"
                 "\"rate_limited_for_ms\":%llu,\"requests\":%llu,\"change\":",
                 static_cast<unsigned>(h.last_http_status), static_cast<ull>(v.now_ms > since ? v.now_ms - since : 0),
                 static_cast<ull>(m.transitions[e]), static_cast<unsigned>(h.ejections), h.key_bad ? "true" : "false",
                 static_cast<ull>(limited), static_cast<ull>(h.requests));
    if (change.changed) {
        out->appendf("{\"from\":\"%s\",\"to\":\"%s\"", to_string(change.from), to_string(h.state));
        str_field(out, "cause", change.cause[0] ? change.cause : "probe");  // note_state says "" for a probe
        out->append("}");
    } else {
        out->append("null");
    }
    time_field(v, out);
    out->append("}");
}

void telemetry_render_metrics(const TelemetryStats& t, StrBuf* out) {
    if (!t.on) return;
    out->append("# HELP edgeway_telemetry_connected Whether the MQTT broker has accepted the telemetry session (1) or not (0).\n"
                "# TYPE edgeway_telemetry_connected gauge\n");
    out->appendf("edgeway_telemetry_connected %d\n", t.connected ? 1 : 0);
    out->append("# HELP edgeway_telemetry_queued_messages Telemetry documents waiting to be sent or acknowledged.\n"
                "# TYPE edgeway_telemetry_queued_messages gauge\n");
    out->appendf("edgeway_telemetry_queued_messages %u\n", static_cast<unsigned>(t.queued));
    out->append("# HELP edgeway_telemetry_published_total Telemetry documents the broker acknowledged (QoS 1).\n"
                "# TYPE edgeway_telemetry_published_total counter\n");
    out->appendf("edgeway_telemetry_published_total %llu\n", static_cast<ull>(t.published));
    out->append("# HELP edgeway_telemetry_dropped_total Telemetry documents dropped from a full queue, oldest first.\n"
                "# TYPE edgeway_telemetry_dropped_total counter\n");
    out->appendf("edgeway_telemetry_dropped_total %llu\n", static_cast<ull>(t.dropped));
    out->append("# HELP edgeway_telemetry_connects_total MQTT sessions the broker accepted.\n"
                "# TYPE edgeway_telemetry_connects_total counter\n");
    out->appendf("edgeway_telemetry_connects_total %llu\n", static_cast<ull>(t.connects));
    out->append("# HELP edgeway_telemetry_connect_failures_total MQTT connection attempts that ended before a session.\n"
                "# TYPE edgeway_telemetry_connect_failures_total counter\n");
    out->appendf("edgeway_telemetry_connect_failures_total %llu\n", static_cast<ull>(t.connect_failures));
}

}  // namespace ew
