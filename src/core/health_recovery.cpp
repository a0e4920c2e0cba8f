// Words for the half-open recovery rules of health.cpp. See health_recovery.h.
#include "core/health_recovery.h"

namespace ew {
namespace {

typedef unsigned long long ull;

void seconds(StrBuf* out, uint64_t ms) {
    uint64_t s = (ms + 999) / 1000;
    if (s < 120)
        out->appendf("%llu s", static_cast<ull>(s));
    else
        out->appendf("%llu min", static_cast<ull>((s + 59) / 60));
}

const char* probe_name(CheckLevel l) {
    switch (l) {
        case CheckLevel::tcp: return "tcp";
        case CheckLevel::tls: return "tls";
        case CheckLevel::models: return "models";
        case CheckLevel::none:
        case CheckLevel::chat: return "chat";
    }
    return "chat";
}

}  // namespace

const char* to_string(CheckLevel l) {
    switch (l) {
        case CheckLevel::none: return "none";
        case CheckLevel::tcp: return "tcp";
        case CheckLevel::tls: return "tls";
        case CheckLevel::models: return "models";
        case CheckLevel::chat: return "chat";
    }
    return "?";
}

#if EW_RECOVERY_TEXT
void health_explain(const Health& h, const HealthParams& p, uint64_t now_ms, StrBuf* why, StrBuf* back) {
    if (h.name_unresolved) {
        why->append("UNRESOLVED: the host name has no address");
        back->append("back when the name resolves");
        return;
    }
    if (h.key_bad) {
        why->appendf("API key rejected (HTTP %u)", static_cast<unsigned>(h.last_http_status));
        back->append("back after the key is fixed (a later success clears it)");
        return;
    }
    if (h.state == HealthState::down) {
        why->appendf("DOWN: %u failure%s of %s at %s level", static_cast<unsigned>(h.down_failures),
                     h.down_failures == 1 ? "" : "s", h.down_by_traffic ? "live traffic" : "probes",
                     to_string(h.down_level));
        if (h.last_error[0]) why->appendf(" (last: %s)", h.last_error);
        if (health_needs_trial(h)) {
            back->append("back after a successful trial request (");
            const uint32_t cap = p.trial_requests ? p.trial_requests : 1;
            const uint32_t flying = health_trials_in_flight(h, now_ms);
            if (flying >= cap) {
                back->append("trial in flight");
            } else if (h.trial_at_ms > now_ms) {
                back->append("next trial in ");
                seconds(back, h.trial_at_ms - now_ms);
            } else {
                back->append("trial open now");
            }
            if (cap > 1) back->appendf(", %u of %u passed", static_cast<unsigned>(h.trials_ok), static_cast<unsigned>(cap));
            back->appendf(") or a %s probe; its %s probe cannot confirm a %s failure", probe_name(h.down_level),
                          probe_name(h.probe_level), to_string(h.down_level));
        } else {
            back->appendf("back after %u good %s probe%s in a row", static_cast<unsigned>(p.rise), probe_name(h.probe_level),
                          p.rise == 1 ? "" : "s");
            if (h.consecutive_successes) back->appendf(" (%u so far)", static_cast<unsigned>(h.consecutive_successes));
            if (health_confirm_level(h) < h.down_level) back->append(" (its probe failed in this outage too)");
            if (h.down_until_ms > now_ms) {
                back->append("; cooldown ends in ");
                seconds(back, h.down_until_ms - now_ms);
            }
        }
        return;
    }
    if (now_ms < h.rate_limited_until_ms) {
        why->append("RATE_LIMITED: the upstream answered 429");
        back->append("back when the rate limit ends in ");
        seconds(back, h.rate_limited_until_ms - now_ms);
        return;
    }
    why->appendf("%s: score %.0f", to_string(h.state), static_cast<double>(h.score));
}
#else
// The same cases as short codes (caps.h: EW_RECOVERY_TEXT=0), e.g. why "DOWN chat 3 traffic
// (last: HTTP 503)", back "trial in 4 s or chat probe"; "probe 1/2 models, cooldown 3 s".
void health_explain(const Health& h, const HealthParams& p, uint64_t now_ms, StrBuf* why, StrBuf* back) {
    if (h.name_unresolved) {
        why->append("UNRESOLVED");
        back->append("name resolves");
        return;
    }
    if (h.key_bad) {
        why->appendf("KEY_BAD %u", static_cast<unsigned>(h.last_http_status));
        back->append("key fixed");
        return;
    }
    if (h.state == HealthState::down) {
        why->appendf("DOWN %s %u %s", to_string(h.down_level), static_cast<unsigned>(h.down_failures),
                     h.down_by_traffic ? "traffic" : "probe");
        if (h.last_error[0]) why->appendf(" (last: %s)", h.last_error);
        if (health_needs_trial(h)) {
            const uint32_t cap = p.trial_requests ? p.trial_requests : 1;
            if (health_trials_in_flight(h, now_ms) >= cap) {
                back->append("trial in flight");
            } else if (h.trial_at_ms > now_ms) {
                back->append("trial in ");
                seconds(back, h.trial_at_ms - now_ms);
            } else {
                back->append("trial open");
            }
            back->appendf(" or %s probe", probe_name(h.down_level));
        } else {
            back->appendf("probe %u/%u %s", static_cast<unsigned>(h.consecutive_successes), static_cast<unsigned>(p.rise),
                          probe_name(h.probe_level));
            if (h.down_until_ms > now_ms) {
                back->append(", cooldown ");
                seconds(back, h.down_until_ms - now_ms);
            }
        }
        return;
    }
    if (now_ms < h.rate_limited_until_ms) {
        why->append("RATE_LIMITED 429");
        back->append("limit ends in ");
        seconds(back, h.rate_limited_until_ms - now_ms);
        return;
    }
    why->appendf("%s %.0f", to_string(h.state), static_cast<double>(h.score));
}
#endif

void health_recovery_json(const Health& h, const HealthParams& p, uint64_t now_ms, StrBuf* out) {
    char why[EW_CAP_ERROR_TEXT + 96];
    char back[192];
    StrBuf w(why, sizeof why);
    StrBuf b(back, sizeof back);
    health_explain(h, p, now_ms, &w, &b);
    out->append(",\"recovery\":{\"why\":\"");
    out->append_json_escaped(w.data);
    out->append("\",\"back\":\"");
    out->append_json_escaped(b.data);
    const bool down = h.state == HealthState::down;
    const uint32_t cap = p.trial_requests ? p.trial_requests : 1;
    const bool needed = health_needs_trial(h);
    const uint32_t flying = health_trials_in_flight(h, now_ms);
    out->appendf("\",\"down_level\":\"%s\",\"confirm_level\":\"%s\",\"seen_by\":\"%s\",\"probe_level\":\"%s\","
                 "\"trial\":{\"needed\":%s,\"open\":%s,\"in_ms\":%llu,\"in_flight\":%u,\"passed_now\":%u,"
                 "\"started\":%llu,\"passed\":%llu,\"failed\":%llu},\"unconfirmed_probes\":%llu,\"cooldown_ms\":%u}",
                 to_string(down ? h.down_level : CheckLevel::none),
                 to_string(down ? health_confirm_level(h) : CheckLevel::none), down ? (h.down_by_traffic ? "traffic" : "probe") : "",
                 to_string(h.probe_level), needed ? "true" : "false",
                 needed && flying < cap && now_ms >= h.trial_at_ms && !h.key_bad ? "true" : "false",
                 static_cast<ull>(needed && h.trial_at_ms > now_ms ? h.trial_at_ms - now_ms : 0),
                 static_cast<unsigned>(flying), static_cast<unsigned>(h.trials_ok), static_cast<ull>(h.trials_started),
                 static_cast<ull>(h.trials_passed), static_cast<ull>(h.trials_failed),
                 static_cast<ull>(h.unconfirmed_probes), static_cast<unsigned>(h.cooldown_ms));
}

}  // namespace ew
