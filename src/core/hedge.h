// Hedged first tokens: when an exchange may start a second attempt beside a slow first one
// (hedge_after_ms, fixed or `auto`), the budget that bounds how often (hedge_budget_pct),
// and what hedging cost, for /metrics. Fixed tables only; one per agent, inside Metrics.
//
// `auto` is the endpoint's recent p90 time to first data event (streaming) or to response
// head (JSON), over its last EW_CAP_HEDGE_SAMPLES attempts that delivered one, but at least
// EW_HEDGE_AUTO_MEDIAN_PCT % of their median (when nearly all deliveries take the same time,
// as 90 % at 50 ms, the p90 is the median plus jitter: hedging there would hedge the jitter),
// clamped to [EW_HEDGE_AUTO_MIN_MS, EW_HEDGE_AUTO_MAX_MS]; with fewer than
// EW_HEDGE_AUTO_MIN_SAMPLES samples it is EW_HEDGE_AUTO_FALLBACK_MS. A loser cancelled before
// its first token adds no sample (its time is unknown, only bounded below), so a hedged slow
// tail does not pull `auto` up after it.
//
// The budget is a token bucket counted in requests, the way Envoy's retry budget bounds
// retries to a share of active requests: each proxied request earns hedge_budget_pct/100 of
// a hedge, a hedge spends one, and the balance is capped at EW_HEDGE_BUDGET_BURST hedges (it
// starts full). Over any run of requests, hedges <= pct% of them + the burst. At most
// EW_CAP_HEDGES hedges are in flight at once (caps.h ties the connection table to it).
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "core/caps.h"
#include "core/config.h"
#include "core/strbuf.h"

namespace ew {

enum class HedgeSkip : uint8_t { budget, no_candidate, concurrency, attempts, count };
const char* to_string(HedgeSkip s);

struct HedgeStats {
    // Recent delivery times per endpoint, [0] JSON heads, [1] first SSE data events (ms, capped).
    uint16_t samples[EW_CAP_ENDPOINTS][2][EW_CAP_HEDGE_SAMPLES] = {};
    uint16_t sample_count[EW_CAP_ENDPOINTS][2] = {};
    uint16_t sample_next[EW_CAP_ENDPOINTS][2] = {};
    uint32_t budget_centi = EW_HEDGE_BUDGET_BURST * 100;  // hundredths of a hedge
    uint32_t in_flight = 0;                               // exchanges with two attempts running
    // Counters for /metrics.
    uint64_t started = 0;
    uint64_t won_primary = 0;
    uint64_t won_hedge = 0;
    uint64_t skipped[static_cast<size_t>(HedgeSkip::count)] = {};
    uint64_t losers_cancelled = 0;     // attempts closed because the other one delivered first
    uint64_t loser_prompt_tokens = 0;  // their prompt tokens, as the winner reported them (an estimate)
};

// A delivery time (the attempt's start to its head / first data event).
void hedge_observe(HedgeStats* s, uint8_t endpoint, bool stream, uint64_t ms);
// The `auto` delay for the endpoint, as documented above.
uint32_t hedge_auto_ms(const HedgeStats& s, uint8_t endpoint, bool stream);
// The delay after which an attempt on `endpoint` is hedged; 0 = hedging is off.
uint32_t hedge_delay_ms(const AgentConfig& a, const HedgeStats& s, uint8_t endpoint, bool stream);
// A proxied request earns its share of a hedge.
void hedge_earn(HedgeStats* s, uint32_t budget_pct);
// Spends one hedge when the balance holds one.
bool hedge_spend(HedgeStats* s);

// Prometheus text: the edgeway_hedge* families.
void hedge_render_prometheus(const HedgeStats& s, StrBuf* out);

}  // namespace ew
