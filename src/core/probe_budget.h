// What an active probe may do now: run, or be skipped because live traffic is fresher, and,
// for a chat probe (it costs tokens), whether the day's token budget still allows it.
// Pure: time is passed in as monotonic milliseconds, the "day" is 24 h of loop time.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "core/health.h"

namespace ew {

// Tokens a chat probe is counted for when its answer carries no usage: the probe's
// max_tokens (1) plus a generous bound on its one-word prompt with the chat template.
#define EW_CHAT_PROBE_TOKEN_BOUND 16u

// [agent] probe_budget_tokens_per_day for all chat probes together; 0 = no cap.
struct ProbeBudget {
    uint32_t limit = 0;
    uint64_t spent = 0;          // in the current day
    uint64_t day_start_ms = 0;   // monotonic start of the current day
    bool started = false;
    uint64_t spent_total = 0;    // lifetime, for metrics
    uint64_t skipped = 0;        // chat probes replaced by a models probe for want of budget (lifetime)
};

constexpr uint64_t kProbeBudgetDayMs = 24ull * 3600 * 1000;

// Starts a new day when 24 h of loop time passed since the current one began.
void probe_budget_roll(ProbeBudget* b, uint64_t now_ms);
// True when a chat probe may run now (no cap, or the day's spend is below the cap).
bool probe_budget_allows(ProbeBudget* b, uint64_t now_ms);
void probe_budget_spend(ProbeBudget* b, uint64_t tokens, uint64_t now_ms);
// Monotonic time the current day ends (the budget is whole again then).
uint64_t probe_budget_day_end_ms(const ProbeBudget& b);

// Tokens one chat probe answer cost: its usage (total_tokens, or prompt + completion), or
// EW_CHAT_PROBE_TOKEN_BOUND when the body has no usage (or was not kept whole).
uint64_t probe_chat_tokens(const char* body, size_t len, bool whole);

// The level a probe of `kind` checks (CheckLevel), for Health::probe_level and Observation::level.
CheckLevel probe_level_of(ProbeKind kind);

// What the probe of an endpoint does when its timer fires.
enum class ProbePlan : uint8_t { run, run_as_models, skip_fresh_traffic };
// skip_fresh_traffic: the endpoint serves (not DOWN) and a live request succeeded within the
// last `interval_ms` (passive health is fresher than a probe). run_as_models: a chat probe
// while the token budget is spent (the cheaper check still sees a dead server; a DOWN
// endpoint its models probe cannot confirm comes back through a trial request).
ProbePlan probe_plan(const Health& h, ProbeKind kind, uint32_t interval_ms, bool budget_allows, uint64_t now_ms);
const char* to_string(ProbePlan p);  // "run", "run_as_models", "skip_fresh_traffic"

}  // namespace ew
