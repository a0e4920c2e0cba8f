// Probe plans and the chat probes' token budget. See probe_budget.h.
#include "core/probe_budget.h"

#include "core/openai.h"

namespace ew {

void probe_budget_roll(ProbeBudget* b, uint64_t now_ms) {
    if (!b->started) {
        b->started = true;
        b->day_start_ms = now_ms;
        b->spent = 0;
        return;
    }
    if (now_ms - b->day_start_ms >= kProbeBudgetDayMs) {
        // Whole days since the start, so the day boundary does not drift with late calls.
        b->day_start_ms += (now_ms - b->day_start_ms) / kProbeBudgetDayMs * kProbeBudgetDayMs;
        b->spent = 0;
    }
}

bool probe_budget_allows(ProbeBudget* b, uint64_t now_ms) {
    probe_budget_roll(b, now_ms);
    return b->limit == 0 || b->spent < b->limit;
}

void probe_budget_spend(ProbeBudget* b, uint64_t tokens, uint64_t now_ms) {
    probe_budget_roll(b, now_ms);
    b->spent += tokens;
    b->spent_total += tokens;
}

uint64_t probe_budget_day_end_ms(const ProbeBudget& b) { return b.day_start_ms + kProbeBudgetDayMs; }

uint64_t probe_chat_tokens(const char* body, size_t len, bool whole) {
    OpenAIUsage u;
    if (whole && body && len && openai_find_usage(body, len, &u)) {
        uint64_t t = u.total_tokens ? u.total_tokens : u.prompt_tokens + u.completion_tokens;
        if (t) return t;
    }
    return EW_CHAT_PROBE_TOKEN_BOUND;
}

CheckLevel probe_level_of(ProbeKind kind) {
    switch (kind) {
        case ProbeKind::tcp: return CheckLevel::tcp;
        case ProbeKind::tls: return CheckLevel::tls;
        case ProbeKind::models: return CheckLevel::models;
        case ProbeKind::chat: return CheckLevel::chat;
    }
    return CheckLevel::models;
}

ProbePlan probe_plan(const Health& h, ProbeKind kind, uint32_t interval_ms, bool budget_allows, uint64_t now_ms) {
    if (h.state != HealthState::down && h.last_traffic_ok_ms != 0 && now_ms >= h.last_traffic_ok_ms &&
        now_ms - h.last_traffic_ok_ms < interval_ms) {
        return ProbePlan::skip_fresh_traffic;
    }
    if (kind == ProbeKind::chat && !budget_allows) return ProbePlan::run_as_models;
    return ProbePlan::run;
}

const char* to_string(ProbePlan p) {
    switch (p) {
        case ProbePlan::run: return "run";
        case ProbePlan::run_as_models: return "run_as_models";
        case ProbePlan::skip_fresh_traffic: return "skip_fresh_traffic";
    }
    return "?";
}

}  // namespace ew
