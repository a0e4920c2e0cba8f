// Prometheus series of half-open recovery: trials per endpoint, probes skipped or cheapened,
// and the chat probes' token budget. Part of metrics_render_prometheus.
#include "core/metrics.h"

namespace ew {
namespace {

typedef unsigned long long ull;

void head(StrBuf* out, const char* name, const char* help, const char* type) {
    out->appendf("# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

}  // namespace

void metrics_render_recovery_prometheus(const MetricsView& v, StrBuf* out) {
    const Config& cfg = *v.cfg;
    const Metrics& m = *v.m;
    const uint32_t n = cfg.endpoint_count < EW_CAP_ENDPOINTS ? cfg.endpoint_count : EW_CAP_ENDPOINTS;
    head(out, "edgeway_endpoint_trials_total",
         "Live requests let through to a DOWN endpoint its probe cannot confirm, by how they ended "
         "(passed, failed; started counts every one).",
         "counter");
    for (uint32_t e = 0; e < n; e++) {
        const Health& h = v.health[e];
        out->appendf("edgeway_endpoint_trials_total{endpoint=\"%s\",result=\"started\"} %llu\n"
                     "edgeway_endpoint_trials_total{endpoint=\"%s\",result=\"passed\"} %llu\n"
                     "edgeway_endpoint_trials_total{endpoint=\"%s\",result=\"failed\"} %llu\n",
                     cfg.endpoints[e].name, static_cast<ull>(h.trials_started), cfg.endpoints[e].name,
                     static_cast<ull>(h.trials_passed), cfg.endpoints[e].name, static_cast<ull>(h.trials_failed));
    }
    head(out, "edgeway_endpoint_trial_open", "1 while the endpoint is DOWN and waits for a trial request to confirm it.",
         "gauge");
    for (uint32_t e = 0; e < n; e++)
        out->appendf("edgeway_endpoint_trial_open{endpoint=\"%s\"} %d\n", cfg.endpoints[e].name,
                     health_trial_open(v.health[e], cfg.agent.trial_requests, -1, v.now_ms) ? 1 : 0);
    head(out, "edgeway_probes_unconfirmed_total",
         "Probe successes that could not confirm a deeper failure (a models probe after chat failures).", "counter");
    for (uint32_t e = 0; e < n; e++)
        out->appendf("edgeway_probes_unconfirmed_total{endpoint=\"%s\"} %llu\n", cfg.endpoints[e].name,
                     static_cast<ull>(v.health[e].unconfirmed_probes));
    head(out, "edgeway_probes_skipped_total",
         "Active probes not run: reason=fresh_traffic (a live request succeeded within the interval), "
         "reason=token_budget (a chat probe run as a models probe, the day's budget spent).",
         "counter");
    for (uint32_t e = 0; e < n; e++)
        out->appendf("edgeway_probes_skipped_total{endpoint=\"%s\",reason=\"fresh_traffic\"} %llu\n"
                     "edgeway_probes_skipped_total{endpoint=\"%s\",reason=\"token_budget\"} %llu\n",
                     cfg.endpoints[e].name, static_cast<ull>(m.probes_skipped_fresh[e]), cfg.endpoints[e].name,
                     static_cast<ull>(m.probes_as_models[e]));
    head(out, "edgeway_probe_tokens_total", "Tokens spent by chat probes (usage, or the probe's bound without one).",
         "counter");
    for (uint32_t e = 0; e < n; e++)
        out->appendf("edgeway_probe_tokens_total{endpoint=\"%s\"} %llu\n", cfg.endpoints[e].name,
                     static_cast<ull>(m.probe_tokens[e]));
    head(out, "edgeway_probe_budget_tokens_remaining",
         "Tokens chat probes may still spend in the current 24 h (-1: no cap).", "gauge");
    if (m.probe_budget_limit == 0)
        out->append("edgeway_probe_budget_tokens_remaining -1\n");
    else
        out->appendf("edgeway_probe_budget_tokens_remaining %llu\n",
                     static_cast<ull>(m.probe_budget_spent >= m.probe_budget_limit
                                          ? 0
                                          : m.probe_budget_limit - m.probe_budget_spent));
}

}  // namespace ew
