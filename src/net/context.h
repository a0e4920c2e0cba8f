// What the parts of src/net share, passed in instead of reaching for the Agent: the
// configuration, the health table, metrics, the connection pool, the loop (and its clock)
// and the random source. The Agent owns every piece and fills one of these; a test builds
// its own around a manual clock and an in-memory transport.
#pragma once
#include "core/config.h"
#include "core/health.h"
#include "core/metrics.h"
#include "core/rng.h"

namespace ew {

class Loop;
class UpstreamPool;
class Resolver;
struct EndpointRuntime;
struct ProbeBudget;
class Telemetry;

struct NetContext {
    const Config* cfg = nullptr;
    Health* health = nullptr;              // [EW_CAP_ENDPOINTS], cfg->endpoint_count in use
    const HealthParams* params = nullptr;
    Metrics* metrics = nullptr;
    UpstreamPool* pool = nullptr;
    Loop* loop = nullptr;
    EndpointRuntime* runtime = nullptr;    // [EW_CAP_ENDPOINTS]
    Rng* rng = nullptr;
    Resolver* names = nullptr;             // host names -> addresses (nullptr: numeric hosts only)
    ProbeBudget* probe_budget = nullptr;   // tokens chat probes may spend (nullptr: no cap)
    Telemetry* telemetry = nullptr;        // told of every endpoint state change (nullptr: none)
};

}  // namespace ew
