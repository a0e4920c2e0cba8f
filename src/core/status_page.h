// GET /: the status page an operator reads at a glance, server-rendered HTML (no script),
// readable from 800x480 up. A headline verdict (SERVING via X / SERVING on fallback Y /
// NOT SERVING — why), one row per endpoint in its state's colour with time in state, last
// probe result and age, latency EWMA, success ratio and the last results as an inline SVG
// strip, and a requests-per-minute / failover chart from Metrics' minute ring.
#pragma once
#include "core/metrics.h"
#include "core/strbuf.h"

namespace ew {

enum class Verdict : uint8_t { serving, fallback, not_serving };

// The verdict and the endpoint it names (the best one that can serve now, in priority
// order), or -1 when none can.
Verdict status_verdict(const MetricsView& v, int* endpoint);

// Why nothing can serve (for the NOT SERVING verdict), e.g. "every endpoint is DOWN".
const char* status_not_serving_why(const MetricsView& v);

void status_page_render(const MetricsView& v, StrBuf* out);

}  // namespace ew
