// Hedged first tokens: the `auto` delay, the budget, and the counters (see hedge.h).
#include "core/hedge.h"

#include <algorithm>

namespace ew {

const char* to_string(HedgeSkip s) {
    switch (s) {
        case HedgeSkip::budget: return "budget";
        case HedgeSkip::no_candidate: return "no_candidate";
        case HedgeSkip::concurrency: return "concurrency";
        case HedgeSkip::attempts: return "attempts";
        case HedgeSkip::count: break;
    }
    return "?";
}

void hedge_observe(HedgeStats* s, uint8_t endpoint, bool stream, uint64_t ms) {
    if (endpoint >= EW_CAP_ENDPOINTS) return;
    int k = stream ? 1 : 0;
    uint16_t& next = s->sample_next[endpoint][k];
    s->samples[endpoint][k][next] = static_cast<uint16_t>(ms > 65535 ? 65535 : ms);
    next = static_cast<uint16_t>((next + 1) % EW_CAP_HEDGE_SAMPLES);
    if (s->sample_count[endpoint][k] < EW_CAP_HEDGE_SAMPLES) s->sample_count[endpoint][k]++;
}

uint32_t hedge_auto_ms(const HedgeStats& s, uint8_t endpoint, bool stream) {
    if (endpoint >= EW_CAP_ENDPOINTS) return EW_HEDGE_AUTO_FALLBACK_MS;
    int k = stream ? 1 : 0;
    size_t n = s.sample_count[endpoint][k];
    if (n < EW_HEDGE_AUTO_MIN_SAMPLES) return EW_HEDGE_AUTO_FALLBACK_MS;
    uint16_t v[EW_CAP_HEDGE_SAMPLES];
    std::copy(s.samples[endpoint][k], s.samples[endpoint][k] + n, v);
    // Nearest rank: the smallest sample with at least 90 % (50 %) of the samples at or below it.
    size_t rank = (n * 90 + 99) / 100;
    std::nth_element(v, v + (rank - 1), v + n);
    uint32_t p90 = v[rank - 1];
    size_t mid = (n + 1) / 2;
    std::nth_element(v, v + (mid - 1), v + n);
    uint32_t floor = static_cast<uint32_t>(v[mid - 1]) * EW_HEDGE_AUTO_MEDIAN_PCT / 100;
    if (p90 < floor) p90 = floor;
    if (p90 < EW_HEDGE_AUTO_MIN_MS) p90 = EW_HEDGE_AUTO_MIN_MS;
    if (p90 > EW_HEDGE_AUTO_MAX_MS) p90 = EW_HEDGE_AUTO_MAX_MS;
    return p90;
}

uint32_t hedge_delay_ms(const AgentConfig& a, const HedgeStats& s, uint8_t endpoint, bool stream) {
    switch (a.hedge_mode) {
        case HedgeMode::off: return 0;
        case HedgeMode::fixed: return a.hedge_after_ms;
        case HedgeMode::automatic: return hedge_auto_ms(s, endpoint, stream);
    }
    return 0;
}

void hedge_earn(HedgeStats* s, uint32_t budget_pct) {
    uint32_t cap = EW_HEDGE_BUDGET_BURST * 100;
    s->budget_centi += budget_pct;
    if (s->budget_centi > cap) s->budget_centi = cap;
}

bool hedge_spend(HedgeStats* s) {
    if (s->budget_centi < 100) return false;
    s->budget_centi -= 100;
    return true;
}

void hedge_render_prometheus(const HedgeStats& s, StrBuf* out) {
    auto u = [](uint64_t v) { return static_cast<unsigned long long>(v); };
    out->appendf("# HELP edgeway_hedges_started_total Second attempts started beside an attempt slow to its first "
                 "token (streaming) or head (JSON).\n# TYPE edgeway_hedges_started_total counter\n"
                 "edgeway_hedges_started_total %llu\n",
                 u(s.started));
    out->appendf("# HELP edgeway_hedge_wins_total Hedged requests by the attempt that delivered first.\n"
                 "# TYPE edgeway_hedge_wins_total counter\n"
                 "edgeway_hedge_wins_total{winner=\"primary\"} %llu\nedgeway_hedge_wins_total{winner=\"hedge\"} %llu\n",
                 u(s.won_primary), u(s.won_hedge));
    out->append("# HELP edgeway_hedges_skipped_total Hedges due but not started, by reason.\n"
                "# TYPE edgeway_hedges_skipped_total counter\n");
    for (size_t i = 0; i < static_cast<size_t>(HedgeSkip::count); i++)
        out->appendf("edgeway_hedges_skipped_total{reason=\"%s\"} %llu\n", to_string(static_cast<HedgeSkip>(i)),
                     u(s.skipped[i]));
    out->appendf("# HELP edgeway_hedge_losers_cancelled_total Attempts closed unread because the other attempt "
                 "delivered first (their usage is unknown).\n# TYPE edgeway_hedge_losers_cancelled_total counter\n"
                 "edgeway_hedge_losers_cancelled_total %llu\n",
                 u(s.losers_cancelled));
    out->appendf("# HELP edgeway_hedge_loser_prompt_tokens_total Prompt tokens sent to cancelled losers, as the "
                 "winner reported them for the same prompt (an estimate; completion tokens unknown).\n"
                 "# TYPE edgeway_hedge_loser_prompt_tokens_total counter\n"
                 "edgeway_hedge_loser_prompt_tokens_total %llu\n",
                 u(s.loser_prompt_tokens));
    out->appendf("# HELP edgeway_hedge_budget Hedges the budget holds now (hedge_budget_pct per request, capped).\n"
                 "# TYPE edgeway_hedge_budget gauge\nedgeway_hedge_budget %.2f\n",
                 s.budget_centi / 100.0);
}

}  // namespace ew
