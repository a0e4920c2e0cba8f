// --print-config: the effective configuration as INI, defaults filled in, secrets masked.
// The output parses back to the same Config, secrets aside (they show only whether set).
#include <string.h>

#include "core/config.h"
#include "core/strbuf.h"

namespace ew {
namespace {

void host_port(StrBuf* out, const char* host, unsigned port) {
    if (strchr(host, ':'))
        out->appendf("[%s]:%u", host, port);
    else
        out->appendf("%s:%u", host, port);
}

unsigned u(uint32_t v) { return static_cast<unsigned>(v); }

void secret(StrBuf* out, const char* what, const char* value) {
    out->appendf("; %s: %s\n", what, value[0] ? "set (masked)" : "none");
}

}  // namespace

void config_print(const Config& cfg, const char* file_name, StrBuf* out) {
    const AgentConfig& a = cfg.agent;
    out->appendf("; effective configuration of %s: defaults filled in, secrets masked\n\n[agent]\nlisten = ",
                 file_name ? file_name : "-");
    host_port(out, a.listen_host, a.listen_port);
    out->appendf("\nlocal_token_file = %s\n", a.local_token_file);
    secret(out, "local token", a.local_token);
    out->appendf("log_level = %s\nlog_format = %s\nstrategy = %s\nmax_clients = %u\nmax_request_bytes = %u\n"
                 "request_timeout_ms = %u\nmax_attempts = %u\nretry_backoff_ms = %u\nretry_backoff_max_ms = %u\n"
                 "first_token_timeout_ms = %u\nclient_header_timeout_ms = %u\nclient_write_timeout_ms = %u\n",
                 to_string(a.log_level), to_string(a.log_format), to_string(a.strategy), u(a.max_clients),
                 u(a.max_request_bytes), u(a.request_timeout_ms), u(a.max_attempts), u(a.retry_backoff_ms),
                 u(a.retry_backoff_max_ms), u(a.first_token_timeout_ms), u(a.client_header_timeout_ms),
                 u(a.client_write_timeout_ms));
    out->appendf("trial_requests = %u\nprobe_budget_tokens_per_day = %u\n", u(a.trial_requests),
                 u(a.probe_budget_tokens_per_day));
    out->appendf("state_file = %s\nstate_write_interval_ms = %u\n", a.state_file, u(a.state_write_interval_ms));
    if (a.hedge_mode == HedgeMode::fixed)
        out->appendf("hedge_after_ms = %u\n", u(a.hedge_after_ms));
    else
        out->appendf("hedge_after_ms = %s\n", a.hedge_mode == HedgeMode::automatic ? "auto" : "off");
    out->appendf("hedge_budget_pct = %u\n", u(a.hedge_budget_pct));
    const ProbeConfig& p = cfg.probe;
    out->appendf("\n[probe]\nkind = %s\ninterval_ms = %u\ndown_interval_ms = %u\ntimeout_ms = %u\nfall = %u\n"
                 "rise = %u\njitter_pct = %u\ncooldown_max_ms = %u\n",
                 to_string(p.kind), u(p.interval_ms), u(p.down_interval_ms), u(p.timeout_ms), u(p.fall), u(p.rise),
                 u(p.jitter_pct), u(p.cooldown_max_ms));
    for (uint32_t i = 0; i < cfg.endpoint_count; i++) {
        const EndpointConfig& e = cfg.endpoints[i];
        out->appendf("\n[endpoint.%s]\nurl = %s\n", e.name, e.url);
        secret(out, "api key", e.api_key);
        out->append("models = ");
        for (uint32_t m = 0; m < e.model_count; m++) out->appendf("%s%s", m ? ", " : "", e.models[m]);
        out->appendf("\npriority = %d\ntimeout_ms = %u\ntls_verify = %s\nca_file = %s\n", static_cast<int>(e.priority),
                     u(e.timeout_ms), e.tls_verify ? "true" : "false", e.ca_file);
    }
    if (cfg.fallback_count) {
        out->append("\n[fallback]\n");
        for (uint32_t i = 0; i < cfg.fallback_count; i++) {
            const FallbackRule& r = cfg.fallback[i];
            out->appendf("%s = ", r.model);
            for (uint32_t j = 0; j < r.next_count; j++) out->appendf("%s%s", j ? ", " : "", r.next[j]);
            out->append("\n");
        }
    }
    if (cfg.context_fallback_count) {
        out->append("\n[context_fallback]\n");
        for (uint32_t i = 0; i < cfg.context_fallback_count; i++) {
            const FallbackRule& r = cfg.context_fallback[i];
            out->appendf("%s = ", r.model);
            for (uint32_t j = 0; j < r.next_count; j++) out->appendf("%s%s", j ? ", " : "", r.next[j]);
            out->append("\n");
        }
    }
    const TelemetryConfig& t = cfg.telemetry;
    if (t.on) {
        out->appendf("\n[telemetry]\nmqtt_url = %s\ndevice_id = %s\nusername = %s\npassword_file = %s\n", t.mqtt_url,
                     t.device_id, t.username, t.password_file);
        secret(out, "password", t.password);
        out->appendf("ca_file = %s\ntopic_prefix = %s\ninterval_ms = %u\nqueue_max = %u\n", t.ca_file, t.topic_prefix,
                     u(t.interval_ms), u(t.queue_max));
    }
}

}  // namespace ew
