#include "core/status_page.h"

#include <string.h>

#include "core/health_recovery.h"

namespace ew {
namespace {

typedef unsigned long long ull;

#if EW_STATUS_PAGE
void html(StrBuf* out, const char* s) {
    for (; *s; s++) {
        switch (*s) {
            case '<': out->append("&lt;"); break;
            case '>': out->append("&gt;"); break;
            case '&': out->append("&amp;"); break;
            case '"': out->append("&quot;"); break;
            default: out->append(s, 1);
        }
    }
}

// "5 s", "3 min", "2 h 5 min", "4 d".
void duration(StrBuf* out, uint64_t ms) {
    uint64_t s = ms / 1000;
    if (s < 120)
        out->appendf("%llu s", static_cast<ull>(s));
    else if (s < 7200)
        out->appendf("%llu min", static_cast<ull>(s / 60));
    else if (s < 172800)
        out->appendf("%llu h %llu min", static_cast<ull>(s / 3600), static_cast<ull>(s / 60 % 60));
    else
        out->appendf("%llu d", static_cast<ull>(s / 86400));
}

const char* state_class(HealthState s) {
    switch (s) {
        case HealthState::healthy: return "st-up";
        case HealthState::degraded: return "st-deg";
        case HealthState::down: return "st-down";
        case HealthState::rate_limited: return "st-rl";
    }
    return "st-down";
}

#endif  // EW_STATUS_PAGE

int32_t top_priority(const Config& cfg) {
    int32_t top = cfg.endpoint_count ? cfg.endpoints[0].priority : 0;
    for (uint32_t e = 1; e < cfg.endpoint_count; e++)
        if (cfg.endpoints[e].priority > top) top = cfg.endpoints[e].priority;
    return top;
}

#if EW_STATUS_PAGE
// The last results, oldest first, as two SVG paths (ok / failed) of 4-unit cells, runs merged.
void result_strip(StrBuf* out, const Health& h) {
    uint32_t n = h.ring_count < EW_CAP_HISTORY ? h.ring_count : EW_CAP_HISTORY;
    out->appendf("<svg class=\"strip\" viewBox=\"0 0 %u 10\" preserveAspectRatio=\"none\" role=\"img\" "
                 "aria-label=\"last %u results\">",
                 static_cast<unsigned>(EW_CAP_HISTORY * 4), static_cast<unsigned>(n));
    if (n == 0) {
        out->append("<rect width=\"100%\" height=\"10\" fill=\"#eee\"/></svg>");
        return;
    }
    uint32_t first = (h.ring_pos + EW_CAP_HISTORY - n) % EW_CAP_HISTORY;
    for (int want = 1; want >= 0; want--) {
        out->appendf("<path fill=\"%s\" d=\"", want ? "#2e9e44" : "#d0312d");
        uint32_t i = 0;
        while (i < n) {
            bool ok = h.ring[(first + i) % EW_CAP_HISTORY] != 0;
            uint32_t j = i;
            while (j < n && (h.ring[(first + j) % EW_CAP_HISTORY] != 0) == ok) j++;
            unsigned w = static_cast<unsigned>((j - i) * 4 - 1);
            if (static_cast<int>(ok) == want) out->appendf("M%u 0h%uv10h-%uz", static_cast<unsigned>(i * 4), w, w);
            i = j;
        }
        out->append("\"/>");
    }
    out->append("</svg>");
}

// Requests per minute (grey), failovers (orange) and failed answers (red), last hour.
void minute_chart(StrBuf* out, const Metrics& m, uint64_t now_ms) {
    uint64_t now_min = now_ms / 60000;
    uint32_t peak = 0, total = 0, fo = 0;
    uint32_t req[kMinuteRing], fail[kMinuteRing], err[kMinuteRing];
    for (size_t k = 0; k < kMinuteRing; k++) {
        uint64_t minute = now_min + 1 - kMinuteRing + k;
        bool kept = minute <= m.minute_last && minute + kMinuteRing > m.minute_last && now_min + 1 >= kMinuteRing - k;
        size_t cell = static_cast<size_t>(minute % kMinuteRing);
        req[k] = kept ? m.minute_requests[cell] : 0;
        fail[k] = kept ? m.minute_failovers[cell] : 0;
        err[k] = kept ? m.minute_errors[cell] : 0;
        if (req[k] > peak) peak = req[k];
        total += req[k];
        fo += fail[k];
    }
    out->appendf("<h2>Last %u min: %u requests, %u with failover, peak %u/min</h2>",
                 static_cast<unsigned>(kMinuteRing), static_cast<unsigned>(total),
                 static_cast<unsigned>(fo), static_cast<unsigned>(peak));
    if (peak == 0) peak = 1;
    out->appendf("<svg class=\"chart\" viewBox=\"0 0 %u 40\" preserveAspectRatio=\"none\" role=\"img\" "
                 "aria-label=\"requests per minute\">",
                 static_cast<unsigned>(kMinuteRing * 4));
    const char* colours[3] = {"#9aa5b1", "#f0a020", "#d0312d"};
    const uint32_t* series[3] = {req, fail, err};
    for (int s = 0; s < 3; s++) {
        out->appendf("<path fill=\"%s\" d=\"", colours[s]);
        for (size_t k = 0; k < kMinuteRing; k++) {
            if (!series[s][k]) continue;
            uint32_t hgt = series[s][k] * 40 / peak;
            if (hgt == 0) hgt = 1;
            out->appendf("M%u %uh3v%uh-3z", static_cast<unsigned>(k * 4), static_cast<unsigned>(40 - hgt),
                         static_cast<unsigned>(hgt));
        }
        out->append("\"/>");
    }
    out->append("</svg><p class=\"legend\"><span class=\"k req\"></span>requests <span class=\"k fo\"></span>failovers "
                "<span class=\"k err\"></span>failed answers &middot; one bar per minute, newest right</p>");
}

const char kHead[] =
    "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
    "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
    "<meta http-equiv=\"refresh\" content=\"5\"><title>edgeway</title><style>"
    "*{box-sizing:border-box}body{font:15px/1.35 system-ui,sans-serif;margin:0;padding:8px 12px;color:#222;"
    "max-width:1200px}"
    "#verdict{font-size:26px;margin:4px 0 2px;padding:8px 12px;border-radius:6px;color:#fff}"
    ".v-serving{background:#2e7d32}.v-fallback{background:#b26a00}.v-not_serving{background:#b71c1c}"
    ".sub{margin:0 0 8px;color:#555;font-size:13px}"
    "table{width:100%;border-collapse:collapse;table-layout:fixed}"
    "th{text-align:left;font-size:12px;color:#555;font-weight:600;padding:2px 6px}"
    "td{padding:3px 6px;vertical-align:top;overflow-wrap:anywhere}"
    "tr.main td{border-top:1px solid #fff;font-weight:600}tr.more td{font-size:12px;padding-bottom:6px}"
    ".st-up{background:#dff3e2}.st-deg{background:#fff3cd}.st-down{background:#f8d7da}.st-rl{background:#e8dcf5}.st-unres{background:#e4e6e9}"
    ".tag{font-size:11px;font-weight:400;border:1px solid #888;border-radius:3px;padding:0 3px;margin-left:4px}"
    ".strip{display:block;width:100%;height:12px;margin-top:3px}"
    ".chart{display:block;width:100%;height:70px;background:#f6f7f9}"
    "h2{font-size:15px;margin:12px 0 4px}.legend{font-size:12px;color:#555;margin:2px 0}"
    ".k{display:inline-block;width:10px;height:10px;margin:0 3px 0 8px}"
    ".req{background:#9aa5b1}.fo{background:#f0a020}.err{background:#d0312d}"
    "a{color:#1a5fb4}</style></head><body>";
#endif  // EW_STATUS_PAGE

}  // namespace

Verdict status_verdict(const MetricsView& v, int* endpoint) {
    const Config& cfg = *v.cfg;
    int best = -1;
    for (uint32_t e = 0; e < cfg.endpoint_count; e++) {
        if (v.health[e].name_unresolved || !health_can_serve(v.health[e], -1, v.now_ms)) continue;
        if (best < 0 || cfg.endpoints[e].priority > cfg.endpoints[best].priority) best = static_cast<int>(e);
    }
    *endpoint = best;
    if (best < 0) return Verdict::not_serving;
    return cfg.endpoints[best].priority == top_priority(cfg) ? Verdict::serving : Verdict::fallback;
}

const char* status_not_serving_why(const MetricsView& v) {
    // What the endpoints have in common (the page adds the first one's last error).
    const Config& cfg = *v.cfg;
    uint32_t down = 0, limited = 0, keys = 0, unresolved = 0;
    for (uint32_t e = 0; e < cfg.endpoint_count; e++) {
        const Health& h = v.health[e];
        if (h.name_unresolved) unresolved++;
        if (h.key_bad) keys++;
        if (h.state == HealthState::rate_limited) limited++;
        if (h.state == HealthState::down) down++;
    }
    if (unresolved == cfg.endpoint_count) return "no endpoint's host name resolves";
    if (keys == cfg.endpoint_count) return "every endpoint rejected its API key";
    if (limited == cfg.endpoint_count) return "every endpoint is rate limited";
    if (down == cfg.endpoint_count) return "every endpoint is DOWN";
    return "no endpoint can take a request";
}

#if !EW_STATUS_PAGE
// A device without the full page (caps.h: EW_STATUS_PAGE=0): the verdict and the links.
void status_page_render(const MetricsView& v, StrBuf* out) {
    int ep = -1;
    Verdict verdict = status_verdict(v, &ep);
    out->append("<!doctype html><meta charset=\"utf-8\"><title>edgeway</title><h1>");
    if (verdict == Verdict::not_serving)
        out->appendf("NOT SERVING &mdash; %s", status_not_serving_why(v));
    else
        out->appendf("SERVING %s%s", verdict == Verdict::fallback ? "on fallback " : "via ", v.cfg->endpoints[ep].name);
    out->append("</h1><p><a href=\"/status\">/status</a> (JSON) &middot; <a href=\"/metrics\">/metrics</a></p>");
}
#else
void status_page_render(const MetricsView& v, StrBuf* out) {
    const Config& cfg = *v.cfg;
    const Metrics& m = *v.m;
    out->append(kHead);
    int ep = -1;
    Verdict verdict = status_verdict(v, &ep);
    static const char* const kVerdictClass[] = {"serving", "fallback", "not_serving"};
    out->appendf("<h1 id=\"verdict\" class=\"v-%s\">", kVerdictClass[static_cast<int>(verdict)]);
    if (verdict == Verdict::serving) {
        out->appendf("SERVING via %s", cfg.endpoints[ep].name);
    } else if (verdict == Verdict::fallback) {
        out->appendf("SERVING on fallback %s", cfg.endpoints[ep].name);
    } else {
        out->append("NOT SERVING &mdash; ");
        out->append(status_not_serving_why(v));
        if (cfg.endpoint_count && v.health[0].last_error[0]) {
            out->append(" (");
            html(out, cfg.endpoints[0].name);
            out->append(": ");
            html(out, v.health[0].last_error);
            out->append(")");
        }
    }
    out->append("</h1>");
    double avg = m.success ? static_cast<double>(m.latency_sum_ms) / static_cast<double>(m.success) : 0.0;
    out->appendf("<p class=\"sub\">edgeway %s &middot; up ", EW_VERSION);
    duration(out, v.now_ms - v.started_ms);
    out->appendf(" &middot; strategy %s &middot; %llu requests, %llu failed, %llu via fallback model, %llu in flight",
                 to_string(cfg.agent.strategy), static_cast<ull>(m.total), static_cast<ull>(m.failed),
                 static_cast<ull>(m.fallback_triggered), static_cast<ull>(m.in_flight));
    if (m.success) out->appendf(" &middot; avg %.0f ms", avg);
    out->append("</p>");

    out->append("<table><colgroup><col style=\"width:22%\"><col style=\"width:14%\"><col style=\"width:13%\">"
                "<col style=\"width:21%\"><col style=\"width:11%\"><col style=\"width:10%\"><col style=\"width:9%\">"
                "</colgroup><tr><th>endpoint</th><th>state</th><th>in state</th><th>last probe</th><th>latency</th>"
                "<th>success</th><th>down</th></tr>");
    const int32_t top = top_priority(cfg);
    for (uint32_t e = 0; e < cfg.endpoint_count; e++) {
        const EndpointConfig& ec = cfg.endpoints[e];
        const Health& h = v.health[e];
        // A host name without an address yet is its own state (no verdict on the upstream).
        const bool unresolved = h.name_unresolved;
        const char* cls = unresolved ? "st-unres" : state_class(h.state);
        out->appendf("<tr class=\"main %s\"><td>%s", cls, ec.name);
        if (ec.priority < top) out->append("<span class=\"tag\">backup</span>");
        out->appendf("</td><td>%s</td><td>", unresolved ? "UNRESOLVED" : to_string(h.state));
        uint64_t since = m.state_since_ms[e] ? m.state_since_ms[e] : v.started_ms;
        duration(out, v.now_ms > since ? v.now_ms - since : 0);
        out->append("</td><td>");
        uint64_t last = h.last_success_ms > h.last_failure_ms ? h.last_success_ms : h.last_failure_ms;
        if (last == 0) {
            out->append("none yet");
        } else {
            bool ok = h.last_success_ms >= h.last_failure_ms;
            if (ok)
                out->append("ok");
            else if (h.last_kind == ResultKind::http_status)
                out->appendf("HTTP %u", static_cast<unsigned>(h.last_http_status));
            else
                out->append(to_string(h.last_kind));
            out->append(", ");
            duration(out, v.now_ms > last ? v.now_ms - last : 0);
            out->append(" ago");
        }
        out->append("</td><td>");
        if (h.has_latency)
            out->appendf("%.0f ms", h.latency_ewma_ms);
        else
            out->append("&mdash;");
        out->append("</td><td>");
        if (h.ring_count)
            out->appendf("%.0f%%", health_success_ratio(h) * 100.0f);
        else
            out->append("&mdash;");
        out->appendf("</td><td>%u&times;</td></tr><tr class=\"more %s\"><td colspan=\"7\">",
                     static_cast<unsigned>(h.ejections), cls);
        html(out, ec.url);
        out->appendf(" &middot; priority %d &middot; %llu requests", static_cast<int>(ec.priority),
                     static_cast<ull>(h.requests));
        if (h.key_bad) out->append(" &middot; <b>API key rejected</b>");
        if (h.key_exhausted_until_ms > v.now_ms) {
            out->append(" &middot; <b>API key out of quota</b> (insufficient_quota), tried again in ");
            duration(out, h.key_exhausted_until_ms - v.now_ms);
        }
        for (uint32_t s = 0; s < ec.model_count && s < EW_CAP_MODELS_PER_ENDPOINT; s++) {
            if (h.model_unavailable_until_ms[s] <= v.now_ms) continue;
            out->append(" &middot; ");
            html(out, ec.models[s]);
            out->append(" not found here (model_not_found) for ");
            duration(out, h.model_unavailable_until_ms[s] - v.now_ms);
        }
        if (h.rate_limited_until_ms > v.now_ms) {
            out->append(" &middot; rate limited for ");
            duration(out, h.rate_limited_until_ms - v.now_ms);
        }
        if (h.state == HealthState::down && h.down_until_ms > v.now_ms) {
            out->append(" &middot; cooldown ");
            duration(out, h.down_until_ms - v.now_ms);
        }
        if (h.state == HealthState::down && v.params) {
            // Why, and what brings it back (health_recovery): a trial, or a probe as deep.
            char why[EW_CAP_ERROR_TEXT + 96];
            char back[192];
            StrBuf w(why, sizeof why);
            StrBuf b(back, sizeof back);
            health_explain(h, *v.params, v.now_ms, &w, &b);
            out->append(" &middot; <b>");
            html(out, w.data);
            out->append("</b>; ");
            html(out, b.data);
        }
        if (unresolved && v.names && v.names[e].error[0]) {
            out->append(" &middot; ");
            html(out, v.names[e].error);
        } else if (h.last_error[0] && h.last_failure_ms >= h.last_success_ms) {
            out->append(" &middot; last error: ");
            html(out, h.last_error);
        }
        result_strip(out, h);
        out->append("</td></tr>");
    }
    out->append("</table>");
    minute_chart(out, m, v.now_ms);
    out->append("<p class=\"legend\"><a href=\"/status\">/status</a> (JSON) &middot; <a href=\"/metrics\">/metrics</a>"
                " &middot; refreshes every 5 s</p></body></html>");
}
#endif  // EW_STATUS_PAGE

}  // namespace ew
