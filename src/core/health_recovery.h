// Why an endpoint is in its state and what would bring it back, in words for /status and
// the status page, and the half-open (trial) facts as JSON. Pure: reads Health at `now`.
#pragma once
#include <stdint.h>

#include "core/health.h"
#include "core/strbuf.h"

namespace ew {

const char* to_string(CheckLevel l);  // "none", "tcp", "tls", "models", "chat"

// `why`: e.g. "DOWN: 3 failures of live traffic at chat level (last: HTTP 503)".
// `back`: e.g. "back after a successful trial request (next trial in 4 s) or a chat probe;
// its models probe cannot confirm a chat failure". Empty `back` for a serving endpoint.
void health_explain(const Health& h, const HealthParams& p, uint64_t now_ms, StrBuf* why, StrBuf* back);

// ,"recovery":{"why":"...","back":"...","down_level":"chat","seen_by":"traffic","probe_level":"models",
//  "trial":{"needed":true,"open":false,"in_ms":4000,"in_flight":0,"started":2,"passed":0,"failed":2},
//  "unconfirmed_probes":5,"cooldown_ms":5000}   (appended to one endpoint's /status object)
void health_recovery_json(const Health& h, const HealthParams& p, uint64_t now_ms, StrBuf* out);

}  // namespace ew
