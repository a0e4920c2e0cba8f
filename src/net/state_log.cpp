#include "net/state_log.h"

#include "net/log.h"
#include "net/telemetry.h"

namespace ew {

void note_state(const NetContext& ctx, uint32_t e, uint64_t now_ms, const char* cause) {
    if (e >= ctx.cfg->endpoint_count || e >= EW_CAP_ENDPOINTS) return;
    Metrics& m = *ctx.metrics;
    const Health& h = ctx.health[e];
    HealthState before = static_cast<HealthState>(m.seen_state[e]);
    if (h.state == before) return;
    m.seen_state[e] = static_cast<uint8_t>(h.state);
    m.state_since_ms[e] = now_ms;
    m.transitions[e]++;
    // Worse is a warning, better info (log_state_change); "" for a probe, as the journal tests read it.
    log_state_change(ctx.cfg->endpoints[e].name, before, h.state, h.score, cause);
    if (ctx.telemetry) ctx.telemetry->on_state_change(e, before, cause, now_ms);
}

void note_states(const NetContext& ctx, uint64_t now_ms) {
    for (uint32_t e = 0; e < ctx.cfg->endpoint_count; e++) {
        health_tick(&ctx.health[e], *ctx.params, now_ms);
        note_state(ctx, e, now_ms, "time");
    }
}

}  // namespace ew
