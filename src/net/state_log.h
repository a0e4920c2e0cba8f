// Endpoint state changes, logged once each and in both directions, whoever made them: a
// probe, a proxied attempt, or time (a cooldown or rate limit ending). Also keeps, in
// Metrics, since when each endpoint is in its state and how often it changed.
#pragma once
#include <stdint.h>

#include "net/context.h"

namespace ew {

// Compares endpoint `e`'s state with the one last noted; logs and counts a change.
// `cause` says what observed it ("probe", "traffic", "time").
void note_state(const NetContext& ctx, uint32_t e, uint64_t now_ms, const char* cause);
// Moves every endpoint's state on to `now` (health_tick), then notes each.
void note_states(const NetContext& ctx, uint64_t now_ms);

}  // namespace ew
